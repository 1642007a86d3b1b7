"""Sign-in sessions on a real database file: only a hash is stored; expiry, sign-out and a revoked
or reissued access code each end a session; a revoked code no longer signs in."""

from __future__ import annotations

from datetime import timedelta

import pytest

import db
import db.sessions as sessions
from db.clock import utc_now


@pytest.fixture
def study_db(tmp_path):
    path = tmp_path / "sessions.db"
    conn = db.connect(path)
    db.upsert_cases(conn, [{"patient_id": "P1", "label": "SCC"}])
    study_id = db.create_study(conn, name="S", case_ids=["internal/P1"])
    reader_id, code = db.add_reader(conn, study_id, "Dr R")
    conn.close()
    return path, study_id, reader_id, code


def test_a_session_resolves_to_its_reader_and_only_its_hash_is_stored(study_db):
    path, study_id, reader_id, _ = study_db
    conn = db.connect(path)
    token = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    conn.close()
    again = db.connect(path)  # reopened: the session was committed
    info = db.resolve_session(again, token)
    stored = again.conn.execute("SELECT * FROM sessions").fetchall()
    again.close()
    assert (info.role, info.reader_id, info.study_id, info.display_name) == (
        "reader", reader_id, study_id, "Dr R",
    )  # fmt: skip
    assert len(stored) == 1 and token not in repr(stored)
    assert db.resolve_session(db.connect(path), token + "x") is None
    assert db.resolve_session(db.connect(path), "") is None


def test_sign_out_and_expiry_end_a_session(study_db, monkeypatch):
    path, _, _, _ = study_db
    conn = db.connect(path)
    admin = db.create_session(conn, "admin")
    other = db.create_session(conn, "admin")
    db.revoke_session(conn, admin)
    assert db.resolve_session(conn, admin) is None
    assert db.resolve_session(conn, other).role == "admin"  # only the one signed out
    later = utc_now() + timedelta(hours=sessions.SESSION_HOURS, seconds=1)
    monkeypatch.setattr(sessions, "utc_now", lambda: later)
    assert db.resolve_session(conn, other) is None
    conn.close()


def test_revoking_or_reissuing_a_code_ends_its_sessions_and_the_old_code(study_db):
    path, study_id, reader_id, code = study_db
    conn = db.connect(path)
    token = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    db.revoke_reader_code(conn, reader_id)
    assert db.resolve_session(conn, token) is None
    with pytest.raises(db.InvalidAccessCode):
        db.authenticate_reader(conn, code)
    assert db.readers_frame(conn, study_id)["code_revoked_at"].notna().all()
    new_code = db.reissue_reader_code(conn, reader_id)
    assert new_code != code and new_code.startswith(f"R{reader_id}-")
    assert db.authenticate_reader(conn, new_code).reader_id == reader_id
    with pytest.raises(db.InvalidAccessCode):
        db.authenticate_reader(conn, code)
    fresh = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    db.reissue_reader_code(conn, reader_id)  # a reissue ends the sessions of the old code too
    assert db.resolve_session(conn, fresh) is None
    with pytest.raises(db.ReaderNotFound, match="reader 999"):
        db.revoke_reader_code(conn, 999)
    conn.close()


@pytest.mark.parametrize(
    ("role", "reader_id", "hours", "match"),
    [
        ("root", None, 1, "not one of admin, reader"),
        ("reader", None, 1, "needs reader_id"),
        ("admin", 1, 1, "needs reader_id"),
        ("admin", None, 0, "must be > 0"),
    ],
    ids=["role", "reader-without-id", "admin-with-id", "lifetime"],
)
def test_bad_sessions_are_refused(study_db, role, reader_id, hours, match):
    conn = db.connect(study_db[0])
    with pytest.raises(ValueError, match=match):
        db.create_session(conn, role, reader_id=reader_id, hours=hours)
    conn.close()


def test_instructions_are_stored_and_too_long_refused(study_db):
    path, study_id, _, _ = study_db
    conn = db.connect(path)
    db.set_study_instructions(conn, study_id, "  # Read\n\nUse **T2**.  ")
    assert db.get_study(conn, study_id)["instructions"] == "# Read\n\nUse **T2**."
    with pytest.raises(ValueError, match="under 20,000"):
        db.set_study_instructions(conn, study_id, "x" * 20_001)
    conn.close()
