"""What state a run is in, and whether the process behind it still lives.

Each CV process stamps a heartbeat with its pid and host; any process that lists runs reaps the
queued or running runs whose process is gone, so a killed run never stays running for good.
"""

from __future__ import annotations

import os
import socket

import pandas as pd
import sqlite_utils

from db import clock
from db.clock import now_iso
from db.errors import CervixScopeDBError, RunNotFound
from db.transactions import write_transaction

RUN_STATUSES = ("queued", "running", "done", "failed", "partial", "cancelled")
TERMINAL_STATUSES = ("done", "failed", "partial", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
HEARTBEAT_S = 10.0  # how often a run's process says it is alive (core.learning.liveness)
# A queued or running run with no sign of life for this long is failed by the next look. Generous:
# a slow fold on busy cores must never be taken for a dead process (a dead process on this host
# is caught at once by its pid).
STALE_AFTER_S = 180.0


class RunCancelled(CervixScopeDBError):
    """The run was cancelled: its process must stop and write nothing more as progress or result."""


def heartbeat(conn: sqlite_utils.Database, run_id: str, *, pid: int | None = None) -> str:
    """Say that a queued or running run's process is alive; return the run's status.

    A run that is no longer queued or running is left as it is (a heartbeat never revives a
    failed or cancelled run); its status tells the caller to stop.

    Parameters
    ----------
    pid : int, optional
        The process to record with the heartbeat (with this host), e.g. a job's worker.
    """
    with write_transaction(conn) as raw:
        row = raw.execute("SELECT status FROM runs WHERE run_id = ?", (str(run_id),)).fetchone()
        if row is None:
            raise RunNotFound(f"run {run_id!r} is not in the database")
        if row[0] not in ACTIVE_STATUSES:
            return str(row[0])
        raw.execute("UPDATE runs SET heartbeat_at = ? WHERE run_id = ?", (now_iso(), str(run_id)))
        if pid is not None:
            raw.execute(
                "UPDATE runs SET pid = ?, host = ? WHERE run_id = ?",
                (int(pid), socket.gethostname(), str(run_id)),
            )
    return str(row[0])


def _process_gone(pid: int | None, host: str | None) -> bool:
    """True when ``pid`` ran on this host and no longer exists (elsewhere we cannot tell)."""
    if pid is None or host != socket.gethostname():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    return False


def reap_stale_runs(
    conn: sqlite_utils.Database, *, stale_after_s: float = STALE_AFTER_S
) -> list[str]:
    """Mark ``failed`` every queued or running run whose process is gone; return their ids.

    A process is gone when it ran on this host and its pid no longer exists, or when the run has
    shown no sign of life (heartbeat, start or creation) for ``stale_after_s`` seconds. Any
    process that lists runs calls this, so a killed run never stays running or queued for good.
    """
    now = clock.utc_now()  # looked up at call time: tests move the one clock
    rows = conn.conn.execute(
        "SELECT run_id, status, pid, host, COALESCE(heartbeat_at, started_at, created_at)"
        " FROM runs WHERE status IN ('queued', 'running')"
    ).fetchall()
    reaped = []
    for run_id, status, pid, host, last in rows:
        silent = (now - pd.Timestamp(last).to_pydatetime()).total_seconds()
        if _process_gone(pid, host):
            reason = f"its process {pid} on {host} stopped without finishing the run"
        elif silent > stale_after_s:
            where = f"process {pid} on {host}" if pid is not None else "no process"
            reason = f"no sign of life for {silent:.0f} s ({where}): the run was abandoned"
        else:
            continue
        with write_transaction(conn) as raw:  # only if nobody finished it meanwhile
            raw.execute(
                "UPDATE runs SET status = 'failed', message = ?, ended_at = ?"
                " WHERE run_id = ? AND status = ?",
                (f"{status} run failed: {reason}", now_iso(), run_id, status),
            )
        reaped.append(str(run_id))
    return reaped
