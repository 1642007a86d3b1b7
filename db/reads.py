"""Reads: a reader's answer per case and arm, kept once (idempotent upsert) with a full audit log.

Which helpers readers' pages may use: :func:`worklist`, :func:`next_unread` and
:func:`reader_reads_frame` never carry the true label. :func:`reads_frame` and
:func:`audit_frame` do (``truth``) and are for researcher pages only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlite_utils

from db import read_marks
from db.cases import CLASSES, _plain, normalise_label
from db.clock import now_iso
from db.errors import CaseNotFound
from db.studies import _require_open, _study_row, require_reader
from db.transactions import read_snapshot, write_transaction
from db.values import from_json, to_iso, to_json

CONFIDENCE_COLUMNS = ("c_SCC", "c_AC", "c_ASC")
READ_FIELDS = (
    "label", "c_SCC", "c_AC", "c_ASC", "shown_at", "submitted_at", "duration_ms",
)  # fmt: skip


def _check_arm(study: dict, arm: str) -> None:
    if arm not in study["arms"]:
        raise ValueError(
            f"arm {arm!r} is not part of study {study['study_id']}: it has "
            f"{', '.join(study['arms'])}"
        )


def normalise_confidences(confidences: Any) -> list[float | None]:
    """``c_SCC, c_AC, c_ASC`` from a dict (keys ``SCC`` or ``c_SCC``), a 3-sequence, or None.

    Raises
    ------
    ValueError
        If a value is missing, not a number, or outside [0, 1].
    """
    if confidences is None:
        return [None, None, None]
    if isinstance(confidences, Mapping):
        values = []
        for name in CLASSES:
            if name in confidences:
                values.append(confidences[name])
            elif f"c_{name}" in confidences:
                values.append(confidences[f"c_{name}"])
            else:
                raise ValueError(
                    f"confidences {dict(confidences)!r} lack {name}; give one per class "
                    f"({', '.join(CLASSES)}) or none at all"
                )
    elif isinstance(confidences, Sequence) and not isinstance(confidences, str):
        if len(confidences) != len(CLASSES):
            raise ValueError(f"confidences need {len(CLASSES)} values, got {len(confidences)}")
        values = list(confidences)
    else:
        raise ValueError(f"confidences must be a dict, a 3-sequence or None, got {confidences!r}")
    out: list[float | None] = []
    for name, value in zip(CLASSES, values, strict=True):
        try:
            number = float(_plain(value))
        except (TypeError, ValueError):
            raise ValueError(f"confidence for {name} is {value!r}, not a number") from None
        if not (math.isfinite(number) and 0.0 <= number <= 1.0):
            raise ValueError(f"confidence for {name} is {number}; it must lie in [0, 1]")
        out.append(number)
    return out


def build_read(
    *,
    label: Any,
    confidences: Any,
    shown_at: str | datetime | None,
    submitted_at: str | datetime | None,
) -> dict:
    """Validate one answer and return the stored fields (``duration_ms`` computed).

    Raises
    ------
    ValueError
        On an unknown label, bad confidences, a bad timestamp, or ``submitted_at`` before
        ``shown_at``.
    """
    record = {"label": normalise_label(label)}
    if record["label"] is None:
        raise ValueError(f"label is missing; expected one of {', '.join(CLASSES)}")
    record.update(zip(CONFIDENCE_COLUMNS, normalise_confidences(confidences), strict=True))
    record["shown_at"] = to_iso(shown_at, name="shown_at")
    record["submitted_at"] = to_iso(submitted_at, name="submitted_at") or now_iso()
    record["duration_ms"] = None
    if record["shown_at"]:
        shown = datetime.fromisoformat(record["shown_at"])
        submitted = datetime.fromisoformat(record["submitted_at"])
        duration = round((submitted - shown).total_seconds() * 1000)
        if duration < 0:
            raise ValueError(
                f"submitted_at {record['submitted_at']} is before shown_at {record['shown_at']}"
            )
        record["duration_ms"] = duration
    return record


def _upsert_read(
    raw,
    *,
    study_id: int,
    reader_id: int,
    case_id: str,
    arm: str,
    record: dict,
    source: str,
    marks: list[dict] | None = None,
) -> int:
    """Write one read and its audit row inside the caller's transaction; return ``read_id``."""
    cursor = raw.execute(
        "SELECT read_id, label, c_SCC, c_AC, c_ASC, shown_at, submitted_at, duration_ms"
        " FROM reads WHERE study_id = ? AND reader_id = ? AND case_id = ? AND arm = ?",
        (study_id, reader_id, case_id, arm),
    )
    old = cursor.fetchone()
    values = tuple(record[key] for key in READ_FIELDS)
    if old is None:
        read_id = raw.execute(
            "INSERT INTO reads (study_id, reader_id, case_id, arm, label, c_SCC, c_AC, c_ASC,"
            " shown_at, submitted_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (study_id, reader_id, case_id, arm, *values),
        ).lastrowid
        action, old_json = "insert", None
    else:
        read_id = old[0]
        raw.execute(
            "UPDATE reads SET label = ?, c_SCC = ?, c_AC = ?, c_ASC = ?, shown_at = ?,"
            " submitted_at = ?, duration_ms = ?, revision = revision + 1 WHERE read_id = ?",
            (*values, read_id),
        )
        old_fields = dict(zip(READ_FIELDS, old[1:], strict=True))
        if marks is not None:
            old_fields["marks"] = read_marks.stored_marks(raw, read_id)
        action, old_json = "update", to_json(old_fields)
    new_fields = dict(zip(READ_FIELDS, values, strict=True))
    if marks is not None:  # a localisation read: its marks are part of the answer
        read_marks.replace_marks(raw, read_id, marks)
        new_fields["marks"] = marks
    raw.execute(
        "INSERT INTO read_audit (read_id, study_id, reader_id, case_id, arm, action, source,"
        " old, new, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (read_id, study_id, reader_id, case_id, arm, action, source, old_json,
         to_json(new_fields), now_iso()),
    )  # fmt: skip
    return int(read_id)


