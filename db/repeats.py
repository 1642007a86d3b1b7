"""Repeat reads: a case shown to the same reader a second time, spaced apart, under its own
display ID, answered into ``repeat_reads`` (never ``reads``), for intra-reader agreement.

Which helpers reader pages may use: :func:`reader_repeats`, :func:`due_repeats` and
:func:`submit_repeat_read` (they address a repeat by its display ID and never return the case ID
or the truth). :func:`repeat_entry` is for the reading service, which needs the case ID to load
the images and must not pass it on. Researcher pages: :func:`repeat_reads_frame`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import pandas as pd
import sqlite_utils

from db.cases import normalise_label
from db.clock import now_iso
from db.display_ids import random_code
from db.errors import CaseNotFound
from db.reads import normalise_confidences
from db.studies import _require_open, _study_row, require_reader
from db.transactions import write_transaction

MIN_GAP = 10  # positions between the first showing and the repeat, so it is not remembered


def _new_display_id(raw, arm: str) -> str:
    """A fresh ID with the look of the arm's own IDs (``C-`` and a case's code length in the
    unaided arm, the arm's letter and 8 characters in a later one, as
    :func:`core.reader_study.arms.arm_display_id` gives), unused by any case or repeat: a repeat
    must not stand out in the reader's list."""
    while True:
        candidate = (
            f"C-{random_code()}" if arm == "unaided" else f"{arm[0].upper()}-{random_code(8)}"
        )
        taken = raw.execute(
            "SELECT 1 FROM cases WHERE display_id = ? UNION ALL "
            "SELECT 1 FROM repeat_assignments WHERE display_id = ?",
            (candidate, candidate),
        ).fetchone()
        if taken is None:
            return candidate


def plan_repeats(
    conn: sqlite_utils.Database,
    study_id: int,
    reader_id: int,
    arm: str,
    n_cases: int,
    *,
    seed: int = 0,
    min_gap: int = MIN_GAP,
) -> int:
    """Choose ``n_cases`` of a reader's assigned cases in ``arm`` to show again.

    Each repeat is due once the reader has passed position ``first + min_gap`` of their worklist
    (or the end of it, if that comes first); it gets a new display ID. Cases that leave the full
    gap before the end are drawn first, so a repeat does not follow its first showing at once
    unless the worklist is too short. Re-planning adds nothing for a reader who already has
    repeats in that arm.

    Returns
    -------
    int
        The number of repeats planned now.
    """
    study = _study_row(conn.conn, study_id)
    require_reader(conn.conn, study_id, reader_id)
    if n_cases < 0:
        raise ValueError(f"n_cases={n_cases!r} is not allowed: use 0 or more")
    with write_transaction(conn) as raw:
        if raw.execute(
            "SELECT 1 FROM repeat_assignments WHERE reader_id = ? AND arm = ?", (reader_id, arm)
        ).fetchone():
            return 0
        rows = raw.execute(
            "SELECT case_id, position FROM assignments WHERE study_id = ? AND reader_id = ?"
            " AND arm = ? ORDER BY position",
            (study_id, reader_id, arm),
        ).fetchall()
        if n_cases > len(rows):
            raise ValueError(
                f"{n_cases} repeats asked but reader {reader_id} has {len(rows)} cases in arm "
                f"{arm!r} of study {study['name']!r}"
            )
        last = len(rows)
        spaced = [row for row in rows if row[1] + min_gap <= last]
        pool = spaced if len(spaced) >= n_cases else rows
        chosen = random.Random(f"{seed}:{reader_id}:{arm}").sample(pool, n_cases)
        for case_id, position in chosen:
            raw.execute(
                "INSERT INTO repeat_assignments (study_id, reader_id, arm, case_id, display_id,"
                " after_position) VALUES (?, ?, ?, ?, ?, ?)",
                (study_id, reader_id, arm, case_id, _new_display_id(raw, arm),
                 min(position + min_gap, last)),
            )  # fmt: skip
    return n_cases


