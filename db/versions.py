"""Cheap version tokens: a screen that derives tables from many rows asks one small query whether
anything it reads has changed, and recomputes only when the token has.

A token is an opaque string, equal for equal content history; it may change without the derived
tables changing (e.g. a read re-submitted with the same answer), never the other way round.
"""

from __future__ import annotations

import json

import sqlite_utils

from db.studies import _study_row

# Every read write appends to read_audit (append-only, AUTOINCREMENT ids: its largest id sees
# each write, through the read_audit_latest index); a corrected repeat read gets a new
# submitted_at; readers are only added (a code reissue changes no name): counts, largest ids and
# latest times see each change.
_READS_VERSION_SQL = """
SELECT
    (SELECT COALESCE(MAX(audit_id), 0) FROM read_audit WHERE study_id = :s),
    (SELECT COUNT(*) || ':' || COALESCE(MAX(repeat_read_id), 0) || ':'
        || COALESCE(MAX(submitted_at), '') FROM repeat_reads WHERE study_id = :s),
    (SELECT COUNT(*) || ':' || COALESCE(MAX(reader_id), 0) FROM readers WHERE study_id = :s),
    (SELECT COUNT(*) || ':' || TOTAL(p.p_SCC) FROM predictions p
        JOIN studies s ON s.model_run_id = p.run_id WHERE s.study_id = :s)
"""


def reads_version(conn: sqlite_utils.Database, study_id: int) -> str:
    """A token that changes whenever the reader analysis of ``study_id`` may change.

    It covers the study's row (arms, model run, status...), its reads (through the append-only
    ``read_audit``), repeat reads, readers, and the out-of-fold predictions of its model run. A
    few indexed aggregates: cheap enough to ask on every rerun of a page.

    Parameters
    ----------
    conn : sqlite_utils.Database
    study_id : int

    Returns
    -------
    str

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    parts = reads_version_parts(conn, study_id)
    return json.dumps([parts.pop("study"), list(parts.values())], default=str)


def reads_version_parts(conn: sqlite_utils.Database, study_id: int) -> dict:
    """What :func:`reads_version` is made of, by what it covers: ``study`` (the study row's
    items), ``reads``, ``repeats``, ``readers``, ``predictions`` (opaque tokens), so that a
    caller can tell whether only the reads changed.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    raw = conn.conn
    study = _study_row(raw, study_id)
    reads, repeats, readers, predictions = raw.execute(
        _READS_VERSION_SQL, {"s": int(study_id)}
    ).fetchone()
    return {"study": sorted(study.items()), "reads": reads, "repeats": repeats,
            "readers": readers, "predictions": predictions}  # fmt: skip
