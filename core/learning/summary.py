"""A run's case-level metrics table, from its out-of-fold predictions."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from core.labels import CLASS_INDEX, CLASSES


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
