"""CSV export of predictions and reads, and validated all-or-nothing import of both.

An exported file re-imports to the same rows. Numbers are written with Python's shortest
round-trip representation; empty cells mean NULL; text that a spreadsheet would run as a formula is
quoted (``db.spreadsheet``) and unquoted again on import. Row numbers in import problems count data rows
from 1 (the header is not counted), so "row 3" is the file's fourth line.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import sqlite_utils

from db.errors import ImportValidationError
from db.predictions import PROB_COLUMNS, _prediction_record, predictions_frame
from db.reads import _upsert_read, build_read, reads_frame
from db.spreadsheet import escape_cell, unescape_cell
from db.studies import _require_open, _study_row
from db.transactions import write_transaction

READ_CSV_COLUMNS = (
    "reader_id", "display_name", "case_id", "display_id", "arm", "label", "c_SCC", "c_AC",
    "c_ASC", "shown_at", "submitted_at", "duration_ms",
)  # fmt: skip
PREDICTION_CSV_COLUMNS = (
    "run_id", "model", "case_id", "cohort", "patient_id", "fold", *PROB_COLUMNS, "label",
)  # fmt: skip


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, str):
        return escape_cell(value)
    if hasattr(value, "item"):
        value = value.item()
    return str(value)


def _write(frame: pd.DataFrame, columns: Sequence[str], path: str | os.PathLike) -> Path:
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in frame[list(columns)].itertuples(index=False):
            writer.writerow([_cell(value) for value in row])
    return path


def _read(path: str | os.PathLike) -> tuple[list[str], list[dict[str, str]]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CSV file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        try:
            rows = [
                {k.strip(): unescape_cell((v or "").strip()) for k, v in row.items() if k}
                for row in reader
            ]
        except csv.Error as exc:  # e.g. a field over the csv module's 131,072-character limit
            raise ImportValidationError(path, [f"line {reader.line_num}: {exc}"]) from exc
        return [c.strip() for c in reader.fieldnames or []], rows


def export_predictions_csv(
    conn: sqlite_utils.Database, run_ids: str | Sequence[str], path: str | os.PathLike
) -> Path:
    """Write the out-of-fold predictions of some runs to CSV; return the path.

    Columns: ``run_id, model, case_id, cohort, patient_id, fold, p_SCC, p_AC, p_ASC, label``
    (the true label); ``case_id`` is the key ``<cohort>/<patient_id>``.
    """
    return _write(predictions_frame(conn, run_ids), PREDICTION_CSV_COLUMNS, path)


def import_predictions_csv(conn: sqlite_utils.Database, path: str | os.PathLike) -> int:
    """Import predictions written by :func:`export_predictions_csv` (or the same columns).

    Validates every row first (run and case known, fold an integer, probabilities in [0, 1]),
    then writes all rows in one transaction. ``model``, ``cohort``, ``patient_id`` and ``label``
    are ignored (they come from the run and the case key). Returns the number of rows written.

    Raises
    ------
    ImportValidationError
        Listing every bad row; nothing is written.
    """
    columns, rows = _read(path)
    required = ("run_id", "case_id", "fold", *PROB_COLUMNS)
    missing = [c for c in required if c not in columns]
    if missing:
        raise ImportValidationError(path, [f"header: missing column(s) {', '.join(missing)}"])
    problems: list[str] = []
    with write_transaction(conn) as raw:
        runs = {r for (r,) in raw.execute("SELECT run_id FROM runs")}
        cases = {c for (c,) in raw.execute("SELECT case_id FROM cases")}
        records = []
        for number, row in enumerate(rows, start=1):
            where = f"row {number}"
            try:
                case_id, probs = _prediction_record(row, where)
                fold = int(row["fold"])
            except ValueError as exc:
                problems.append(str(exc) if str(exc).startswith(where) else f"{where}: {exc}")
                continue
            if row["run_id"] not in runs:
                problems.append(f"{where}: unknown run {row['run_id']!r}")
            if case_id not in cases:
                problems.append(f"{where}: unknown case {case_id!r}")
            records.append((row["run_id"], case_id, fold, *probs))
        if problems:
            raise ImportValidationError(path, problems)
        raw.executemany(
            "INSERT INTO predictions (run_id, case_id, fold, p_SCC, p_AC, p_ASC)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, case_id) DO UPDATE SET"
            " fold = excluded.fold, p_SCC = excluded.p_SCC, p_AC = excluded.p_AC,"
            " p_ASC = excluded.p_ASC",
            records,
        )
    return len(records)


def export_reads_csv(conn: sqlite_utils.Database, study_id: int, path: str | os.PathLike) -> Path:
    """Write every read of a study to CSV (without the true label); return the path.

    Columns: ``reader_id, display_name, case_id, display_id, arm, label, c_SCC, c_AC, c_ASC,
    shown_at, submitted_at, duration_ms``.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    return _write(reads_frame(conn, study_id), READ_CSV_COLUMNS, path)


