"""Agreement between two annotators' lesion marks: IoU and Dice per case, and their means over
cases with confidence intervals from a bootstrap over patients (a case is one patient).

A case's masks are the union of every slice's marks, compared pixel by pixel over the slices
either annotator marked; a slice only one of them marked counts fully against the overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

BOOTSTRAP = 2000


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (NaN when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient 2|A∩B| / (|A|+|B|) of two boolean masks (NaN when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    total = a.sum() + b.sum()
    return float(2 * np.logical_and(a, b).sum() / total) if total else float("nan")


def case_agreement(
    first: dict[str, np.ndarray], second: dict[str, np.ndarray]
) -> tuple[float, float]:
    """IoU and Dice of one case from each annotator's mask per slice (keyed by slice id).

    A slice one annotator left unmarked counts as an empty mask of the other's shape."""
    keys = sorted(set(first) | set(second))
    if not keys:
        return float("nan"), float("nan")

    def stacked(masks, other):
        return np.concatenate(
            [np.ravel(masks[k]) if k in masks else np.zeros(np.size(other[k]), bool) for k in keys]
        )

    a, b = stacked(first, second), stacked(second, first)
    return iou(a, b), dice(a, b)


@dataclass(frozen=True)
class Agreement:
    """Mean IoU and Dice over cases, each with a percentile bootstrap CI over patients."""

    n_cases: int
    iou: float
    iou_ci: tuple[float, float]
    dice: float
    dice_ci: tuple[float, float]
    level: float
    n_boot: int


def bootstrap_mean_ci(
    values: np.ndarray, *, n_boot: int = BOOTSTRAP, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile CI of the mean of per-patient values, resampling patients with replacement."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(values), size=(int(n_boot), len(values)))
    means = values[picks].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def summarise(per_case: pd.DataFrame, *, n_boot: int = BOOTSTRAP, level: float = 0.95,
              seed: int = 0) -> Agreement:  # fmt: skip
    """Mean IoU and Dice of a ``per_case`` frame (columns ``iou``, ``dice``; one row per patient)
    with patient-bootstrap CIs; both statistics come from the same resamples of patients."""
    frame = per_case.dropna(subset=["iou", "dice"])
    ious, dices = frame["iou"].to_numpy(float), frame["dice"].to_numpy(float)
    return Agreement(
        n_cases=len(frame),
        iou=float(ious.mean()) if len(ious) else float("nan"),
        iou_ci=bootstrap_mean_ci(ious, n_boot=n_boot, level=level, seed=seed),
        dice=float(dices.mean()) if len(dices) else float("nan"),
        dice_ci=bootstrap_mean_ci(dices, n_boot=n_boot, level=level, seed=seed),
        level=level,
        n_boot=int(n_boot),
    )