def submit_read(
    conn: sqlite_utils.Database,
    *,
    study_id: int,
    reader_id: int,
    case_id: str,
    arm: str,
    label: str,
    confidences: Mapping[str, float] | Sequence[float] | None,
    shown_at: str | datetime | None,
    submitted_at: str | datetime | None = None,
    marks: list[dict] | None = None,
) -> int:
    """Store a reader's answer: insert, or replace the earlier answer for the same study, reader,
    case and arm, and append an audit row, all in one transaction. Return the ``read_id``.

    A retried or double-clicked submit therefore leaves one read and one more audit row.

    Parameters
    ----------
    label : str
        ``"SCC"``, ``"AC"`` or ``"ASC"`` (any case) or a class index.
    confidences : dict, 3-sequence or None
        Per-class confidence in [0, 1], keys ``SCC`` or ``c_SCC`` etc.
    marks : list of dict, optional
        Where the reader saw the lesion (localisation studies; :mod:`db.read_marks`), checked by
        the caller against the case's slices; they replace the read's earlier marks.
    shown_at, submitted_at : datetime or ISO 8601 str
        When the case appeared and when the answer was given (default: now). Naive times are UTC.

    Raises
    ------
    StudyNotFound, StudyClosed, ReaderNotFound, CaseNotFound
        If the study is unknown or closed, or the reader or case is not part of it.
    ValueError
        On an arm outside the study, an unknown label, or bad confidences or timestamps.
    """
    record = build_read(
        label=label, confidences=confidences, shown_at=shown_at, submitted_at=submitted_at
    )
    with write_transaction(conn) as raw:
        study = _study_row(raw, study_id)
        _require_open(study)
        _check_arm(study, arm)
        require_reader(raw, study_id, reader_id)
        _require_study_case(raw, study_id, case_id)
        return _upsert_read(
            raw,
            study_id=int(study_id),
            reader_id=int(reader_id),
            case_id=str(case_id),
            arm=arm,
            record=record,
            source="app",
            marks=marks,
        )


