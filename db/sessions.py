"""Sign-in sessions that survive a browser reload: a random token per sign-in, only its hash stored.

The browser keeps the token (in the page URL's ``session`` query parameter); the database keeps
``sha256(token)``, the role, who signed in, and when the session expires or was revoked. A copied
database file therefore holds no usable token, and a session ends at its expiry, on sign-out, or
when the admin revokes or reissues the reader's access code. The token is 256 random bits, so one
unsalted hash is enough (there is nothing to guess from it, unlike a short access code).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

import pandas as pd
import sqlite_utils

from db.clock import now_iso, utc_now
from db.transactions import write_transaction

SESSION_HOURS = 12  # a working day of reading; a reader signs in again the next day
ROLES = ("admin", "reader", "annotator")


@dataclass(frozen=True)
class SessionInfo:
    """Who a live session belongs to."""

    role: str
    reader_id: int | None
    study_id: int | None
    display_name: str
    expires_at: str
    session_id: str = ""  # :func:`session_id` of the token: safe to show and to audit
    annotator_id: int | None = None


def session_id(token: str) -> str:
    """A short public name for a session (a prefix of its token's hash): shown to the admin and
    written to the audit, it cannot be turned back into the token."""
    return _hash(token)[:12]


def _hash(token: str) -> str:
    return hashlib.sha256(str(token).encode()).hexdigest()


def create_session(
    conn: sqlite_utils.Database,
    role: str,
    *,
    reader_id: int | None = None,
    study_id: int | None = None,
    annotator_id: int | None = None,
    hours: float = SESSION_HOURS,
) -> str:
    """Start a session and return its token (shown to the browser once, stored only hashed).

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    role : str
        ``"admin"``, ``"reader"`` or ``"annotator"``.
    reader_id, study_id : int, optional
        The signed-in reader and their study (required for a reader, absent for an admin).
    annotator_id : int, optional
        The signed-in annotator (required for an annotator, absent otherwise).
    hours : float
        Lifetime of the session.

    Raises
    ------
    ValueError
        On an unknown role, a reader session without a reader, or a non-positive lifetime.
    """
    if role not in ROLES:
        raise ValueError(f"session role {role!r} is not one of {', '.join(ROLES)}")
    if (role == "reader") != (reader_id is not None):
        raise ValueError("a reader session needs reader_id; an admin session takes none")
    if (role == "annotator") != (annotator_id is not None):
        raise ValueError("an annotator session needs annotator_id; other roles take none")
    if not hours > 0:
        raise ValueError(f"session lifetime must be > 0 hours, got {hours}")
    token = secrets.token_urlsafe(32)
    expires = (utc_now() + timedelta(hours=float(hours))).isoformat(timespec="microseconds")
    with write_transaction(conn) as raw:
        raw.execute(
            "INSERT INTO sessions (token_hash, role, reader_id, study_id, annotator_id,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_hash(token), role, reader_id, study_id, annotator_id, now_iso(), expires),
        )
    return token


def resolve_session(conn: sqlite_utils.Database, token: str | None) -> SessionInfo | None:
    """The live session a token belongs to, or None when it is unknown, expired or revoked
    (or its reader's access code was revoked since).

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    token : str or None
        As :func:`create_session` returned it.
    """
    if not token:
        return None
    row = conn.conn.execute(
        "SELECT s.role, s.reader_id, s.study_id, s.expires_at, s.revoked_at,"
        " COALESCE(r.display_name, a.display_name), COALESCE(r.code_revoked_at,"
        " a.code_revoked_at), s.annotator_id"
        " FROM sessions s LEFT JOIN readers r ON r.reader_id = s.reader_id"
        " LEFT JOIN annotators a ON a.annotator_id = s.annotator_id"
        " WHERE s.token_hash = ?",
        (_hash(token),),
    ).fetchone()
    if row is None or row[4] is not None or row[6] is not None:
        return None
    if row[3] <= utc_now().isoformat(timespec="microseconds"):
        return None
    name = "admin" if row[0] == "admin" else str(row[5])
    return SessionInfo(row[0], row[1], row[2], name, row[3], session_id(token), row[7])


def revoke_session(conn: sqlite_utils.Database, token: str | None) -> None:
    """End one session (sign-out); an unknown or empty token is a no-op."""
    if not token:
        return
    with write_transaction(conn) as raw:
        raw.execute(
            "UPDATE sessions SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (now_iso(), _hash(token)),
        )


def revoke_reader_sessions(raw, reader_id: int) -> None:
    """Inside a write transaction: end every session of one reader."""
    raw.execute(
        "UPDATE sessions SET revoked_at = ? WHERE reader_id = ? AND revoked_at IS NULL",
        (now_iso(), int(reader_id)),
    )


def other_live_sessions(
    conn: sqlite_utils.Database, reader_id: int, token: str | None
) -> list[tuple[str, str]]:
    """The reader's other sessions that are neither expired nor revoked, oldest first.

    One query over the ``sessions_reader`` index: cheap enough to run before every submit.

    Returns
    -------
    list of (str, str)
        ``(session_id, created_at)`` of each session other than ``token``'s.
    """
    rows = conn.conn.execute(
        "SELECT token_hash, created_at FROM sessions WHERE reader_id = ? AND revoked_at IS NULL"
        " AND expires_at > ? AND token_hash != ? ORDER BY created_at",
        (int(reader_id), utc_now().isoformat(timespec="microseconds"), _hash(token or "")),
    ).fetchall()
    return [(str(h)[:12], str(created)) for h, created in rows]


def revoke_other_sessions(conn: sqlite_utils.Database, reader_id: int, token: str) -> int:
    """End every session of the reader except ``token``'s; return how many ended."""
    with write_transaction(conn) as raw:
        cursor = raw.execute(
            "UPDATE sessions SET revoked_at = ? WHERE reader_id = ? AND revoked_at IS NULL"
            " AND token_hash != ?",
            (now_iso(), int(reader_id), _hash(token)),
        )
        return int(cursor.rowcount)


def concurrent_sessions_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """Readers of a study with more than one open session (one code used in two places).

    Returns
    -------
    pandas.DataFrame
        Columns ``reader_id, display_name, open_sessions, first_signed_in, last_signed_in``.
    """
    return pd.read_sql_query(
        "SELECT s.reader_id, r.display_name, COUNT(*) AS open_sessions,"
        " MIN(s.created_at) AS first_signed_in, MAX(s.created_at) AS last_signed_in"
        " FROM sessions s JOIN readers r ON r.reader_id = s.reader_id"
        " WHERE s.study_id = ? AND s.role = 'reader' AND s.revoked_at IS NULL"
        " AND s.expires_at > ? GROUP BY s.reader_id HAVING COUNT(*) > 1 ORDER BY s.reader_id",
        conn.conn,
        params=(int(study_id), utc_now().isoformat(timespec="microseconds")),
    )
