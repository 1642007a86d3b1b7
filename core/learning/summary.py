"""A run's case-level metrics table, from its out-of-fold predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from core.data.labels import CLASS_INDEX, CLASSES


def run_summary(oof: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Case-level metrics of out-of-fold predictions, with bootstrap CIs.

    Parameters
    ----------
    oof : pandas.DataFrame
        Columns ``label`` (class name) and ``p_SCC, p_AC, p_ASC``, one row per case.
    seed, n_boot : int
        Of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        ``core.statistics.metrics.classification_table`` of the predicted (arg-max) classes.
    """
    from core.statistics import metrics

    y_true = oof["label"].map(CLASS_INDEX).to_numpy(dtype=np.int64)
    score = oof[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metrics.classification_table(
            y_true, score.argmax(1), score, ci=True, n_boot=n_boot, seed=seed
        )


SUMMARY_FILE = "summary.csv"


def summary_auc(run_id: str, *, runs_dir=None, digits: int = 3) -> str:
    """The run's case-level macro AUC with its 95% CI as text, read from its ``summary.csv``.

    Returns
    -------
    str
        ``"0.812 (0.760–0.861)"``; blank when the run has no summary yet (not finished).
    """
    from core.learning.artifacts import run_dir

    path = run_dir(run_id, runs_dir) / SUMMARY_FILE
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError):
        return ""
    row = table[(table["scope"] == "macro") & (table["metric"] == "auc")]
    if row.empty or pd.isna(row["value"].iloc[0]):
        return ""
    value, low, high = (float(row[c].iloc[0]) for c in ("value", "ci_low", "ci_high"))
    if np.isnan(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ({low:.{digits}f}–{high:.{digits}f})"
