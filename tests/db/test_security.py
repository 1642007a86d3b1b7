"""Sign-in limits and the security audit, on a real SQLite file with a controlled clock."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import sqlite_utils

import db
from db import clock, security
from db.schema import MIGRATION_NAMES
from tests.db.conftest import make_cases

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch) -> Clock:
    moment = Clock()
    monkeypatch.setattr(clock, "utc_now", lambda: moment.now)
    return moment


def _fail(conn, client: str, kind: str = "reader") -> bool:
    db.check_sign_in(conn, client=client, kind=kind)
    return db.record_sign_in(conn, ok=False, kind=kind, client=client)


def _allowed(conn, client: str, kind: str = "reader") -> bool:
    try:
        db.check_sign_in(conn, client=client, kind=kind)
    except db.SignInThrottled:
        return False
    return True


def test_the_audit_refuses_update_and_delete_and_offers_no_way_to(conn):
    db.record_event(conn, "reader_added", role="admin", client="10.0.0.1", detail="Dr A")
    reopened = sqlite3.connect(conn.conn.execute("PRAGMA database_list").fetchone()[2])
    try:
        for statement in ("UPDATE security_audit SET detail = 'x'", "DELETE FROM security_audit"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                reopened.execute(statement)
        assert reopened.execute("SELECT detail FROM security_audit").fetchall() == [("Dr A",)]
    finally:
        reopened.close()
    public = [name for name in dir(security) if not name.startswith("_")]
    assert not [n for n in public if any(w in n for w in ("delete", "update", "purge", "clear"))]


def test_an_unknown_event_is_refused(conn):
    with pytest.raises(ValueError, match="security event 'oops' is not one of"):
        db.record_event(conn, "oops")


def test_a_client_backs_off_exponentially_after_the_free_failures(conn, fake_clock):
    for _ in range(security.FREE_FAILURES - 1):
        _fail(conn, "10.0.0.7")
    assert _allowed(conn, "10.0.0.7")  # a mistyped code or two costs nothing
    waits = []
    for _ in range(5):
        _fail(conn, "10.0.0.7")
        with pytest.raises(db.SignInThrottled) as refused:
            db.check_sign_in(conn, client="10.0.0.7", kind="reader")
        waits.append((refused.value.retry_at - fake_clock.now).total_seconds())
        assert refused.value.reason == "client"
        fake_clock.advance(waits[-1] + 0.01)
        assert _allowed(conn, "10.0.0.7")
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert _allowed(conn, "10.0.0.8")  # another address is not slowed by this one


def test_the_wait_is_capped_and_a_success_resets_it(conn, fake_clock):
    for _ in range(14):
        fake_clock.advance(security.MAX_DELAY_S)  # each attempt after its wait
        _fail(conn, "10.0.0.9")
    with pytest.raises(db.SignInThrottled, match=r"try again at \d\d:\d\d:\d\d UTC \(in 5 min\)"):
        db.check_sign_in(conn, client="10.0.0.9", kind="reader")
    fake_clock.advance(security.MAX_DELAY_S)
    db.record_sign_in(conn, ok=True, kind="reader", client="10.0.0.9", reader_id=1)
    _fail(conn, "10.0.0.9")
    assert _allowed(conn, "10.0.0.9")  # counting starts again after a success


def _fail_as(conn, client: str, credential: str | None, kind: str = "reader") -> None:
    db.check_sign_in(conn, client=client, kind=kind, credential=credential)
    db.record_sign_in(conn, ok=False, kind=kind, client=client, credential=credential)


def _allowed_as(conn, client: str, credential: str | None, kind: str = "reader") -> bool:
    try:
        db.check_sign_in(conn, client=client, kind=kind, credential=credential)
    except db.SignInThrottled:
        return False
    return True


def test_a_flood_from_other_addresses_never_blocks_a_fresh_client(conn, fake_clock):
    for i in range(1000):  # a thousand addresses, each guessing codes of reader 7
        _fail_as(conn, f"198.51.{i // 250}.{i % 250}", "reader:7")
        _fail_as(conn, f"198.51.{i // 250}.{i % 250}", None)  # and text of no code's form
    assert _allowed_as(conn, "203.0.113.250", "reader:7")  # reader 7 from a fresh address
    assert _allowed_as(conn, "203.0.113.251", "reader:8")
    for i in range(security.ADMIN_LOCKOUT_AFTER + 10):
        _fail_as(conn, f"192.0.2.{i}", "admin", "admin")
    assert _allowed_as(conn, "203.0.113.252", "admin", "admin")  # the admin, elsewhere


def test_a_client_that_failed_waits_while_its_credential_is_under_attack(conn, fake_clock):
    for i in range(security.CREDENTIAL_FREE_FAILURES + 5):
        _fail_as(conn, f"198.51.100.{i}", "reader:7")
    fake_clock.advance(security.BASE_DELAY_S + 0.01)  # past the one failure's own wait
    with pytest.raises(db.SignInThrottled, match="with this credential") as refused:
        db.check_sign_in(conn, client="198.51.100.0", kind="reader", credential="reader:7")
    assert refused.value.reason == "credential"
    assert (refused.value.retry_at - fake_clock.now).total_seconds() > 1
    assert _allowed_as(conn, "198.51.100.0", "reader:8")  # another reader's code is not slowed
    fake_clock.advance(security.MAX_DELAY_S)
    assert _allowed_as(conn, "198.51.100.0", "reader:7")


def test_twenty_wrong_admin_secrets_lock_that_client_only_and_are_audited(conn, fake_clock):
    started = []
    for _ in range(security.ADMIN_LOCKOUT_AFTER):
        fake_clock.advance(security.MAX_DELAY_S + 1)  # past each back-off: only the count matters
        started.append(_fail(conn, "192.0.2.1", "admin"))
    assert started == [False] * (security.ADMIN_LOCKOUT_AFTER - 1) + [True]
    with pytest.raises(db.SignInThrottled, match="from this address is locked after 20") as e:
        db.check_sign_in(conn, client="192.0.2.1", kind="admin")
    assert e.value.reason == "lockout"
    assert (e.value.retry_at - fake_clock.now) == timedelta(seconds=security.ADMIN_LOCKOUT_S)
    assert "cervixscope unlock-admin" in str(e.value)
    assert _allowed(conn, "192.0.2.200", "admin")  # the admin elsewhere is not locked out
    audit = db.security_audit_frame(conn)
    failed = audit[(audit["event"] == "sign_in_failed") & (audit["role"] == "admin")]
    assert len(failed) == 20 and set(failed["ok"]) == {0}
    assert audit["event"].tolist().count("admin_lockout") == 1
    fake_clock.advance(security.ADMIN_LOCKOUT_S + 1)
    assert _allowed(conn, "192.0.2.1", "admin")


def test_a_success_between_failures_prevents_the_lockout(conn, fake_clock):
    for _ in range(security.ADMIN_LOCKOUT_AFTER - 1):
        fake_clock.advance(security.MAX_DELAY_S + 1)
        _fail(conn, "192.0.2.1", "admin")
    db.record_sign_in(conn, ok=True, kind="admin", client="192.0.2.1")
    fake_clock.advance(security.MAX_DELAY_S + 1)
    assert _fail(conn, "192.0.2.1", "admin") is False
    assert _allowed(conn, "192.0.2.1", "admin")


def test_the_unlock_lifts_the_lockout_and_the_back_off_and_is_audited(conn, fake_clock):
    for _ in range(security.ADMIN_LOCKOUT_AFTER):
        fake_clock.advance(security.MAX_DELAY_S + 1)
        _fail(conn, "192.0.2.1", "admin")
    for _ in range(security.FREE_FAILURES + 2):  # recorded as if the back-off had let them in
        db.record_sign_in(conn, ok=False, kind="reader", client="10.0.0.7")
    assert not _allowed(conn, "192.0.2.1", "admin") and not _allowed(conn, "10.0.0.7")
    event_id = db.unlock_admin(conn, by="cli:admin@server")
    assert _allowed(conn, "192.0.2.1", "admin") and _allowed(conn, "10.0.0.7")
    row = db.security_audit_frame(conn).iloc[0]
    assert (row["event_id"], row["event"], row["client"]) == (event_id, "admin_unlocked",
                                                               "cli:admin@server")  # fmt: skip
    _fail(conn, "192.0.2.1", "admin")  # counting starts again: one failure is free
    assert _allowed(conn, "192.0.2.1", "admin")


def test_the_audit_keeps_the_address_and_the_forwarded_value_apart(conn):
    db.record_sign_in(conn, ok=False, kind="reader", client="10.0.0.5", address="10.0.0.5",
                      forwarded="6.6.6.6", credential="reader:3")  # fmt: skip
    row = db.security_audit_frame(conn).iloc[0]
    assert (row["client"], row["address"], row["forwarded"], row["credential"]) == (
        "10.0.0.5", "10.0.0.5", "6.6.6.6", "reader:3")  # fmt: skip


def test_a_code_names_its_reader_as_the_credential_and_other_text_names_none():
    assert db.code_credential(" r12-abcd-efgh-jkmn ") == "reader:12"
    assert db.code_credential("not a code") is None
    assert db.code_credential("") is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("Dr A\nDr B", "one line of text"),
        ("tab\there", "one line of text"),
        ("nul\x00", "one line of text"),
        ("line\u2028separator", "one line of text"),
        ("x" * (security.MAX_NAME_LENGTH + 1), "at most 120 characters; this one has 121"),
    ],
    ids=["empty", "blank", "newline", "tab", "nul", "line-separator", "too-long"],
)
def test_names_are_one_bounded_line(name, problem):
    with pytest.raises(ValueError, match=problem):
        db.clean_name(name, what="reader display name")


def test_markdown_in_a_name_is_kept_as_typed():
    hostile = "![x](http://127.0.0.1:9/beacon.png)"
    assert db.clean_name(f"  {hostile} ", what="reader display name") == hostile


def test_other_open_sessions_of_one_reader_are_found_and_can_be_ended(conn):
    study_id = db.create_study(conn, name="S", case_ids=make_cases(conn, 3))
    reader_id, _ = db.add_reader(conn, study_id, "Dr R")
    first = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    assert db.other_live_sessions(conn, reader_id, first) == []
    assert db.concurrent_sessions_frame(conn, study_id).empty
    second = db.create_session(conn, "reader", reader_id=reader_id, study_id=study_id)
    others = db.other_live_sessions(conn, reader_id, second)
    assert [sid for sid, _ in others] == [db.session_id(first)]
    frame = db.concurrent_sessions_frame(conn, study_id)
    assert frame[["reader_id", "open_sessions"]].values.tolist() == [[reader_id, 2]]
    assert db.revoke_other_sessions(conn, reader_id, second) == 1
    assert db.resolve_session(conn, first) is None
    assert db.resolve_session(conn, second).session_id == db.session_id(second)
    assert db.concurrent_sessions_frame(conn, study_id).empty


def test_an_audit_written_before_v11_keeps_its_rows_and_counts_them(tmp_path, fake_clock):
    old = sqlite_utils.Database(tmp_path / "v10.db")
    db.migrate(old, target=MIGRATION_NAMES.index("v11_security_audit_sources"))
    old.conn.execute(
        "INSERT INTO security_audit (at, event, ok, role, client) VALUES (?, ?, 0, 'reader', ?)",
        (START.isoformat(timespec="microseconds"), "sign_in_failed", "10.0.0.7"),
    )
    old.conn.commit()
    old.close()
    conn = db.connect(tmp_path / "v10.db")
    try:
        (row,) = db.security_audit_frame(conn).to_dict("records")
        assert (row["client"], row["address"], row["forwarded"]) == ("10.0.0.7", None, None)
        for _ in range(security.FREE_FAILURES - 1):  # the old failure still counts
            db.record_sign_in(conn, ok=False, kind="reader", client="10.0.0.7")
        assert not _allowed(conn, "10.0.0.7")
    finally:
        conn.close()