def _require_study_case(raw, study_id: int, case_id: str) -> None:
    if not raw.execute(
        "SELECT 1 FROM study_cases WHERE study_id = ? AND case_id = ?",
        (int(study_id), str(case_id)),
    ).fetchone():
        raise CaseNotFound(f"case {case_id!r} is not part of study {study_id}")


def _require_reader_arm(raw, study_id: int, reader_id: int, arm: str) -> None:
    """Raise unless the study exists, has ``arm``, and ``reader_id`` reads in it."""
    _check_arm(_study_row(raw, study_id), arm)
    require_reader(raw, study_id, reader_id)


# A reader's assignments in one arm with their own read, if any (never the true label).
_WORKLIST_FROM = (
    " FROM assignments a JOIN cases c ON c.case_id = a.case_id"
    " LEFT JOIN reads r ON r.study_id = a.study_id AND r.reader_id = a.reader_id"
    "   AND r.case_id = a.case_id AND r.arm = a.arm"
    " WHERE a.study_id = ? AND a.reader_id = ? AND a.arm = ?"
)


def worklist(conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str) -> pd.DataFrame:
    """A reader's cases in one arm, in reading order, with the reader's own label if read.

    Safe for reader pages: no true label, no model output.

    Returns
    -------
    pandas.DataFrame
        Columns ``position`` (1-based), ``case_id, display_id, label_read`` (None if unread).

    Raises
    ------
    StudyNotFound, ReaderNotFound
        If the study is unknown or the reader is not part of it.
    ValueError
        If ``arm`` is not one of the study's arms.
    """
    raw = conn.conn
    _require_reader_arm(raw, study_id, reader_id, arm)
    return pd.read_sql_query(
        "SELECT a.position, a.case_id, c.display_id, r.label AS label_read"
        + _WORKLIST_FROM
        + " ORDER BY a.position",
        raw,
        params=(int(study_id), int(reader_id), arm),
    )


def worklist_entry(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str, position: int
) -> dict | None:
    """One position of a reader's worklist, with the reader's own answer and progress counts.

    The single-case form of :func:`worklist` that the reading page calls on every step; safe
    for reader pages (no true label, no model output).

    Returns
    -------
    dict or None
        Keys ``position, case_id, display_id, label_read, c_SCC, c_AC, c_ASC, n_cases,
        n_read``; None if ``position`` is not in the worklist.

    Raises
    ------
    StudyNotFound, ReaderNotFound
        If the study is unknown or the reader is not part of it.
    ValueError
        If ``arm`` is not one of the study's arms.
    """
    raw = conn.conn
    _require_reader_arm(raw, study_id, reader_id, arm)
    key = (int(study_id), int(reader_id), arm)
    row = raw.execute(
        "SELECT a.position, a.case_id, c.display_id, r.label, r.c_SCC, r.c_AC, r.c_ASC"
        + _WORKLIST_FROM
        + " AND a.position = ?",
        (*key, int(position)),
    ).fetchone()
    if row is None:
        return None
    n_cases, n_read = _counts(raw, key)
    names = ("position", "case_id", "display_id", "label_read", "c_SCC", "c_AC", "c_ASC")
    return {**dict(zip(names, row, strict=True)), "n_cases": n_cases, "n_read": n_read}


def worklist_counts(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str
) -> tuple[int, int]:
    """``(n_cases, n_read)`` of a reader's worklist in ``arm`` (repeat reads not counted).

    Raises
    ------
    StudyNotFound, ReaderNotFound
        If the study is unknown or the reader is not part of it.
    ValueError
        If ``arm`` is not one of the study's arms.
    """
    _require_reader_arm(conn.conn, study_id, reader_id, arm)
    return _counts(conn.conn, (int(study_id), int(reader_id), arm))


