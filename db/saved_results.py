"""Saved results: slow derived values (bootstrap CIs, MRMC analyses) kept in the database under a
key of what they were computed from, so that a restarted server or another process finds them.

A cache, not a record: any row may be deleted. A key names its inputs' content, so a newer row
of the same *kind* (e.g. one rater's metrics) makes the older ones unreachable: saving keeps only
the newest row per scope and kind, and at most :data:`KEEP_PER_SCOPE` rows per scope (e.g.
``study:3``). Payloads are opaque bytes here; ``core.project.saved_values`` encodes them (JSON,
never a pickle).
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

from db.clock import now_iso
from db.transactions import write_transaction

CACHE_WRITE_WAIT_MS = 250  # a busy file skips the save rather than hold the page (30 s otherwise)
KEEP_PER_SCOPE = 500  # a 21-rater study saves about 50 kinds


def saved_result(conn: sqlite_utils.Database, scope: str, key: str) -> bytes | None:
    """The payload saved under ``(scope, key)``, or None."""
    row = conn.conn.execute(
        "SELECT payload FROM saved_results WHERE scope = ? AND key = ?", (scope, key)
    ).fetchone()
    return None if row is None else bytes(row[0])


def newest_result(conn: sqlite_utils.Database, scope: str, kind: str) -> tuple[str, bytes] | None:
    """``(key, payload)`` of the newest result of ``kind`` saved under ``scope``, or None: what
    was computed from older inputs, for a page to show while it recomputes."""
    row = conn.conn.execute(
        "SELECT key, payload FROM saved_results WHERE scope = ? AND kind = ?"
        " ORDER BY saved_at DESC LIMIT 1",
        (scope, kind),
    ).fetchone()
    return None if row is None else (row[0], bytes(row[1]))


def save_result(
    conn: sqlite_utils.Database, scope: str, kind: str, key: str, payload: bytes
) -> bool:
    """Save ``payload`` under ``(scope, key)``, replacing the scope's older rows of ``kind`` and
    dropping its oldest rows beyond :data:`KEEP_PER_SCOPE`. Returns False, saving nothing, when
    the database is busy or read-only: a cache write must never fail the page that computed the
    value."""
    raw = conn.conn
    (waits,) = raw.execute("PRAGMA busy_timeout").fetchone()
    raw.execute(f"PRAGMA busy_timeout = {int(CACHE_WRITE_WAIT_MS)}")
    try:
        with write_transaction(conn) as tx:
            tx.execute("DELETE FROM saved_results WHERE scope = ? AND kind = ?", (scope, kind))
            tx.execute(
                "INSERT OR REPLACE INTO saved_results (scope, kind, key, payload, saved_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (scope, kind, key, sqlite3.Binary(payload), now_iso(timespec="microseconds")),
            )
            tx.execute(
                "DELETE FROM saved_results WHERE scope = ? AND key NOT IN (SELECT key FROM"
                " saved_results WHERE scope = ? ORDER BY saved_at DESC LIMIT ?)",
                (scope, scope, KEEP_PER_SCOPE),
            )
    except sqlite3.OperationalError:
        return False
    finally:
        raw.execute(f"PRAGMA busy_timeout = {int(waits)}")
    return True


def forget_results(conn: sqlite_utils.Database, scope: str | None = None) -> int:
    """Delete every result saved under ``scope`` (every saved result: None); returns how many."""
    with write_transaction(conn) as raw:
        if scope is None:
            return raw.execute("DELETE FROM saved_results").rowcount
        return raw.execute("DELETE FROM saved_results WHERE scope = ?", (scope,)).rowcount
