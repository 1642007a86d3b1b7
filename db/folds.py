"""Each fold of a run: its sizes, seconds and metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import sqlite_utils

from db.runs import _require_run, _run_ids
from db.transactions import write_transaction
from db.values import from_json, to_json


def save_fold(
    conn: sqlite_utils.Database,
    run_id: str,
    fold: int,
    *,
    n_train: int,
    n_test: int,
    seconds: float,
    metrics: Mapping[str, Any] | None,
) -> None:
    """Insert or replace one fold's summary (idempotent per run and fold).

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    """
    with write_transaction(conn) as raw:
        _require_run(raw, run_id)
        raw.execute(
            "INSERT INTO folds (run_id, fold, n_train, n_test, seconds, metrics)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, fold) DO UPDATE SET"
            " n_train = excluded.n_train, n_test = excluded.n_test,"
            " seconds = excluded.seconds, metrics = excluded.metrics",
            (str(run_id), int(fold), int(n_train), int(n_test), float(seconds), to_json(metrics)),
        )


def folds_frame(conn: sqlite_utils.Database, run_ids: str | Sequence[str]) -> pd.DataFrame:
    """Fold summaries of some runs; scalar entries of ``metrics`` also become columns.

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, fold, n_train, n_test, seconds, metrics`` (a dict per row), then one
        column per scalar metric name.
    """
    ids = _run_ids(run_ids) or []
    sql = (
        "SELECT run_id, fold, n_train, n_test, seconds, metrics FROM folds"
        " WHERE run_id IN (SELECT value FROM json_each(?)) ORDER BY run_id, fold"
    )
    frame = (
        pd.read_sql_query(sql, conn.conn, params=(to_json(ids),))
        if ids
        else pd.DataFrame(columns=["run_id", "fold", "n_train", "n_test", "seconds", "metrics"])
    )
    frame["metrics"] = [from_json(text) or {} for text in frame["metrics"]]
    names: list[str] = []
    for metrics in frame["metrics"]:
        names += [
            k for k, v in metrics.items() if k not in names and not isinstance(v, (dict, list))
        ]
    for name in names:
        if name not in frame.columns:
            frame[name] = [m.get(name) for m in frame["metrics"]]
    return frame
