"""Repeated cross-validation: the whole k-fold run N times with fold seeds seed, seed+1, ...

One k-fold split of a small cohort is one draw among many: a metric's spread over repeats shows
how much of a difference between models is the luck of the split. Each repeat is a run of its
own (pooled out-of-fold predictions, every number of a single run); the runs of one repeated CV
share a ``repeat_group`` and are numbered by ``repeat_index``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from core.learning.config import RunConfig
from core.learning.cv import CvRun
from db.clock import stamped_id

# The pooled metrics compared across repeats (case level, macro over classes; accuracy overall).
REPEAT_METRICS = ("auc", "accuracy", "sensitivity", "specificity", "precision", "f1")


def new_repeat_group() -> str:
    return stamped_id("g")


def repeat_plan(
    configs: list[RunConfig],
    repeats: int,
    *,
    comparison_id: str | None = None,
    new_comparison=None,
) -> list[CvRun]:
    """The runs of ``repeats`` repeats of every config: repeat ``r`` uses seed ``cfg.seed + r``.

    Parameters
    ----------
    configs : list of RunConfig
        One per model (a comparison) or one (a single model).
    repeats : int
        ``1`` gives the plain runs, without a repeat group.
    comparison_id : str, optional
        Shared by the models of one repeat (they use identical folds); with several repeats each
        repeat gets its own comparison id (``new_comparison()``), since the folds differ.
    new_comparison : callable, optional
        Makes a comparison id per repeat; default none when ``comparison_id`` is None.

    Returns
    -------
    list of CvRun
        Repeat by repeat, the configs in their order within each.

    Raises
    ------
    ValueError
        If ``repeats < 1``.
    """
    if repeats < 1:
        raise ValueError(f"--repeats {repeats}: need at least 1 repeat")
    if repeats == 1:
        return [CvRun(cfg, comparison_id=comparison_id) for cfg in configs]
    groups = [new_repeat_group() for _ in configs]
    plan = []
    for r in range(repeats):
        comparison = new_comparison() if new_comparison is not None else None
        for cfg, group in zip(configs, groups, strict=True):
            plan.append(
                CvRun(
                    cfg.replace(seed=cfg.seed + r),
                    comparison_id=comparison,
                    repeat_group=group,
                    repeat_index=r,
                )
            )
    return plan


def repeat_metrics(predictions: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each repeat's pooled metrics (point estimates over all its out-of-fold predictions).

    Parameters
    ----------
    predictions : DataFrame
        ``db.predictions_frame`` rows of the runs (case level).
    runs : DataFrame
        ``db.runs_frame`` rows of the runs, with ``repeat_group`` and ``repeat_index``; runs
        without a repeat group are left out.

    Returns
    -------
    DataFrame
        ``repeat_group, model, repeat_index, seed, run_id`` and one column per metric of
        ``REPEAT_METRICS`` (macro average; accuracy overall), one row per repeat.
    """
    from core.data.labels import CLASSES
    from core.statistics.metrics import classification_table

    rows = []
    repeated = runs[runs["repeat_group"].notna()] if "repeat_group" in runs else runs.iloc[:0]
    for run in repeated.itertuples(index=False):
        part = predictions[predictions["run_id"] == run.run_id]
        if part.empty:
            continue
        y_true = part["label"].map({name: i for i, name in enumerate(CLASSES)}).to_numpy()
        y_score = part[[f"p_{c}" for c in CLASSES]].to_numpy(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = classification_table(y_true, y_score.argmax(1), y_score, ci=False)
        row = {
            "repeat_group": run.repeat_group,
            "model": run.model,
            "repeat_index": int(run.repeat_index),
            "seed": int(run.seed),
            "run_id": run.run_id,
        }
        row.update({m: _pooled(table, m) for m in REPEAT_METRICS})
        rows.append(row)
    columns = ["repeat_group", "model", "repeat_index", "seed", "run_id", *REPEAT_METRICS]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values(["repeat_group", "repeat_index"], ignore_index=True)


def _pooled(table: pd.DataFrame, metric: str) -> float:
    scope = "overall" if metric == "accuracy" else "macro"
    hit = table[(table["metric"] == metric) & (table["scope"] == scope)]
    return float(hit["value"].iloc[0]) if len(hit) else float("nan")


def repeat_spread(per_repeat: pd.DataFrame) -> pd.DataFrame:
    """Mean and spread of each pooled metric across the repeats of each repeat group.

    Parameters
    ----------
    per_repeat : DataFrame
        From :func:`repeat_metrics`.

    Returns
    -------
    DataFrame
        ``repeat_group, model, repeats, metric, mean, sd, min, max`` (``sd`` with ddof=1, NaN for
        a single repeat), one row per group and metric.
    """
    rows = []
    for (group, model), part in per_repeat.groupby(["repeat_group", "model"], sort=False):
        for metric in REPEAT_METRICS:
            values = part[metric].to_numpy(float)
            values = values[np.isfinite(values)]
            rows.append(
                {
                    "repeat_group": group,
                    "model": model,
                    "repeats": len(part),
                    "metric": metric,
                    "mean": float(values.mean()) if len(values) else float("nan"),
                    "sd": float(values.std(ddof=1)) if len(values) > 1 else float("nan"),
                    "min": float(values.min()) if len(values) else float("nan"),
                    "max": float(values.max()) if len(values) else float("nan"),
                }
            )
    columns = ["repeat_group", "model", "repeats", "metric", "mean", "sd", "min", "max"]
    return pd.DataFrame(rows, columns=columns)


def repeat_table(per_repeat: pd.DataFrame) -> pd.DataFrame:
    """Each repeat's pooled metrics with the mean, SD and range across repeats beneath them.

    Parameters
    ----------
    per_repeat : DataFrame
        From :func:`repeat_metrics`.

    Returns
    -------
    DataFrame
        ``model, repeat, seed`` and one column per metric of ``REPEAT_METRICS``: per group its
        repeats (``repeat`` 1, 2, ...), then rows ``mean``, ``SD``, ``min``, ``max``.
    """
    spread = repeat_spread(per_repeat)
    parts = []
    for group, part in per_repeat.groupby("repeat_group", sort=False):
        rows = part.assign(repeat=[str(i + 1) for i in part["repeat_index"]])
        rows = rows[["model", "repeat", "seed", *REPEAT_METRICS]].astype({"seed": object})
        stats = spread[spread["repeat_group"] == group]
        summary = []
        for name, column in (("mean", "mean"), ("SD", "sd"), ("min", "min"), ("max", "max")):
            values = dict(zip(stats["metric"], stats[column], strict=True))
            summary.append({"model": part["model"].iloc[0], "repeat": name, "seed": "", **values})
        parts += [rows, pd.DataFrame(summary)]
    columns = ["model", "repeat", "seed", *REPEAT_METRICS]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)
