"""Answer attempts: each answer the reading page sends carries the browser's attempt id, so a
retried submit (after a dropped connection, a server restart or a reload) is stored once.

An answer the server refuses (the study was closed, the reader's code revoked) is kept here too,
with its reason, for the admin: nothing a reader entered is lost. Readers' pages never read this
table; :func:`refused_answers_frame` is for the study admin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd
import sqlite_utils

from db.clock import now_iso
from db.transactions import write_transaction
from db.values import to_json

MAX_ATTEMPT_ID = 64


@dataclass(frozen=True)
class Attempt:
    """One answer as the browser sent it; ``confidences`` keyed ``c_SCC`` etc."""

    attempt_id: str
    study_id: int
    reader_id: int
    arm: str
    position: int
    display_id: str
    label: str
    confidences: Mapping[str, float]
    duration_ms: int | None
    answered_at: str
    marks: tuple = ()  # a localisation read's marks as the browser sent them (dicts)


class AttemptRefused(Exception):
    """The attempt was refused before (its reason is the message): it is not stored now either."""


def check_attempt_id(attempt_id: str) -> str:
    """The id, or ValueError: 8 to 64 characters of letters, digits and dashes."""
    text = str(attempt_id or "")
    if not 8 <= len(text) <= MAX_ATTEMPT_ID or not all(ch.isalnum() or ch == "-" for ch in text):
        raise ValueError(f"attempt id {text[:80]!r} is not 8-64 letters, digits or dashes")
    return text


def _insert(raw, attempt: Attempt, outcome: str, *, case_id=None, read_id=None, reason=None):
    raw.execute(
        "INSERT OR IGNORE INTO answer_attempts (attempt_id, study_id, reader_id, arm, position,"
        " display_id, case_id, label, confidences, duration_ms, answered_at, received_at,"
        " outcome, reason, read_id, marks)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (attempt.attempt_id, int(attempt.study_id), int(attempt.reader_id), attempt.arm,
         int(attempt.position), attempt.display_id, case_id, attempt.label,
         to_json(dict(attempt.confidences)), attempt.duration_ms, attempt.answered_at, now_iso(),
         outcome, reason, read_id, to_json(list(attempt.marks))),
    )  # fmt: skip


def _earlier(raw, attempt: Attempt) -> tuple | None:
    row = raw.execute(
        "SELECT reader_id, outcome, read_id, reason FROM answer_attempts WHERE attempt_id = ?",
        (attempt.attempt_id,),
    ).fetchone()
    if row is not None and int(row[0]) != int(attempt.reader_id):
        raise ValueError(f"attempt id {attempt.attempt_id!r} belongs to another reader")
    return row


def store_once(
    conn: sqlite_utils.Database, attempt: Attempt, store: Callable[[], tuple[int, str]]
) -> tuple[int, bool]:
    """Run ``store`` (it writes the read, returns its id and case id) unless this attempt was
    stored before, all in one transaction. Return ``(read_id, duplicate)``.

    Raises
    ------
    AttemptRefused
        If this attempt was refused earlier.
    """
    with write_transaction(conn) as raw:
        earlier = _earlier(raw, attempt)
        if earlier is not None:
            if earlier[1] == "refused":
                raise AttemptRefused(str(earlier[3]))
            return int(earlier[2]), True
        read_id, case_id = store()
        _insert(raw, attempt, "stored", case_id=case_id, read_id=int(read_id))
        return int(read_id), False


def keep_refused(
    conn: sqlite_utils.Database, attempt: Attempt, reason: str, *, case_id: str | None = None
) -> bool:
    """Keep an answer the server refused, with ``reason``, for the admin; False when this attempt
    was already recorded (stored or refused)."""
    with write_transaction(conn) as raw:
        exists = raw.execute(
            "SELECT 1 FROM answer_attempts WHERE attempt_id = ?", (attempt.attempt_id,)
        ).fetchone()
        if exists is not None:  # stored or refused before (or another reader's id): keep that
            return False
        _insert(raw, attempt, "refused", case_id=case_id, reason=str(reason))
        return True


def refused_answers_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """The study's refused answers (admin only): reader, case, answer, reason, times."""
    sql = (
        "SELECT a.attempt_id, a.reader_id, r.display_name AS reader, a.arm, a.position, a.display_id,"
        " a.case_id, a.label, a.confidences, a.marks, a.duration_ms, a.answered_at, a.received_at,"
        " a.reason FROM answer_attempts a LEFT JOIN readers r ON r.reader_id = a.reader_id"
        " WHERE a.study_id = ? AND a.outcome = 'refused' ORDER BY a.received_at, a.attempt_id"
    )
    return pd.read_sql_query(sql, conn.conn, params=(int(study_id),))