def import_reads_csv(conn: sqlite_utils.Database, study_id: int, path: str | os.PathLike) -> int:
    """Import reads collected elsewhere into a study, all or nothing; return rows written.

    Required columns: ``case_id`` (or ``display_id``), ``arm``, ``label``, and ``reader_id`` or
    ``display_name`` (both may be given; they must then name the same reader). Optional:
    ``c_SCC, c_AC, c_ASC, shown_at, submitted_at`` (``duration_ms`` is recomputed, other columns
    are ignored). Each row is upserted like :func:`db.submit_read`, with an audit row whose
    ``source`` is ``import``.

    Raises
    ------
    StudyNotFound, StudyClosed
        If the study is unknown or closed.
    ImportValidationError
        Listing every bad row (unknown reader, case, arm or label, bad confidence or time,
        the same reader, case and arm twice); nothing is written.
    """
    _require_open(_study_row(conn.conn, study_id))  # study errors first, before the file's
    columns, rows = _read(path)
    _check_reads_header(columns, path)
    with write_transaction(conn) as raw:
        study = _study_row(raw, study_id)
        _require_open(study)
        records, problems = _validate_reads(rows, _StudyLookup.load(raw, study))
        if problems:
            raise ImportValidationError(path, problems)
        for reader_id, case_id, arm, record in records:
            _upsert_read(
                raw,
                study_id=int(study_id),
                reader_id=reader_id,
                case_id=case_id,
                arm=arm,
                record=record,
                source="import",
            )
    return len(records)


def _check_reads_header(columns: list[str], path) -> None:
    header = []
    if "case_id" not in columns and "display_id" not in columns:
        header.append("header: need a case_id or display_id column")
    if "reader_id" not in columns and "display_name" not in columns:
        header.append("header: need a reader_id or display_name column")
    header += [f"header: missing column {c}" for c in ("arm", "label") if c not in columns]
    if header:
        raise ImportValidationError(path, header)


@dataclass(frozen=True)
class _StudyLookup:
    """What an imported read row is checked against: the study's readers, cases and arms."""

    study_id: int
    arms: tuple[str, ...]
    readers: dict[int, str]  # reader_id -> display_name
    by_name: dict[str, int]
    cases: set[str]
    by_display: dict[str, str]  # display_id -> case_id

    @classmethod
    def load(cls, raw, study: dict) -> _StudyLookup:
        study_id = int(study["study_id"])
        readers = dict(
            raw.execute(
                "SELECT reader_id, display_name FROM readers WHERE study_id = ?", (study_id,)
            ).fetchall()
        )
        case_rows = raw.execute(
            "SELECT s.case_id, c.display_id FROM study_cases s JOIN cases c"
            " ON c.case_id = s.case_id WHERE s.study_id = ?",
            (study_id,),
        ).fetchall()
        return cls(
            study_id=study_id,
            arms=study["arms"],
            readers=readers,
            by_name={name: rid for rid, name in readers.items()},
            cases={case for case, _ in case_rows},
            by_display={display: case for case, display in case_rows},
        )


def _validate_reads(
    rows: list[dict[str, str]], lookup: _StudyLookup
) -> tuple[list[tuple[int, str, str, dict]], list[str]]:
    """Every row checked: the reads to write, and one problem line per bad row."""
    problems: list[str] = []
    records: list[tuple[int, str, str, dict]] = []
    seen: dict[tuple, int] = {}
    for number, row in enumerate(rows, start=1):
        bad: list[str] = []
        reader_id = _row_reader(row, lookup, bad)
        case_id = _row_case(row, lookup, bad)
        arm = row.get("arm", "")
        if arm not in lookup.arms:
            bad.append(f"arm {arm!r} is not one of {', '.join(lookup.arms)}")
        record = _row_record(row, bad)
        key = (reader_id, case_id, arm)
        if not bad and key in seen:
            bad.append(f"same reader, case and arm as row {seen[key]}")
        seen.setdefault(key, number)
        if bad:
            problems.append(f"row {number}: " + "; ".join(bad))
        else:
            records.append((reader_id, case_id, arm, record))
    return records, problems


def _row_reader(row: dict[str, str], lookup: _StudyLookup, bad: list[str]) -> int | None:
    """The row's reader by ``reader_id`` (checked against ``display_name`` if both) or name."""
    study_id = lookup.study_id
    if row.get("reader_id"):
        try:
            reader_id = int(row["reader_id"])
        except ValueError:
            bad.append(f"reader_id {row['reader_id']!r} is not a number")
            return None
        if reader_id not in lookup.readers:
            bad.append(f"unknown reader {reader_id} (not a reader of study {study_id})")
            return None
        if row.get("display_name") and lookup.readers[reader_id] != row["display_name"]:
            bad.append(
                f"reader {reader_id} is {lookup.readers[reader_id]!r}, not {row['display_name']!r}"
            )
        return reader_id
    if row.get("display_name"):
        reader_id = lookup.by_name.get(row["display_name"])
        if reader_id is None:
            bad.append(f"unknown reader {row['display_name']!r} in study {study_id}")
        return reader_id
    bad.append("no reader given")
    return None


def _row_case(row: dict[str, str], lookup: _StudyLookup, bad: list[str]) -> str | None:
    """The row's case by ``case_id``, else by ``display_id``; it must be in the study."""
    case_id = row.get("case_id") or lookup.by_display.get(row.get("display_id", ""))
    if not case_id or case_id not in lookup.cases:
        shown = row.get("case_id") or row.get("display_id")
        bad.append(f"unknown case {shown!r} (not in study {lookup.study_id})")
    return case_id


def _row_record(row: dict[str, str], bad: list[str]) -> dict | None:
    """The row's answer validated as :func:`db.reads.build_read` stores it."""
    confidences = [row.get(c, "") for c in ("c_SCC", "c_AC", "c_ASC")]
    try:
        return build_read(
            label=row.get("label") or None,
            confidences=None if not any(confidences) else confidences,
            shown_at=row.get("shown_at") or None,
            submitted_at=row.get("submitted_at") or None,
        )
    except ValueError as exc:
        bad.append(str(exc))
        return None
