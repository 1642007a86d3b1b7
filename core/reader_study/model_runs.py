"""Model runs as an admin picks one for a study: named by model, mode, folds and AUC, not by id.

A bare run id hid what it was (a 2-fold CNN was once picked for a study by accident).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import db
from core.data.labels import CLASS_INDEX, CLASSES
from core.statistics.metrics import roc_auc_ovr

USABLE = ("done", "partial")


def run_choices(conn) -> dict[str, str]:
    """Finished runs, newest first, as ``{run_id: "resnet18 · features · 10 folds · AUC 0.81"}``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        An open connection.

    Returns
    -------
    dict
        One readable name per usable run; the id is added when two names would be equal.
    """
    runs = db.runs_frame(conn)
    runs = runs[runs["status"].isin(USABLE)]
    if runs.empty:
        return {}
    predictions = db.predictions_frame(conn, runs["run_id"].tolist())
    names = {
        run.run_id: f"{run.model} · {run.mode} · {int(run.n_folds)} folds · "
        f"AUC {_macro_auc(predictions[predictions['run_id'] == run.run_id])}"
        for run in runs.itertuples()
    }
    repeated = {n for n in names.values() if list(names.values()).count(n) > 1}
    return {k: (f"{v} · {k}" if v in repeated else v) for k, v in names.items()}


def _macro_auc(predictions: pd.DataFrame) -> str:
    """The run's out-of-fold macro one-vs-rest AUC to 3 decimals, or "n/a"."""
    if predictions.empty:
        return "n/a"
    y_true = predictions["label"].map(CLASS_INDEX).to_numpy(dtype=int)
    scores = predictions[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class missing from a tiny run: NaN, said as n/a
        auc = float(roc_auc_ovr(y_true, scores, average="macro"))
    return "n/a" if np.isnan(auc) else f"{auc:.3f}"
