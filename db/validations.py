"""External validations: one run's frozen models applied to another cohort, with every prediction.

A validation row keeps what was applied (run, cohort, which model), its metrics and shift checks
as JSON, and provenance; ``validation_predictions`` keeps one row per external case so any number
shown can be recomputed from the stored predictions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlite_utils

from db.clock import now_iso
from db.connection import write_transaction
from db.errors import CervixScopeDBError
from db.values import from_json, to_json

PREDICTION_FIELDS = ("case_id", "label", "predicted", "p_scc", "p_ac", "p_asc", "site")


class ValidationNotFound(CervixScopeDBError):
    """No validation with that ID."""


def record_validation(
    conn: sqlite_utils.Database,
    *,
    run_id: str,
    cohort: str,
    model: str,
    predictions: pd.DataFrame,
    metrics: Any = None,
    provenance: Any = None,
    shift: Any = None,
) -> int:
    """Store one external validation and its per-case predictions; return its ``validation_id``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    run_id : str
        The run whose frozen models were applied.
    cohort : str
        The external cohort's name (``cases.cohort``).
    model : str
        ``"ensemble"`` or ``"final"``: which of the run's models made the predictions.
    predictions : DataFrame
        One row per case with ``case_id, label, predicted`` (class indices), ``p_scc, p_ac,
        p_asc`` and optionally ``site``.
    metrics, provenance, shift : JSON-serialisable, optional
        Stored as JSON text.

    Raises
    ------
    ValueError
        If ``predictions`` is empty, lacks a column, or repeats a case.
    """
    missing = [c for c in PREDICTION_FIELDS if c != "site" and c not in predictions.columns]
    if missing:
        raise ValueError(f"validation predictions lack column(s) {', '.join(missing)}")
    if predictions.empty:
        raise ValueError("a validation needs at least one predicted case")
    if predictions["case_id"].duplicated().any():
        raise ValueError("validation predictions must hold one row per case")
    frame = predictions.assign(site=predictions.get("site"))
    rows = [
        (str(r.case_id), int(r.label), int(r.predicted), float(r.p_scc), float(r.p_ac),
         float(r.p_asc), None if pd.isna(r.site) else str(r.site))
        for r in frame.itertuples(index=False)
    ]  # fmt: skip
    with write_transaction(conn) as raw:
        cursor = raw.execute(
            "INSERT INTO validations (run_id, cohort, model, created_at, n_cases, metrics,"
            " provenance, shift) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (str(run_id), str(cohort), str(model), now_iso(), len(rows), to_json(metrics),
             to_json(provenance), to_json(shift)),
        )  # fmt: skip
        validation_id = int(cursor.lastrowid)
        raw.executemany(
            "INSERT INTO validation_predictions (validation_id, case_id, label, predicted,"
            " p_scc, p_ac, p_asc, site) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(validation_id, *row) for row in rows],
        )
    return validation_id


def validations_frame(conn: sqlite_utils.Database, run_id: str | None = None) -> pd.DataFrame:
    """Validations, all or of one run, newest first.

    Returns
    -------
    DataFrame
        Columns ``validation_id, run_id, cohort, model, created_at, n_cases, metrics,
        provenance, shift`` with the JSON columns decoded.
    """
    frame = pd.read_sql_query(
        "SELECT validation_id, run_id, cohort, model, created_at, n_cases, metrics, provenance,"
        " shift FROM validations WHERE (? IS NULL OR run_id = ?) ORDER BY validation_id DESC",
        conn.conn,
        params=(run_id, run_id),
    )
    for column in ("metrics", "provenance", "shift"):
        frame[column] = frame[column].map(from_json)
    return frame


def validation_predictions(conn: sqlite_utils.Database, validation_id: int) -> pd.DataFrame:
    """The per-case predictions of one validation, ordered by ``case_id``.

    Raises
    ------
    ValidationNotFound
        If there is no such validation.
    """
    found = conn.conn.execute(
        "SELECT 1 FROM validations WHERE validation_id = ?", (int(validation_id),)
    ).fetchone()
    if found is None:
        raise ValidationNotFound(f"validation {validation_id} is not in the database")
    return pd.read_sql_query(
        "SELECT case_id, label, predicted, p_scc, p_ac, p_asc, site FROM validation_predictions"
        " WHERE validation_id = ? ORDER BY case_id",
        conn.conn,
        params=(int(validation_id),),
    )
