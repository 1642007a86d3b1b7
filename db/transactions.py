"""The one way ``db/`` writes: a short ``BEGIN IMMEDIATE`` transaction.

Concurrency model (why no user ever sees "database is locked"):

* WAL journal: readers never block the writer and the writer never blocks readers.
* Every write transaction starts with ``BEGIN IMMEDIATE``, so it takes the write lock up front;
  a deferred transaction that reads first and upgrades later can fail with ``SQLITE_BUSY`` at once,
  without waiting, when another connection committed in between.
* Writers from threads of one process queue on a per-file ``threading.RLock`` instead of polling
  SQLite's busy handler (which sleeps in growing steps of up to 100 ms); writers in other processes
  (a CV job) are covered by the 30 s busy timeout, and ``BEGIN IMMEDIATE`` is retried a few times on
  top of that.
* ``synchronous=NORMAL`` in WAL mode: a commit is durable against application crashes and stays
  consistent on power loss; it avoids an fsync per submitted read.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import sqlite_utils

BEGIN_RETRIES = 5

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def retry_busy(fn, *args):
    """Call ``fn(*args)``, retrying a few times while SQLite reports the file locked or busy."""
    for attempt in range(BEGIN_RETRIES):
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or attempt == BEGIN_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None


def write_lock(conn: sqlite_utils.Database) -> threading.RLock:
    """The per-file lock that writers of this process queue on."""
    path = getattr(conn, "cervixscope_path", None)
    if path is None:
        rows = conn.conn.execute("PRAGMA database_list").fetchall()
        path = next((row[2] for row in rows if row[1] == "main"), "") or f"memory:{id(conn)}"
        conn.cervixscope_path = path
    with _locks_guard:
        return _locks.setdefault(path, threading.RLock())


@contextmanager
def write_transaction(conn: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """Run the block in one ``BEGIN IMMEDIATE`` transaction; commit on success, roll back on error.

    Nested use joins the outer transaction. Yields the raw ``sqlite3`` connection.
    """
    raw = conn.conn
    if raw.in_transaction:
        yield raw
        return
    with write_lock(conn):
        retry_busy(raw.execute, "BEGIN IMMEDIATE")
        try:
            yield raw
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        else:
            try:
                raw.execute("COMMIT")
            except BaseException:
                if raw.in_transaction:
                    raw.execute("ROLLBACK")
                raise


@contextmanager
def read_snapshot(conn: sqlite_utils.Database) -> Iterator[sqlite3.Connection]:
    """Run the block's SELECTs on one snapshot of the file (a deferred read transaction), so
    that several queries see the same writes. Nested use joins the outer transaction."""
    raw = conn.conn
    if raw.in_transaction:
        yield raw
        return
    raw.execute("BEGIN")
    try:
        yield raw
    finally:
        if raw.in_transaction:
            raw.execute("COMMIT")
