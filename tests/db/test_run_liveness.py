"""A run's liveness and cancellation in the database: heartbeats, dead processes, cancelled runs.

Real SQLite files, reopened by a second connection as another process would; the clock is moved
by monkeypatching ``db.clock.utc_now`` (the one clock), never by sleeping.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from datetime import timedelta

import pytest

import db
from db import clock
from db.run_status import STALE_AFTER_S


def _queued(conn, **config) -> str:
    return db.create_run(conn, model="cnn", mode="features", config=config or {"a": 1}, seed=0)


_REAL_NOW = clock.utc_now


def _later(monkeypatch, seconds: float) -> None:
    """The clock ``seconds`` after now (the real now, however often this is called)."""
    start = _REAL_NOW()
    monkeypatch.setattr(clock, "utc_now", lambda: start + timedelta(seconds=seconds))


def test_a_run_without_heartbeat_is_failed_by_the_next_look(tmp_path, monkeypatch):
    conn = db.connect(tmp_path / "l.db")
    run_id = _queued(conn)
    db.start_run(conn, run_id)
    # As if the process ran on another machine: its pid cannot be checked from here.
    db.update_run(conn, run_id, host="elsewhere", pid=1234)
    assert db.get_run(conn, run_id)["status"] == "running"  # alive while it beats
    _later(monkeypatch, STALE_AFTER_S - 5)
    db.heartbeat(conn, run_id)
    _later(monkeypatch, 2 * STALE_AFTER_S - 10)
    assert db.get_run(conn, run_id)["status"] == "running"
    _later(monkeypatch, 2 * STALE_AFTER_S + 10)
    other = db.connect(tmp_path / "l.db")  # the next look, by anyone
    row = db.runs_frame(other).set_index("run_id").loc[run_id]
    assert row["status"] == "failed"
    assert "no sign of life" in row["message"] and "1234 on elsewhere" in row["message"]


def test_a_dead_process_on_this_host_fails_its_run_at_once(tmp_path):
    conn = db.connect(tmp_path / "l.db")
    run_id = _queued(conn)
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True)  # fmt: skip
    dead_pid = int(done.stdout)  # exited and reaped: no such process any more
    db.update_run(conn, run_id, pid=dead_pid, host=socket.gethostname())
    run = db.get_run(db.connect(tmp_path / "l.db"), run_id)
    assert run["status"] == "failed"
    assert f"process {dead_pid}" in run["message"] and "stopped" in run["message"]


def test_a_heartbeat_never_revives_an_ended_run(tmp_path):
    conn = db.connect(tmp_path / "l.db")
    run_id = _queued(conn)
    db.fail_run(conn, run_id, "boom")
    assert db.heartbeat(conn, run_id) == "failed"
    assert db.get_run(conn, run_id)["status"] == "failed"


def test_a_cancelled_run_refuses_progress_and_results(tmp_path):
    conn = db.connect(tmp_path / "l.db")
    run_id = _queued(conn)
    db.start_run(conn, run_id)
    db.cancel_run(conn, run_id, "cancelled from the dashboard")
    with pytest.raises(db.RunCancelled, match="cancelled from the dashboard"):
        db.report_progress(conn, run_id, 0.5, "fold 2 of 4")
    with pytest.raises(db.RunCancelled):
        db.finish_run(conn, run_id, status="done")
    db.fail_run(conn, run_id, "the process saw the cancellation")  # stays cancelled
    run = db.get_run(conn, run_id)
    assert (run["status"], run["message"]) == ("cancelled", "cancelled from the dashboard")
    assert run["ended_at"] is not None
    assert db.heartbeat(conn, run_id) == "cancelled"
    with pytest.raises(ValueError, match="is cancelled: only a queued or running run"):
        db.cancel_run(conn, run_id)


def test_runs_from_before_liveness_still_open(tmp_path):
    """A release-5 database gains the columns and the status; its runs are kept."""
    import sqlite_utils

    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    db.migrate(old, target=5)
    old.conn.execute(
        "INSERT INTO runs (run_id, model, mode, config, status, created_at)"
        " VALUES ('r-old', 'cnn', 'features', '{}', 'done', '2026-01-01T00:00:00+00:00')"
    )
    old.conn.commit()
    old.close()
    conn = db.connect(path)
    for column in ("heartbeat_at", "pid", "host"):
        assert column in {c.name for c in conn["runs"].columns}
    assert conn.conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert db.get_run(conn, "r-old")["status"] == "done"
    run_id = _queued(conn)
    db.cancel_run(conn, run_id)  # the new status passes the table's CHECK
    with pytest.raises(Exception, match="CHECK constraint failed"):
        conn.conn.execute("UPDATE runs SET status = 'bogus' WHERE run_id = ?", (run_id,))


@pytest.mark.parametrize(
    "run_id",
    ["../../x", "..", "a/b", "/etc", "x\\y", "a..b", "-rf", " r1", "", "r" * 81, "r\n1", "é1"],
    ids=repr,
)
def test_run_ids_that_are_not_plain_names_are_refused(tmp_path, run_id):
    conn = db.connect(tmp_path / "ids.db")
    if run_id == "":
        assert db.create_run(conn, model="cnn", mode="features", config={}, seed=0, run_id=run_id)
        return  # empty means "make one"
    with pytest.raises(ValueError, match=r"^run id .* is not allowed: use 1-80 letters") as info:
        db.create_run(conn, model="cnn", mode="features", config={}, seed=0, run_id=run_id)
    assert "\n" not in str(info.value)
    assert db.runs_frame(conn).empty


def test_plain_run_ids_are_kept(tmp_path):
    conn = db.connect(tmp_path / "ids.db")
    for run_id in ("r1", "cmp-test", "r20261125T193012-4f2a9c", "a.b_c"):
        assert db.create_run(conn, model="m", mode="features", config={}, seed=0, run_id=run_id)