def _counts(raw, key: tuple[int, int, str]) -> tuple[int, int]:
    n_cases, n_read = raw.execute(
        "SELECT COUNT(*), COUNT(r.read_id) FROM assignments a LEFT JOIN reads r"
        " ON r.study_id = a.study_id AND r.reader_id = a.reader_id AND r.case_id = a.case_id"
        "   AND r.arm = a.arm WHERE a.study_id = ? AND a.reader_id = ? AND a.arm = ?",
        key,
    ).fetchone()
    return int(n_cases), int(n_read)


def next_unread(conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str) -> int | None:
    """The position of the reader's first unread case in ``arm``, or None when all are read.

    Raises
    ------
    StudyNotFound, ReaderNotFound
        If the study is unknown or the reader is not part of it.
    ValueError
        If ``arm`` is not one of the study's arms.
    """
    raw = conn.conn
    _require_reader_arm(raw, study_id, reader_id, arm)
    row = raw.execute(
        "SELECT MIN(a.position) FROM assignments a WHERE a.study_id = ? AND a.reader_id = ?"
        " AND a.arm = ? AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.study_id = a.study_id"
        "   AND r.reader_id = a.reader_id AND r.case_id = a.case_id AND r.arm = a.arm)",
        (int(study_id), int(reader_id), arm),
    ).fetchone()
    return None if row[0] is None else int(row[0])


_READ_COLUMNS = (
    "d.read_id, d.study_id, d.reader_id, p.display_name, p.simulated AS reader_simulated,"
    " d.case_id, c.display_id, d.arm, d.label, d.c_SCC, d.c_AC, d.c_ASC, d.shown_at,"
    " d.submitted_at, d.duration_ms, d.revision"
)


_READ_FRAME_COLUMNS = [
    "read_id", "study_id", "reader_id", "display_name", "reader_simulated", "case_id",
    "display_id", "arm", "label", "c_SCC", "c_AC", "c_ASC", "shown_at", "submitted_at",
    "duration_ms", "revision", "truth",
]  # fmt: skip


def reads_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """Every read of a study with the reader's name and the true label. Researcher pages only.

    Returns
    -------
    pandas.DataFrame
        Columns ``read_id, study_id, reader_id, display_name, reader_simulated, case_id,
        display_id, arm, label, c_SCC, c_AC, c_ASC, shown_at, submitted_at, duration_ms,
        revision, truth``, ordered by ``read_id``.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    return reads_since(conn, study_id)[0]


# (brief, since a mark) -> the query: brief leaves out what the analysis never reads (times of
# day, revision), a third of the time at 128,000 reads; since a mark goes by audit_id (+study_id)
_READS_SQL = {
    (False, False): "SELECT read_id, study_id, reader_id, case_id, arm, label, c_SCC, c_AC, c_ASC,"
    " shown_at, submitted_at, duration_ms, revision FROM reads WHERE study_id = :s ORDER BY read_id",
    (False, True): "SELECT read_id, study_id, reader_id, case_id, arm, label, c_SCC, c_AC, c_ASC,"
    " shown_at, submitted_at, duration_ms, revision FROM reads WHERE read_id IN (SELECT read_id"
    " FROM read_audit WHERE audit_id > :after AND +study_id = :s) ORDER BY read_id",
    (True, False): "SELECT read_id, reader_id, case_id, arm, label, c_SCC, c_AC, c_ASC,"
    " duration_ms FROM reads WHERE study_id = :s ORDER BY read_id",
    (True, True): "SELECT read_id, reader_id, case_id, arm, label, c_SCC, c_AC, c_ASC,"
    " duration_ms FROM reads WHERE read_id IN (SELECT read_id FROM read_audit"
    " WHERE audit_id > :after AND +study_id = :s) ORDER BY read_id",
}
BRIEF_READ_COLUMNS = [
    "read_id", "reader_id", "display_name", "reader_simulated", "case_id", "arm", "label",
    "c_SCC", "c_AC", "c_ASC", "duration_ms", "truth",
]  # fmt: skip


def reads_since(
    conn: sqlite_utils.Database, study_id: int, after: int | None = None, *, brief: bool = False
) -> tuple[pd.DataFrame, int]:
    """The reads written after audit row ``after`` (every read: None), as they are now, and the
    study's last audit row: the mark to pass next time. One snapshot, so no write falls between
    the reads and the mark. Researcher pages only (the frame holds the truth).

    Returns
    -------
    (pandas.DataFrame, int)
        The frame as :func:`reads_frame` gives it (each read once however often it changed), or
        with ``brief`` only :data:`BRIEF_READ_COLUMNS`; and the largest ``read_audit.audit_id``
        of the study (0 without reads).

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    _study_row(conn.conn, study_id)
    with read_snapshot(conn) as raw:
        (mark,) = raw.execute(
            "SELECT COALESCE(MAX(audit_id), 0) FROM read_audit WHERE study_id = ?", (int(study_id),)
        ).fetchone()
        reads = pd.read_sql_query(
            _READS_SQL[(brief, after is not None)],
            raw,
            params={"s": int(study_id), "after": -1 if after is None else int(after)},
        )
        out = _with_names(raw, study_id, reads)
        return out[BRIEF_READ_COLUMNS if brief else _READ_FRAME_COLUMNS], int(mark)


