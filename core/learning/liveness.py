"""A run's process proves it is alive, and stops when the run is cancelled.

``Heartbeat`` is a small thread with its own database connection that stamps the run every
``db.run_status.HEARTBEAT_S`` seconds, so any other process can tell a slow run from a dead one
(``db.reap_stale_runs``). When it finds the run cancelled (from the dashboard, maybe on another
machine) it raises ``RunCancelled`` in the main thread through the SIGTERM handler that
``stop_on_sigterm`` installs, the same path as a SIGTERM sent to the process.
"""

from __future__ import annotations

import _thread
import signal
import threading
from pathlib import Path

import db
from db.run_status import HEARTBEAT_S


def database_path(conn) -> Path | None:
    """The file of an open connection (the heartbeat thread opens its own); None in memory."""
    rows = conn.conn.execute("PRAGMA database_list").fetchall()
    name = next((row[2] for row in rows if row[1] == "main"), "")
    return Path(name) if name else None


class Heartbeat:
    """``with Heartbeat(conn, run_id):`` stamps the run as alive until the block ends."""

    def __init__(self, conn, run_id: str, *, every_s: float = HEARTBEAT_S):
        self.path = database_path(conn)
        self.run_id = str(run_id)
        self.every_s = float(every_s)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="run-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self.path is not None:  # an in-memory database has no other process to tell
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        conn = db.connect(self.path)  # one connection per thread
        try:
            while not self._stop.wait(self.every_s):
                try:
                    status = db.heartbeat(conn, self.run_id)
                except Exception:  # noqa: BLE001 - a busy database must not kill the run; retry
                    continue
                if status == "cancelled":
                    # Runs the SIGTERM handler in the main thread, if one is installed.
                    _thread.interrupt_main(signal.SIGTERM)
                    return
        finally:
            conn.close()


def _raise_cancelled(signum, frame) -> None:
    raise db.RunCancelled(f"stopped by signal {signal.Signals(signum).name}")


def stop_on_sigterm() -> None:
    """In a CLI process: SIGTERM raises ``RunCancelled`` so the run is marked cancelled, not left
    running (``run_cv`` and ``cervixscope cv`` catch it)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_cancelled)
