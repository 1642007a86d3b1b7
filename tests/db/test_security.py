"""Sign-in limits and the security audit, on a real SQLite file with a controlled clock."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

import db
from db import clock, security
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


def test_rotating_addresses_meets_the_global_limit(conn, fake_clock):
    for i in range(security.GLOBAL_MAX_FAILURES):
        _fail(conn, f"198.51.100.{i}")
    with pytest.raises(db.SignInThrottled, match="on this server") as refused:
        db.check_sign_in(conn, client="203.0.113.250", kind="reader")
    assert refused.value.reason == "global"
    fake_clock.advance(security.GLOBAL_WINDOW_S + 0.01)
    assert _allowed(conn, "203.0.113.250")


def test_twenty_wrong_admin_secrets_lock_admin_sign_in_and_are_audited(conn, fake_clock):
    started = [_fail(conn, f"192.0.2.{i}", "admin") for i in range(security.ADMIN_LOCKOUT_AFTER)]
    assert started == [False] * (security.ADMIN_LOCKOUT_AFTER - 1) + [True]
    with pytest.raises(db.SignInThrottled, match="Admin sign-in is locked after 20 wrong") as e:
        db.check_sign_in(conn, client="192.0.2.200", kind="admin")  # a fresh address too
    assert (e.value.retry_at - fake_clock.now) == timedelta(seconds=security.ADMIN_LOCKOUT_S)
    assert _allowed(conn, "192.0.2.201", "reader")  # readers are not locked out with it
    audit = db.security_audit_frame(conn)
    failed = audit[(audit["event"] == "sign_in_failed") & (audit["role"] == "admin")]
    assert len(failed) == 20 and set(failed["ok"]) == {0}
    assert audit["event"].tolist().count("admin_lockout") == 1
    fake_clock.advance(security.ADMIN_LOCKOUT_S + 1)
    assert _allowed(conn, "192.0.2.200", "admin")
    assert _fail(conn, "192.0.2.200", "admin") is False  # the count starts again


def test_a_success_between_failures_prevents_the_lockout(conn, fake_clock):
    for i in range(security.ADMIN_LOCKOUT_AFTER - 1):
        _fail(conn, f"192.0.2.{i}", "admin")
    db.record_sign_in(conn, ok=True, kind="admin", client="192.0.2.99")
    assert _fail(conn, "192.0.2.100", "admin") is False
    assert _allowed(conn, "192.0.2.101", "admin")


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