_FEW_READS = 500


def _with_names(raw, study_id: int, reads: pd.DataFrame) -> pd.DataFrame:
    """``reads`` with their readers' and cases' columns, joined in pandas: at 128,000 reads
    SQLite's per-row lookups into readers and cases took longer than reading the rows."""
    readers = pd.read_sql_query(
        "SELECT reader_id, display_name, simulated AS reader_simulated FROM readers"
        " WHERE study_id = ?",
        raw,
        params=(int(study_id),),
    ).set_index("reader_id")
    if len(reads) <= _FEW_READS:  # a live study's latest reads: their cases, not the study's all
        cases = pd.read_sql_query(
            "SELECT c.case_id, c.display_id, c.label AS truth FROM cases c"
            " JOIN study_cases s ON s.case_id = c.case_id WHERE s.study_id = ?"
            " AND c.case_id IN (SELECT value FROM json_each(?))",
            raw,
            params=(int(study_id), json.dumps(sorted(set(map(str, reads["case_id"]))))),
        ).set_index("case_id")
    else:
        cases = pd.read_sql_query(
            "SELECT c.case_id, c.display_id, c.label AS truth FROM cases c"
            " JOIN study_cases s ON s.case_id = c.case_id WHERE s.study_id = ?",
            raw,
            params=(int(study_id),),
        ).set_index("case_id")
    by_reader = readers.reindex(reads["reader_id"].to_numpy())
    by_case = cases.reindex(reads["case_id"].to_numpy())
    out = reads.assign(
        display_name=by_reader["display_name"].to_numpy(),
        reader_simulated=by_reader["reader_simulated"].to_numpy(),
        display_id=by_case["display_id"].to_numpy(),
        truth=by_case["truth"].to_numpy(),
    )
    return out


def reader_reads_frame(conn: sqlite_utils.Database, study_id: int, reader_id: int) -> pd.DataFrame:
    """One reader's own reads, without the true label: safe for reader pages.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`reads_frame` except ``truth``.

    Raises
    ------
    StudyNotFound, ReaderNotFound
        If the study is unknown or the reader is not part of it.
    """
    _study_row(conn.conn, study_id)
    require_reader(conn.conn, study_id, reader_id)
    return pd.read_sql_query(
        "SELECT " + _READ_COLUMNS + " FROM reads d"  # noqa: S608 - constants only
        " JOIN readers p ON p.reader_id = d.reader_id"
        " JOIN cases c ON c.case_id = d.case_id WHERE d.study_id = ? AND d.reader_id = ?"
        " ORDER BY d.read_id",
        conn.conn,
        params=(int(study_id), int(reader_id)),
    )


