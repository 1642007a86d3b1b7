"""Out-of-fold predictions of a run, per case and per image (slice)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlite_utils

from db.cases import _as_dicts, _plain
from db.errors import CaseNotFound
from db.runs import _require_run, _run_ids
from db.transactions import write_transaction
from db.values import to_json

PROB_COLUMNS = ("p_SCC", "p_AC", "p_ASC")


def _prediction_record(row: Mapping[str, Any], where: str) -> tuple[str, list[float]]:
    case_id = row.get("case_id")
    if case_id in (None, ""):
        raise ValueError(f"{where}: missing case_id")
    probs = []
    for column in PROB_COLUMNS:
        if column not in row:
            raise ValueError(f"{where} (case {case_id}): missing {column}")
        try:
            value = float(_plain(row[column]))
        except (TypeError, ValueError):
            raise ValueError(
                f"{where} (case {case_id}): {column}={row[column]!r} is not a number"
            ) from None
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{where} (case {case_id}): {column}={value} is not in [0, 1]")
        probs.append(value)
    return str(case_id), probs


def _require_cases(raw, case_ids: set[str], what: str) -> None:
    """Raise CaseNotFound naming the cases of ``case_ids`` that are not in the database."""
    missing = sorted(case_ids - {c for (c,) in raw.execute("SELECT case_id FROM cases")})
    if missing:
        raise CaseNotFound(f"{what} name {len(missing)} unknown case(s): {', '.join(missing[:10])}")


def save_predictions(
    conn: sqlite_utils.Database,
    run_id: str,
    fold: int,
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
) -> int:
    """Insert or replace out-of-fold predictions of one fold (idempotent per run and case).

    Parameters
    ----------
    rows : iterable of dict or DataFrame
        ``case_id, p_SCC, p_AC, p_ASC``; every probability in [0, 1].

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    RunNotFound, CaseNotFound
        If the run or any case is unknown (nothing is written).
    ValueError
        On a missing column or a probability outside [0, 1].
    """
    records = [
        _prediction_record(row, f"prediction row {i}") for i, row in enumerate(_as_dicts(rows))
    ]
    with write_transaction(conn) as raw:
        _require_run(raw, run_id)
        _require_cases(raw, {c for c, _ in records}, f"predictions for run {run_id}")
        raw.executemany(
            "INSERT INTO predictions (run_id, case_id, fold, p_SCC, p_AC, p_ASC)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, case_id) DO UPDATE SET"
            " fold = excluded.fold, p_SCC = excluded.p_SCC, p_AC = excluded.p_AC,"
            " p_ASC = excluded.p_ASC",
            [(str(run_id), case_id, int(fold), *probs) for case_id, probs in records],
        )
    return len(records)


def save_image_predictions(
    conn: sqlite_utils.Database,
    run_id: str,
    fold: int,
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
) -> int:
    """Insert or replace out-of-fold predictions per image of one fold (idempotent per run and
    image): the probabilities before they are averaged into the case's prediction.

    Parameters
    ----------
    rows : iterable of dict or DataFrame
        ``image_id, case_id, p_SCC, p_AC, p_ASC``; every probability in [0, 1]. Images need not
        be in the ``images`` table (a CropSet may come from elsewhere); their case must exist.

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    RunNotFound, CaseNotFound
        If the run or any case is unknown (nothing is written).
    ValueError
        On a missing column or a probability outside [0, 1].
    """
    records = []
    for i, row in enumerate(_as_dicts(rows)):
        image_id = row.get("image_id")
        if image_id in (None, ""):
            raise ValueError(f"image prediction row {i}: missing image_id")
        case_id, probs = _prediction_record(row, f"image prediction row {i} ({image_id})")
        records.append((str(image_id), case_id, probs))
    with write_transaction(conn) as raw:
        _require_run(raw, run_id)
        _require_cases(raw, {c for _, c, _ in records}, f"image predictions for run {run_id}")
        raw.executemany(
            "INSERT INTO image_predictions (run_id, image_id, case_id, fold, p_SCC, p_AC, p_ASC)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, image_id) DO UPDATE SET"
            " case_id = excluded.case_id, fold = excluded.fold, p_SCC = excluded.p_SCC,"
            " p_AC = excluded.p_AC, p_ASC = excluded.p_ASC",
            [
                (str(run_id), image_id, case_id, int(fold), *probs)
                for image_id, case_id, probs in records
            ],
        )
    return len(records)


def predictions_frame(conn: sqlite_utils.Database, run_ids: str | Sequence[str]) -> pd.DataFrame:
    """Out-of-fold predictions of some runs, with the true ``label`` and the run's ``model``.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, model, case_id, cohort, patient_id, display_id, fold, p_SCC, p_AC,
        p_ASC, label``, ordered by ``run_id, case_id``.
    """
    ids = _run_ids(run_ids) or []
    if not ids:
        return pd.DataFrame(
            columns=["run_id", "model", "case_id", "cohort", "patient_id", "display_id", "fold",
                     *PROB_COLUMNS, "label"]
        )  # fmt: skip
    sql = (
        "SELECT p.run_id, r.model, p.case_id, c.cohort, c.patient_id, c.display_id, p.fold,"
        " p.p_SCC, p.p_AC, p.p_ASC, c.label FROM predictions p JOIN runs r ON r.run_id = p.run_id"
        " JOIN cases c ON c.case_id = p.case_id"
        " WHERE p.run_id IN (SELECT value FROM json_each(?)) ORDER BY p.run_id, p.case_id"
    )
    return pd.read_sql_query(sql, conn.conn, params=(to_json(ids),))


def image_predictions_frame(
    conn: sqlite_utils.Database, run_ids: str | Sequence[str]
) -> pd.DataFrame:
    """Out-of-fold predictions per image of some runs, with the case's true ``label`` and the
    run's ``model``.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, model, image_id, case_id, display_id, fold, p_SCC, p_AC, p_ASC,
        label``, ordered by ``run_id, case_id, image_id``.
    """
    ids = _run_ids(run_ids) or []
    columns = ["run_id", "model", "image_id", "case_id", "display_id", "fold", *PROB_COLUMNS]
    if not ids:
        return pd.DataFrame(columns=[*columns, "label"])
    sql = (
        "SELECT p.run_id, r.model, p.image_id, p.case_id, c.display_id, p.fold,"
        " p.p_SCC, p.p_AC, p.p_ASC, c.label"
        " FROM image_predictions p JOIN runs r ON r.run_id = p.run_id"
        " JOIN cases c ON c.case_id = p.case_id"
        " WHERE p.run_id IN (SELECT value FROM json_each(?))"
        " ORDER BY p.run_id, p.case_id, p.image_id"
    )
    return pd.read_sql_query(sql, conn.conn, params=(to_json(ids),))


def case_probabilities(conn: sqlite_utils.Database, run_id: str, case_id: str) -> dict | None:
    """One case's out-of-fold class probabilities in a run, without the true label: safe for
    reader pages (the AI-aided arm).

    Returns
    -------
    dict or None
        ``{"SCC": p, "AC": p, "ASC": p}``, or None when the run has no prediction for the case.

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    """
    _require_run(conn.conn, run_id)
    row = conn.conn.execute(
        "SELECT p_SCC, p_AC, p_ASC FROM predictions WHERE run_id = ? AND case_id = ?",
        (str(run_id), str(case_id)),
    ).fetchone()
    if row is None:
        return None
    return {
        col.removeprefix("p_"): float(value) for col, value in zip(PROB_COLUMNS, row, strict=True)
    }


def run_case_counts(conn: sqlite_utils.Database) -> pd.DataFrame:
    """Per run, how many cases have an out-of-fold prediction and how many of them are synthetic.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, n_cases, n_synthetic`` (runs without predictions are absent).
    """
    return pd.read_sql_query(
        "SELECT p.run_id, COUNT(*) AS n_cases, COALESCE(SUM(c.synthetic), 0) AS n_synthetic"
        " FROM predictions p JOIN cases c ON c.case_id = p.case_id GROUP BY p.run_id",
        conn.conn,
    )


def run_cohorts(conn: sqlite_utils.Database, run_id: str) -> list[str]:
    """The cohorts of the cases a run predicted out of fold (its own cohort), sorted."""
    return [
        c for (c,) in conn.conn.execute(
            "SELECT DISTINCT c.cohort FROM predictions p JOIN cases c ON c.case_id = p.case_id"
            " WHERE p.run_id = ? ORDER BY c.cohort", (str(run_id),),
        )
    ]  # fmt: skip