def reader_repeats(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str
) -> pd.DataFrame:
    """All of the reader's repeats in ``arm``, due or not, in the order they are shown:
    ``display_id, after_position, answered`` (no case ID, no truth: safe for readers)."""
    require_reader(conn.conn, study_id, reader_id)
    return pd.read_sql_query(
        "SELECT a.display_id, a.after_position, (r.repeat_read_id IS NOT NULL) AS answered"
        " FROM repeat_assignments a LEFT JOIN repeat_reads r ON r.reader_id = a.reader_id"
        " AND r.arm = a.arm AND r.case_id = a.case_id"
        " WHERE a.study_id = ? AND a.reader_id = ? AND a.arm = ?"
        " ORDER BY a.after_position, a.display_id",
        conn.conn,
        params=(int(study_id), int(reader_id), arm),
    )


def repeat_entry(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, display_id: str
) -> dict | None:
    """One of the reader's repeats with the reader's own answer, for the reading service.

    It carries the ``case_id`` (the service needs it to load the images) and must not pass it
    on to a reader.

    Returns
    -------
    dict or None
        Keys ``case_id, arm, display_id, label_read, c_SCC, c_AC, c_ASC``; None if
        ``display_id`` is not one of this reader's repeats.
    """
    require_reader(conn.conn, study_id, reader_id)
    row = conn.conn.execute(
        "SELECT a.case_id, a.arm, a.display_id, r.label, r.c_SCC, r.c_AC, r.c_ASC"
        " FROM repeat_assignments a LEFT JOIN repeat_reads r ON r.reader_id = a.reader_id"
        " AND r.arm = a.arm AND r.case_id = a.case_id"
        " WHERE a.study_id = ? AND a.reader_id = ? AND a.display_id = ?",
        (int(study_id), int(reader_id), str(display_id)),
    ).fetchone()
    names = ("case_id", "arm", "display_id", "label_read", "c_SCC", "c_AC", "c_ASC")
    return None if row is None else dict(zip(names, row, strict=True))


def due_repeats(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str, *, passed: int
) -> pd.DataFrame:
    """The reader's repeats due once they have passed worklist position ``passed``, unanswered
    first: ``display_id, after_position, answered`` (no case ID, no truth: safe for readers)."""
    require_reader(conn.conn, study_id, reader_id)
    return pd.read_sql_query(
        "SELECT a.display_id, a.after_position, (r.repeat_read_id IS NOT NULL) AS answered"
        " FROM repeat_assignments a LEFT JOIN repeat_reads r ON r.reader_id = a.reader_id"
        " AND r.arm = a.arm AND r.case_id = a.case_id"
        " WHERE a.study_id = ? AND a.reader_id = ? AND a.arm = ? AND a.after_position <= ?"
        " ORDER BY answered, a.after_position, a.display_id",
        conn.conn,
        params=(int(study_id), int(reader_id), arm, int(passed)),
    )


def submit_repeat_read(
    conn: sqlite_utils.Database,
    study_id: int,
    reader_id: int,
    display_id: str,
    label: str,
    confidences: Sequence[float | None] | None = None,
    *,
    duration_ms: int | None = None,
) -> int:
    """Store (or correct) a reader's answer to a repeat, addressed by its display ID; return
    its ``repeat_read_id``.

    Raises
    ------
    CaseNotFound
        If ``display_id`` is not one of this reader's repeats.
    """
    study = _study_row(conn.conn, study_id)
    _require_open(study)
    require_reader(conn.conn, study_id, reader_id)
    label = normalise_label(label)
    c = normalise_confidences(confidences)
    with write_transaction(conn) as raw:
        row = raw.execute(
            "SELECT case_id, arm FROM repeat_assignments WHERE study_id = ? AND reader_id = ?"
            " AND display_id = ?",
            (study_id, reader_id, display_id),
        ).fetchone()
        if row is None:
            raise CaseNotFound(f"{display_id!r} is not one of this reader's repeat cases")
        raw.execute(
            "INSERT INTO repeat_reads (study_id, reader_id, case_id, arm, label, c_SCC, c_AC,"
            " c_ASC, submitted_at, duration_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (reader_id, case_id, arm) DO UPDATE SET label = excluded.label,"
            " c_SCC = excluded.c_SCC, c_AC = excluded.c_AC, c_ASC = excluded.c_ASC,"
            " submitted_at = excluded.submitted_at, duration_ms = excluded.duration_ms",
            (study_id, reader_id, row[0], row[1], label, *c, now_iso(), duration_ms),
        )
        return int(
            raw.execute(
                "SELECT repeat_read_id FROM repeat_reads WHERE reader_id = ? AND case_id = ?"
                " AND arm = ?",
                (reader_id, row[0], row[1]),
            ).fetchone()[0]
        )