def audit_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """The audit log of a study's reads, oldest first.

    Returns
    -------
    pandas.DataFrame
        Columns ``audit_id, read_id, reader_id, display_name, case_id, arm, action`` (``insert``
        or ``update``), ``source`` (``app``, ``import`` or ``migration``), ``old, new`` (the
        read's fields before and after, as dicts; ``old`` is None for an insert), ``at``.
    """
    _study_row(conn.conn, study_id)
    frame = pd.read_sql_query(
        "SELECT a.audit_id, a.read_id, a.reader_id, p.display_name, a.case_id, a.arm, a.action,"
        " a.source, a.old, a.new, a.at FROM read_audit a"
        " JOIN readers p ON p.reader_id = a.reader_id WHERE a.study_id = ? ORDER BY a.audit_id",
        conn.conn,
        params=(int(study_id),),
    )
    for column in ("old", "new"):  # NULL may come back as NaN from pandas: decode text only
        frame[column] = pd.Series(
            [from_json(text) if isinstance(text, str) else None for text in frame[column]],
            index=frame.index,
            dtype=object,
        )
    return frame


def reader_progress_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """Progress of every reader in every arm of a study.

    Returns
    -------
    pandas.DataFrame
        Columns ``reader_id, display_name, role, simulated, arm, n_cases, n_read, fraction,
        last_submitted_at``; one row per reader and arm, by ``reader_id`` then arm order.
        ``n_cases`` and ``n_read`` count repeat reads too: the reader reads them like any case.
    """
    _study_row(conn.conn, study_id)
    frame = pd.read_sql_query(
        "SELECT p.reader_id, p.display_name, p.role, p.simulated, arm.value AS arm,"
        " (SELECT COUNT(*) FROM assignments a WHERE a.reader_id = p.reader_id"
        "   AND a.arm = arm.value)"
        " + (SELECT COUNT(*) FROM repeat_assignments a WHERE a.reader_id = p.reader_id"
        "   AND a.arm = arm.value) AS n_cases,"
        " (SELECT COUNT(*) FROM reads d WHERE d.reader_id = p.reader_id"
        "   AND d.arm = arm.value)"
        " + (SELECT COUNT(*) FROM repeat_reads d WHERE d.reader_id = p.reader_id"
        "   AND d.arm = arm.value) AS n_read,"
        " (SELECT MAX(submitted_at) FROM reads d WHERE d.reader_id = p.reader_id"
        "   AND d.arm = arm.value) AS last_submitted_at"
        " FROM readers p JOIN studies s ON s.study_id = p.study_id, json_each(s.arms) AS arm"
        " WHERE p.study_id = ? ORDER BY p.reader_id, arm.key",
        conn.conn,
        params=(int(study_id),),
    )
    frame.insert(
        7, "fraction", (frame["n_read"] / frame["n_cases"].where(frame["n_cases"] > 0)).fillna(0.0)
    )
    return frame


def submit_reads(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str, reads: Sequence[Mapping]
) -> int:
    """Store many answers of one reader in one transaction (simulated readers, benchmarks): each
    as :func:`submit_read` would, audited with source ``import``. Return the number stored.

    ``reads`` are mappings with ``case_id, label``, the confidences (``c_SCC`` ... or ``SCC``
    ...) and optional ``shown_at, submitted_at``.
    """
    records = [
        (str(r["case_id"]), build_read(
            label=r["label"], confidences={c: r[f"c_{c}"] for c in CLASSES},
            shown_at=r.get("shown_at"), submitted_at=r.get("submitted_at"),
        ))
        for r in reads
    ]  # fmt: skip
    with write_transaction(conn) as raw:
        study = _study_row(raw, study_id)
        _require_open(study)
        _require_reader_arm(raw, study_id, reader_id, arm)
        known = {c for (c,) in raw.execute(
            "SELECT case_id FROM study_cases WHERE study_id = ?", (int(study_id),))}  # fmt: skip
        for case_id, record in records:
            if case_id not in known:
                raise CaseNotFound(f"case {case_id!r} is not part of study {study_id}")
            _upsert_read(raw, study_id=int(study_id), reader_id=int(reader_id), case_id=case_id,
                         arm=arm, record=record, source="import")  # fmt: skip
    return len(records)
