"""Opening the database: the file, its pragmas and its schema, ready for ``db/``'s functions.

Writes go through ``db.transactions.write_transaction``; see that module for the concurrency model.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import sqlite_utils

from db import schema
from db.errors import CervixScopeDBError

# Names other db modules import from here until they import them from their own modules.
from db.transactions import retry_busy, write_lock, write_transaction  # noqa: F401
from db.values import from_json, to_iso, to_json  # noqa: F401

DB_ENV = "CERVIXSCOPE_DB"
DEFAULT_DB = "cervixscope.db"
BUSY_TIMEOUT_MS = 30_000


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
        with write_lock(conn):
            retry_busy(conn.enable_wal)
            schema.migrate(conn)
    except sqlite3.OperationalError:
        raw.close()
        raise  # locked, busy, read-only, disk full: SQLite's own words say it best
    except sqlite3.DatabaseError as exc:
        raw.close()
        raise CervixScopeDBError(f"{file} is not a CervixScope database ({exc})") from exc
    return conn
