"""Sign-in protection, the security audit and concurrent sessions, through the real app (AppTest)
on a real database file with a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from streamlit.runtime.app_session import AppSession, AppSessionState
from streamlit.runtime.state import SessionState

import db
from core.cli import main
from db import clock, security
from tests.dashboard.reader_study_helpers import (
    ADMIN_SECRET,
    answer,
    by_label,
    current_position,
    session,
    sign_in_admin,
    sign_in_reader,
)
from tests.db.conftest import make_cases

pytestmark = pytest.mark.timeout(300)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def fake_clock(monkeypatch) -> Clock:
    moment = Clock()
    monkeypatch.setattr(clock, "utc_now", lambda: moment.now)
    return moment


@pytest.fixture
def study_db(tmp_path, monkeypatch):
    """A database with a 4-case open study and one reader: ``(path, study_id, reader_id, code)``."""
    path = tmp_path / "security.db"
    conn = db.connect(path)
    try:
        study_id = db.create_study(conn, name="Pilot", case_ids=make_cases(conn, 4))
        reader_id, code = db.add_reader(conn, study_id, "Dr R")
    finally:
        conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    return path, study_id, reader_id, code


def _audit(path):
    conn = db.connect(path)
    try:
        return db.security_audit_frame(conn)
    finally:
        conn.close()


def _try_admin(at, secret: str):
    by_label(at.text_input, "Admin secret").input(secret)
    by_label(at.button, "Sign in").click()
    return at.run()


def _errors(at) -> list[str]:
    return [e.value for e in at.error]


def test_twenty_wrong_admin_secrets_lock_sign_in_and_are_in_the_audit(study_db, fake_clock):
    path = study_db[0]
    at = session()
    for attempt in range(security.ADMIN_LOCKOUT_AFTER):
        fake_clock.advance(security.MAX_DELAY_S + 1)  # past each back-off: only the count matters
        _try_admin(at, f"guess-{attempt}")
        assert _errors(at)[0].startswith("That admin secret is not correct.")
    assert _errors(at) == [
        "That admin secret is not correct. Admin sign-in from this address is now locked for a "
        "while."
    ]
    _try_admin(at, ADMIN_SECRET)  # the right secret, during the lockout
    assert not at.exception
    (error,) = _errors(at)
    assert error.startswith(
        "Admin sign-in from this address is locked after 20 wrong secrets in a row; try again at"
    )
    assert "(in 15 min)" in error
    assert [s.label for s in at.button if s.label == "Sign in"]  # still on the sign-in page
    audit = _audit(path)
    failed = audit[(audit["event"] == "sign_in_failed") & (audit["role"] == "admin")]
    assert len(failed) == 20 and set(failed["client"]) == {"localhost"}
    assert audit["event"].tolist().count("admin_lockout") == 1
    assert "guess" not in audit.to_csv()  # the audit never holds what was typed
    fake_clock.advance(60)
    assert main(["--db", str(path), "unlock-admin"]) == 0  # the holder of the secret unlocks
    assert _audit(path).iloc[0]["event"] == "admin_unlocked"
    _try_admin(at, ADMIN_SECRET)
    assert not _errors(at) and not at.exception
    latest = _audit(path).iloc[0]
    assert (latest["event"], latest["ok"], latest["role"]) == ("sign_in", 1, "admin")
    assert isinstance(latest["session"], str) and len(latest["session"]) == 12


def test_wrong_codes_back_off_and_the_right_code_waits_too(study_db, fake_clock):
    path, _, _, code = study_db
    at = session()
    for _ in range(security.FREE_FAILURES):
        sign_in_reader(at, "R1-AAAA-BBBB-CCCC")
        assert _errors(at)[0].startswith("That access code is not valid.")
    sign_in_reader(at, code)  # right code, but 1 s after the third failure has not passed
    (error,) = _errors(at)
    assert error.startswith("Too many failed sign-ins from this address; try again at")
    fake_clock.advance(1.5)
    sign_in_reader(at, code)
    assert not _errors(at) and current_position(at) == 1  # the reading page, its first case
    events = _audit(path)["event"].tolist()
    assert events.count("sign_in_failed") == 3 and events[0] == "sign_in"


def test_a_reader_code_in_two_sessions_is_shown_to_both_sides_and_audited(study_db):
    path, study_id, reader_id, code = study_db
    first = sign_in_reader(session(), code)
    second = sign_in_reader(session(), code)
    warning = [w.value for w in second.warning if "also in use" in w.value]
    assert warning and "1 other session(s)" in warning[0]
    answer(first, "SCC")
    answer(second, "AC")
    audit = _audit(path)
    submits = audit[audit["event"] == "read_submitted"]
    assert len(submits) == 2
    assert submits["session"].nunique() == 2  # both sessions' submits, each with its own id
    assert (audit["event"] == "concurrent_session").sum() == 1
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception
    assert any("more than one session" in w.value for w in admin.warning)
    shared = [f.value for f in admin.dataframe if "open_sessions" in f.value.columns][0]
    assert shared[["reader_id", "open_sessions"]].values.tolist() == [[reader_id, 2]]
    by_label(second.button, "End my other sessions").click()
    second.run()
    assert not [w for w in second.warning if "also in use" in w.value]
    conn = db.connect(path)
    try:
        assert db.concurrent_sessions_frame(conn, study_id).empty
    finally:
        conn.close()


def test_reader_changes_exports_and_imports_are_audited(study_db):
    path, study_id, _, _ = study_db
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    by_label(
        admin.text_input, "Reader's display name (readers never see each other's names)"
    ).input("Dr New")
    by_label(admin.button, "Add reader").click()
    admin.run()
    by_label(admin.button, "Revoke code").click()
    admin.run()
    by_label(admin.button, "Issue a new code").click()
    admin.run()
    assert not admin.exception
    audit = _audit(path)
    assert {"reader_added", "code_revoked", "code_reissued"} <= set(audit["event"])
    assert set(audit.loc[audit["event"] != "sign_in", "study_id"]) == {study_id}
    panel = [e for e in admin.expander if e.label.startswith("Security audit (")]
    assert panel, [e.label for e in admin.expander]


def test_a_browser_cannot_clear_every_sessions_cache(monkeypatch):
    import streamlit as st

    from dashboard import store

    calls: list[int] = []

    @st.cache_data
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    def clear_request() -> None:  # what Streamlit does with a browser's clear_cache message
        probe = object.__new__(AppSession)
        probe._session_state = SessionState()
        probe._state = AppSessionState.SHUTDOWN_REQUESTED  # nothing to shut down when collected
        from streamlit.proto.BackMsg_pb2 import BackMsg

        probe.handle_backmsg(BackMsg(clear_cache=True))

    handler = AppSession._handle_clear_cache_request  # guarded already if an app test ran
    monkeypatch.setattr(AppSession, "_handle_clear_cache_request",
                        getattr(handler, "streamlit_original", handler))  # fmt: skip
    square(3)
    clear_request()  # unguarded, as Streamlit ships: the shared cache is gone
    square(3)
    assert calls == [3, 3]
    store.refuse_global_cache_clear()
    clear_request()
    square(3)
    assert calls == [3, 3]  # guarded: still cached for everyone


def test_only_the_holder_of_the_secret_can_unlock(study_db, monkeypatch, tmp_path, capsys):
    import core.commands.app as app_commands

    monkeypatch.delenv("CERVIXSCOPE_ADMIN_SECRET")
    monkeypatch.setattr(app_commands, "SECRETS_PATH", tmp_path / "no-secrets.toml")
    assert main(["--db", str(study_db[0]), "unlock-admin"]) == 2
    assert "no admin secret is configured" in capsys.readouterr().err
    assert "admin_unlocked" not in _audit(study_db[0])["event"].tolist()
