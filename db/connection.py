"""Opening the database, and the one way ``db/`` writes: a short ``BEGIN IMMEDIATE`` transaction.

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

import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from db.errors import CervixScopeDBError

DB_ENV = "CERVIXSCOPE_DB"
DEFAULT_DB = "cervixscope.db"
BUSY_TIMEOUT_MS = 30_000
BEGIN_RETRIES = 5

_locks: dict[str, threading.RLock] = {}
_locks_guard = threading.Lock()


def resolve_db_path(path: str | os.PathLike | None = None) -> Path:
    """Return the database file to use: ``path`` if given, else ``$CERVIXSCOPE_DB``, else
    ``./cervixscope.db``.

    Parameters
    ----------
    path : str or path-like, optional
        An explicit database file (for example from the CLI's ``--db``).

    Returns
    -------
    pathlib.Path
        The path, made absolute against the current directory.
    """
    chosen = path if path not in (None, "") else os.environ.get(DB_ENV) or DEFAULT_DB
    return Path(chosen).expanduser().absolute()


def connect(path: str | os.PathLike | None = None) -> sqlite_utils.Database:
    """Open the CervixScope database, configure it, and apply pending migrations.

    Open one connection per thread or operation and close it afterwards; never share one across
    Streamlit sessions.

    Parameters
    ----------
    path : str or path-like, optional
        Database file; see :func:`resolve_db_path` for the defaults. Created if missing.

    Returns
    -------
    sqlite_utils.Database
        A database in WAL mode with foreign keys on, a 30 s busy timeout and the current schema.

    Raises
    ------
    FileNotFoundError
        If the folder that should hold the database file does not exist.
    CervixScopeDBError
        If the file exists but is not an SQLite database.
    """
    from db import schema  # here, because schema imports this module

    file = resolve_db_path(path)
    if not file.parent.is_dir():
        raise FileNotFoundError(f"cannot open database {file}: folder {file.parent} does not exist")
    raw = sqlite3.connect(
        str(file),
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # autocommit; db/ opens every transaction itself
        check_same_thread=False,  # safe: a connection is used by one operation at a time
    )
    conn = sqlite_utils.Database(raw)
    conn.cervixscope_path = str(file)
    try:
        raw.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        raw.execute("PRAGMA foreign_keys = ON")
        raw.execute("PRAGMA synchronous = NORMAL")
        # Setting up a new file: sessions of this process take turns, instead of making SQLite's
        # busy handler sleep while another connection switches the journal mode or migrates.
        with _write_lock(conn):
            _retry_busy(conn.enable_wal)
            schema.migrate(conn)
    except sqlite3.OperationalError:
        raw.close()
        raise  # locked, busy, read-only, disk full: SQLite's own words say it best
    except sqlite3.DatabaseError as exc:
        raw.close()
        raise CervixScopeDBError(f"{file} is not a CervixScope database ({exc})") from exc
    return conn


def _retry_busy(fn, *args):
    for attempt in range(BEGIN_RETRIES):
        try:
            return fn(*args)
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or attempt == BEGIN_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    return None


def _write_lock(conn: sqlite_utils.Database) -> threading.RLock:
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
    with _write_lock(conn):
        _retry_busy(raw.execute, "BEGIN IMMEDIATE")
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


def to_iso(value: str | datetime | None, *, name: str = "timestamp") -> str | None:
    """Normalise a datetime or ISO 8601 string to UTC ISO 8601 with milliseconds (naive = UTC)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{name} {value!r} is not an ISO 8601 time such as 2026-11-25T19:30:00+00:00"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


def to_json(value: Any) -> str | None:
    """Serialise ``value`` to JSON (numpy values, paths and ``to_dict()`` objects allowed)."""
    if value is None:
        return None
    return json.dumps(value, default=_json_default, sort_keys=True)


def from_json(text: str | None) -> Any:
    """Inverse of :func:`to_json`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)