def repeat_reads_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """Every repeat read of a study with the true label. Researcher pages only.

    Returns
    -------
    pandas.DataFrame
        The columns :func:`db.reads_frame` has that the analysis uses (``reader_id,
        display_name, reader_simulated, case_id, display_id, arm, label, c_SCC, c_AC, c_ASC,
        submitted_at, duration_ms, truth``) and ``repeat`` = 1; ``display_id`` is the repeat's.
    """
    _study_row(conn.conn, study_id)
    return pd.read_sql_query(
        "SELECT d.reader_id, p.display_name, p.simulated AS reader_simulated, d.case_id,"
        " a.display_id, d.arm, d.label, d.c_SCC, d.c_AC, d.c_ASC, d.submitted_at,"
        " d.duration_ms, c.label AS truth, 1 AS repeat"
        " FROM repeat_reads d JOIN readers p ON p.reader_id = d.reader_id"
        " JOIN repeat_assignments a ON a.reader_id = d.reader_id AND a.arm = d.arm"
        " AND a.case_id = d.case_id JOIN cases c ON c.case_id = d.case_id"
        " WHERE d.study_id = ? ORDER BY d.repeat_read_id",
        conn.conn,
        params=(int(study_id),),
    )


def set_repeat_cases(conn: sqlite_utils.Database, study_id: int, n_cases: int) -> None:
    """The study option: how many cases each reader sees a second time in each arm.

    Raises
    ------
    ValueError
        If ``n_cases`` is negative, more than the study's cases, or differs from the number
        already planned for the study's readers (their repeats cannot be re-drawn).
    """
    study = _study_row(conn.conn, study_id)
    _require_open(study)
    if not isinstance(n_cases, int) or n_cases < 0:
        raise ValueError(f"repeat cases {n_cases!r} is not allowed: use an integer >= 0")
    (n_study_cases,) = conn.conn.execute(
        "SELECT COUNT(*) FROM study_cases WHERE study_id = ?", (study_id,)
    ).fetchone()
    if n_cases > n_study_cases:
        raise ValueError(
            f"repeat cases {n_cases} is more than the {n_study_cases} cases of study "
            f"{study['name']!r}: use at most {n_study_cases}"
        )
    planned = conn.conn.execute(
        "SELECT 1 FROM repeat_assignments WHERE study_id = ? LIMIT 1", (study_id,)
    ).fetchone()
    if planned and n_cases != int(study["repeat_cases"]):
        raise ValueError(
            f"study {study['name']!r} already has {study['repeat_cases']} repeat cases planned "
            "for its readers: the number cannot change now"
        )
    with write_transaction(conn) as raw:
        raw.execute("UPDATE studies SET repeat_cases = ? WHERE study_id = ?", (n_cases, study_id))


def plan_study_repeats(conn: sqlite_utils.Database, study_id: int, *, seed: int = 0) -> int:
    """Plan the study's ``repeat_cases`` repeats for every reader and arm that has none yet
    (the hook to call after adding a reader); return how many were planned now."""
    study = _study_row(conn.conn, study_id)
    n = int(study["repeat_cases"])
    if n == 0:
        return 0
    pairs = conn.conn.execute(
        "SELECT DISTINCT reader_id, arm FROM assignments WHERE study_id = ? ORDER BY 1, 2",
        (study_id,),
    ).fetchall()
    return sum(plan_repeats(conn, study_id, r, a, n, seed=seed) for r, a in pairs)
