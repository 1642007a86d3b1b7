"""Can the probabilities be trusted as probabilities? Reliability, Brier score and ECE, one-vs-rest.

Every quantity is per class, one class against the rest, as scikit-learn computes it for a binary
problem (``calibration_curve`` with uniform bins, ``brier_score_loss``), plus the macro mean over
classes. The expected calibration error (ECE) is the case-weighted mean gap between the observed
frequency and the mean predicted probability over the same bins. Confidence intervals resample
whole patients (``groups``) when several rows belong to one, in chunks so memory stays flat in the
number of resamples. Scores need not sum to 1 (reader confidences are normalised by the caller).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.labels import CLASSES
from core.statistics.resampling import weight_chunks


def _check(y_true, y_score, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true, dtype=np.int64).ravel()
    s = np.asarray(y_score, dtype=float)
    if s.ndim != 2 or s.shape[0] != t.size:
        raise ValueError(f"y_score must have shape ({t.size}, n_classes), got {s.shape}")
    if t.size == 0:
        raise ValueError("no cases: calibration needs at least one prediction")
    if not np.isfinite(s).all() or s.min() < 0 or s.max() > 1:
        raise ValueError("y_score has values outside [0, 1] (or NaN)")
    if t.min() < 0 or t.max() >= s.shape[1]:
        raise ValueError(f"y_true has labels outside 0..{s.shape[1] - 1}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    return t, s


def _bin_ids(s: np.ndarray, n_bins: int) -> np.ndarray:
    """Uniform bins over [0, 1], as ``sklearn.calibration.calibration_curve`` assigns them."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], s)


def reliability_table(y_true, y_score, *, n_bins: int = 10) -> pd.DataFrame:
    """The reliability diagram's points: per class and non-empty bin, the mean predicted
    probability, the observed frequency of the class and the number of cases.

    Returns
    -------
    pandas.DataFrame
        Columns ``class, bin, mean_predicted, observed, count``; for one class, ``observed`` and
        ``mean_predicted`` equal scikit-learn's ``calibration_curve(y_true == c, y_score[:, c],
        n_bins=n_bins)``.
    """
    t, s = _check(y_true, y_score, n_bins)
    rows = []
    for c in range(s.shape[1]):
        ids = _bin_ids(s[:, c], n_bins)
        total = np.bincount(ids, minlength=n_bins)
        predicted = np.bincount(ids, weights=s[:, c], minlength=n_bins)
        observed = np.bincount(ids, weights=(t == c).astype(float), minlength=n_bins)
        for b in np.flatnonzero(total):
            rows.append(
                (_name(c), int(b), predicted[b] / total[b], observed[b] / total[b], total[b])
            )
    return pd.DataFrame(rows, columns=["class", "bin", "mean_predicted", "observed", "count"])


def _name(c: int) -> str:
    return CLASSES[c] if c < len(CLASSES) else f"class {c}"


def _terms(t, s, n_bins: int) -> np.ndarray:
    """Per case, every term the scores sum: the squared error per class, then per class and
    bin the membership and the signed gap (score minus outcome): (n_cases, k + 2 k n_bins)."""
    k = s.shape[1]
    error = s - (t[:, None] == np.arange(k)[None, :])
    members = np.zeros((t.size, k, n_bins))
    for c in range(k):
        members[np.arange(t.size), c, _bin_ids(s[:, c], n_bins)] = 1.0
    gaps = members * error[:, :, None]
    return np.hstack([error**2, members.reshape(t.size, -1), gaps.reshape(t.size, -1)])


def _weighted_scores(terms, k: int, n_bins: int, weights) -> tuple[np.ndarray, np.ndarray]:
    """Brier and ECE per class for each row of case weights: two (n_weights, k) arrays, from
    one float product of the weights with :func:`_terms` (BLAS, unlike a boolean matrix,
    which numpy multiplies element by element)."""
    sums = weights @ terms
    brier = sums[:, :k] / weights.sum(axis=1)[:, None]
    total = sums[:, k : k + k * n_bins].reshape(-1, k, n_bins)
    gap = sums[:, k + k * n_bins :].reshape(-1, k, n_bins)
    return brier, np.abs(gap).sum(axis=2) / total.sum(axis=2)


def calibration_scores(y_true, y_score, *, n_bins: int = 10) -> dict[str, np.ndarray]:
    """``{"brier": per-class Brier scores, "ece": per-class expected calibration errors}``."""
    t, s = _check(y_true, y_score, n_bins)
    brier, ece = _weighted_scores(_terms(t, s, n_bins), s.shape[1], n_bins, np.ones((1, t.size)))
    return {"brier": brier[0], "ece": ece[0]}


def calibration_summary(
    y_true,
    y_score,
    *,
    groups=None,
    n_bins: int = 10,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Brier score and ECE per class and macro, with percentile bootstrap CIs.

    Parameters
    ----------
    y_true : array of int, shape (n,)
    y_score : array, shape (n, n_classes)
        Probabilities (or normalised confidences) in [0, 1].
    groups : array, shape (n,), optional
        Patient of each row: the bootstrap resamples whole patients (image-level rows).
    n_bins, n_boot, seed, alpha
        Uniform bins; bootstrap resamples (0: no CIs); its seed; 1 - confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns ``scope`` (each class, then ``macro``), ``metric`` (``brier``, ``ece``),
        ``value, ci_low, ci_high`` (lower is better for both).
    """
    t, s = _check(y_true, y_score, n_bins)
    brier, ece = _weighted_scores(_terms(t, s, n_bins), s.shape[1], n_bins, np.ones((1, t.size)))
    values = {"brier": _with_macro(brier)[0], "ece": _with_macro(ece)[0]}
    bounds = _bootstrap(t, s, n_bins, n_boot, seed, groups, alpha) if n_boot else None
    rows = []
    for metric, value in values.items():
        for j, scope in enumerate([*map(_name, range(s.shape[1])), "macro"]):
            low, high = (np.nan, np.nan) if bounds is None else bounds[metric][:, j]
            rows.append((scope, metric, float(value[j]), float(low), float(high)))
    return pd.DataFrame(rows, columns=["scope", "metric", "value", "ci_low", "ci_high"])


def _with_macro(per_class: np.ndarray) -> np.ndarray:
    return np.column_stack([per_class, per_class.mean(axis=1)])


def _bootstrap(t, s, n_bins, n_boot, seed, groups, alpha) -> dict[str, np.ndarray]:
    """(2, n_classes + 1) percentile bounds of each metric, a chunk of resamples at a time."""
    parts = {"brier": [], "ece": []}
    terms = _terms(t, s, n_bins)
    for weights in weight_chunks(t.size, n_boot, seed, groups):
        brier, ece = _weighted_scores(terms, s.shape[1], n_bins, weights)
        parts["brier"].append(_with_macro(brier))
        parts["ece"].append(_with_macro(ece))
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]
    return {m: np.nanpercentile(np.vstack(p), q, axis=0) for m, p in parts.items()}
