"""Classification metrics for the model and for every reader: pure functions over arrays.

Definitions follow the paper: per class, one-vs-rest, precision = TP/(TP+FP), sensitivity =
TP/(TP+FN), specificity = TN/(TN+FP), F1 = 2PS/(P+S), accuracy = (TP+TN)/N; overall accuracy =
trace/N; error rate = 1 - accuracy. Labels are class indices into ``core.data.labels.CLASSES``.

A metric whose denominator is zero (e.g. a fold without ASC cases) is undefined: it becomes
``zero_division`` (NaN by default) with an ``UndefinedMetricWarning``; averages skip it.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

from core.data.labels import CLASSES
from core.statistics.resampling import weight_chunks
from core.statistics.stats import delong_auc_ci

AVERAGES = (None, "macro", "weighted")
METRICS = ("precision", "sensitivity", "specificity", "f1", "accuracy", "error_rate", "auc")


class UndefinedMetricWarning(UserWarning):
    """A metric had a zero denominator (or a one-class ROC) and was set to ``zero_division``."""


# ---------------------------------------------------------------------------------------------
# validation


def _check_labels(y, name: str, n_classes: int) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per case), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: need at least one case")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))][0]
            raise ValueError(f"{name} must hold integer class indices, found {bad!r}")
    elif arr.dtype.kind not in "iub":
        raise ValueError(
            f"{name} must hold integer class indices 0..{n_classes - 1}, got dtype {arr.dtype}; "
            "convert class names with core.data.labels.parse_label"
        )
    arr = arr.astype(np.int64)
    out = (arr < 0) | (arr >= n_classes)
    if out.any():
        raise ValueError(
            f"{name} contains label {arr[out][0]} outside the allowed range 0..{n_classes - 1}"
        )
    return arr


def _check_pair(y_true, y_pred, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(n_classes, int | np.integer) or n_classes < 2:
        raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    t = _check_labels(y_true, "y_true", n_classes)
    p = _check_labels(y_pred, "y_pred", n_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} cases but y_pred has {p.size}: they must match")
    return t, p


def _check_scores(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    score = np.asarray(y_score, dtype=np.float64)
    if score.ndim != 2 or score.shape[1] < 2:
        raise ValueError(
            f"y_score must be 2-D (cases x classes) with at least 2 classes, got shape {score.shape}"
        )
    t = _check_labels(y_true, "y_true", score.shape[1])
    if score.shape[0] != t.size:
        raise ValueError(
            f"y_true has {t.size} cases but y_score has {score.shape[0]} rows: they must match"
        )
    if not np.all(np.isfinite(score)):
        raise ValueError("y_score contains NaN or infinite values; all scores must be finite")
    return t, score


def _check_average(average) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average={average!r} is not allowed: use None, 'macro' or 'weighted'")


# ---------------------------------------------------------------------------------------------
# confusion matrices and one-vs-rest counts


def confusion_matrix(y_true, y_pred, *, n_classes: int = 3) -> np.ndarray:
    """Confusion matrix with rows = true class and columns = predicted class.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_cases,)
        Class indices in ``0..n_classes-1``.
    n_classes : int, default 3
        Number of classes; absent classes still get a row and a column.

    Returns
    -------
    ndarray of int64, shape (n_classes, n_classes)
    """
    t, p = _check_pair(y_true, y_pred, n_classes)
    return np.bincount(t * n_classes + p, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def _ovr_counts(cm: np.ndarray) -> tuple[np.ndarray, ...]:
    """TP, FP, FN, TN per class from one (k, k) or a stack (..., k, k) of confusion matrices."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(np.float64)
    fp = cm.sum(axis=-2) - tp
    fn = cm.sum(axis=-1) - tp
    n = cm.sum(axis=(-2, -1))[..., None]
    tn = n - tp - fp - fn
    return tp, fp, fn, tn


def _divide(num, den, zero_division: float, what: str, warn: bool) -> np.ndarray:
    num, den = np.broadcast_arrays(np.asarray(num, float), np.asarray(den, float))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    undefined = den == 0
    if undefined.any():
        out = np.where(undefined, zero_division, out)
        if warn:
            k = undefined.shape[-1]
            flat = undefined.reshape(-1, k).any(axis=0)
            which = ", ".join(_class_name(c, k) for c in np.flatnonzero(flat))
            warnings.warn(
                f"{what} is undefined (zero denominator) for class {which}; set to {zero_division}",
                UndefinedMetricWarning,
                stacklevel=4,
            )
    return out


def _average(values: np.ndarray, support: np.ndarray, average):
    """Average per-class values over the last axis, skipping NaN (undefined) classes."""
    if average is None:
        return values
    defined = ~np.isnan(values)
    weights = np.ones_like(values) if average == "macro" else np.broadcast_to(support, values.shape)
    weights = np.where(defined, weights, 0.0)
    total = weights.sum(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (np.where(defined, values, 0.0) * weights).sum(axis=-1) / total
    out = np.where(total > 0, out, np.nan)
    return float(out) if out.ndim == 0 else out


def _per_class(name: str, cm: np.ndarray, zero_division: float, warn: bool) -> np.ndarray:
    tp, fp, fn, tn = _ovr_counts(cm)
    if name == "precision":
        return _divide(tp, tp + fp, zero_division, "precision", warn)
    if name == "sensitivity":
        return _divide(tp, tp + fn, zero_division, "sensitivity", warn)
    if name == "specificity":
        return _divide(tn, tn + fp, zero_division, "specificity", warn)
    if name == "f1":
        # 2TP / (2TP + FP + FN) equals 2PS/(P+S) and is defined whenever either is
        return _divide(2 * tp, 2 * tp + fp + fn, zero_division, "f1", warn)
    if name == "accuracy":
        return (tp + tn) / (tp + fp + fn + tn)
    if name == "error_rate":
        return (fp + fn) / (tp + fp + fn + tn)
    raise ValueError(f"unknown metric {name!r}: expected one of {', '.join(METRICS[:-1])}")


def _score(name, y_true, y_pred, n_classes, average, zero_division):
    _check_average(average)
    t, p = _check_pair(y_true, y_pred, n_classes)
    cm = np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)
    values = _per_class(name, cm, zero_division, warn=True)
    return _average(values, cm.sum(axis=1).astype(float), average)


def precision_score(y_true, y_pred, *, n_classes=3, average=None, zero_division=np.nan):
    """Precision TP/(TP+FP) per class (one-vs-rest), or its macro / support-weighted average.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_cases,)
    n_classes : int, default 3
    average : {None, "macro", "weighted"}
        None returns one value per class; "weighted" weights classes by their true support.
        Undefined classes are left out of averages.
    zero_division : float, default NaN
        Value for a class with no predicted cases (a warning is issued).

    Returns
    -------
    ndarray of shape (n_classes,) or float
    """
    return _score("precision", y_true, y_pred, n_classes, average, zero_division)


def sensitivity_score(y_true, y_pred, *, n_classes=3, average=None, zero_division=np.nan):
    """Sensitivity (recall) TP/(TP+FN) per class, or its average; see :func:`precision_score`."""
    return _score("sensitivity", y_true, y_pred, n_classes, average, zero_division)


def specificity_score(y_true, y_pred, *, n_classes=3, average=None, zero_division=np.nan):
    """Specificity TN/(TN+FP) per class, or its average; see :func:`precision_score`."""
    return _score("specificity", y_true, y_pred, n_classes, average, zero_division)


def f1_score(y_true, y_pred, *, n_classes=3, average=None, zero_division=np.nan):
    """F1 = 2TP/(2TP+FP+FN) per class, or its average; see :func:`precision_score`."""
    return _score("f1", y_true, y_pred, n_classes, average, zero_division)


def accuracy_score(y_true, y_pred, *, n_classes=3, average="overall"):
    """Accuracy: overall trace/N by default, or one-vs-rest (TP+TN)/N per class.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_cases,)
    n_classes : int, default 3
    average : {"overall", None, "macro", "weighted"}
        "overall" (default) gives the fraction of correct labels; None gives the one-vs-rest
        accuracy of each class; "macro"/"weighted" average those.

    Returns
    -------
    float or ndarray of shape (n_classes,)
    """
    if average == "overall":
        t, p = _check_pair(y_true, y_pred, n_classes)
        return float(np.mean(t == p))
    return _score("accuracy", y_true, y_pred, n_classes, average, np.nan)


def error_rate(y_true, y_pred, *, n_classes=3, average="overall"):
    """Error rate = 1 - accuracy, with the same ``average`` options as :func:`accuracy_score`."""
    if average == "overall":
        return 1.0 - accuracy_score(y_true, y_pred, n_classes=n_classes)
    return _score("error_rate", y_true, y_pred, n_classes, average, np.nan)


# ---------------------------------------------------------------------------------------------
# ROC


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted 1/2 (midranks); NaN if one group is empty."""
    from scipy.stats import rankdata

    n1 = int(positive.sum())
    n0 = positive.size - n1
    if n1 == 0 or n0 == 0:
        return np.nan
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def roc_auc_ovr(y_true, y_score, *, average=None):
    """One-vs-rest ROC AUC per class from per-class scores (probabilities or confidences).

    Parameters
    ----------
    y_true : array-like of int, shape (n_cases,)
    y_score : array-like, shape (n_cases, n_classes)
        Column ``c`` scores how likely each case is class ``c``.
    average : {None, "macro", "weighted"}

    Returns
    -------
    ndarray of shape (n_classes,) or float
        A class absent from ``y_true`` (or the only class present) gets NaN with a warning
        and is skipped by the averages.
    """
    _check_average(average)
    t, score = _check_scores(y_true, y_score)
    k = score.shape[1]
    aucs = np.array([_binary_auc(t == c, score[:, c]) for c in range(k)])
    if np.isnan(aucs).any():
        missing = ", ".join(_class_name(c, k) for c in np.flatnonzero(np.isnan(aucs)))
        warnings.warn(
            f"AUC is undefined for class {missing}: y_true needs both positive and negative "
            "cases of a class; set to NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    return _average(aucs, np.bincount(t, minlength=k).astype(float), average)


def _class_name(c: int, k: int) -> str:
    return CLASSES[c] if k == len(CLASSES) else str(c)


def roc_curve_ovr(y_true, y_score, class_index: int):
    """ROC curve of one class against the rest.

    Parameters
    ----------
    y_true : array-like of int, shape (n_cases,)
    y_score : array-like, shape (n_cases, n_classes)
    class_index : int
        The positive class.

    Returns
    -------
    fpr, tpr, thresholds : ndarray
        One point per distinct score, thresholds decreasing from ``inf`` (the (0, 0) point);
        a case is called positive when its score is >= the threshold.
    """
    t, score = _check_scores(y_true, y_score)
    k = score.shape[1]
    if not isinstance(class_index, int | np.integer) or not 0 <= class_index < k:
        raise ValueError(f"class_index={class_index!r} is not allowed: use 0..{k - 1}")
    positive = t == class_index
    if positive.all() or not positive.any():
        warnings.warn(
            f"ROC curve of class {_class_name(class_index, k)} is undefined: y_true needs both "
            "positive and negative cases; the missing rate is NaN",
            UndefinedMetricWarning,
            stacklevel=2,
        )
    s = score[:, class_index]
    order = np.argsort(-s, kind="mergesort")
    s, pos = s[order], positive[order]
    last_of_level = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(pos)[last_of_level]
    fps = np.cumsum(~pos)[last_of_level]
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.r_[0, tps] / positive.sum()
        fpr = np.r_[0, fps] / (~positive).sum()
    return fpr.astype(float), tpr.astype(float), np.r_[np.inf, s[last_of_level]]


def macro_roc_curve(y_true, y_score):
    """Macro-average ROC curve: per-class TPRs interpolated onto the union of their FPRs.

    Classes whose curve is undefined are skipped. The curve starts at (0, 0) and ends at (1, 1).

    Returns
    -------
    fpr, tpr : ndarray
    """
    t, score = _check_scores(y_true, y_score)
    curves = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        for c in range(score.shape[1]):
            if 0 < (t == c).sum() < t.size:
                fpr, tpr, _ = roc_curve_ovr(t, score, c)
                curves.append((fpr, tpr))
    if not curves:
        raise ValueError("macro ROC curve is undefined: y_true contains only one class")
    grid = np.unique(np.concatenate([fpr for fpr, _ in curves]))
    mean_tpr = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr in curves], axis=0)
    # np.interp takes the top of a vertical step at FPR 0: start the curve at (0, 0) explicitly
    return np.r_[0.0, grid], np.r_[0.0, mean_tpr]


# ---------------------------------------------------------------------------------------------
# the one table


def _weighted_confusions(t, p, k, weights) -> np.ndarray:
    """Confusion matrices of all resamples at once: weights (B, N) -> (B, k, k)."""
    pair = np.zeros((t.size, k * k))
    pair[np.arange(t.size), t * k + p] = 1.0
    return (weights @ pair).reshape(-1, k, k)


class _ByLevel(NamedTuple):
    """One class's AUC input when scores tie at few levels: the (2L, N) matrix summing case
    weights into the positives' and the negatives' weights at each of the L levels."""

    summing: sparse.csr_matrix
    n_levels: int


class _ByPair(NamedTuple):
    """One class's AUC input when scores rarely tie: the positives, the negatives in score
    order and, per positive, how many negatives score below it and at most as high (None when
    no positive ties with a negative)."""

    positives: np.ndarray
    negatives: np.ndarray
    below: np.ndarray
    up_to: np.ndarray | None


def _auc_inputs(t, score) -> list[_ByLevel | _ByPair]:
    """Per class, :func:`_weighted_aucs`'s input, built once per bootstrap: by level when
    there are at most half as many levels as cases (the sparse sum is then cheaper)."""
    out = []
    for c in range(score.shape[1]):
        s = score[:, c]
        levels, level = np.unique(s, return_inverse=True)
        if 2 * levels.size <= t.size:
            rows = np.where(t == c, level, level + levels.size)
            shape = (2 * levels.size, t.size)
            summing = sparse.csr_matrix((np.ones(t.size), (rows, np.arange(t.size))), shape=shape)
            out.append(_ByLevel(summing, levels.size))
            continue
        positives, negatives = np.flatnonzero(t == c), np.flatnonzero(t != c)
        negatives = negatives[np.argsort(s[negatives], kind="stable")]
        below = np.searchsorted(s[negatives], s[positives], side="left")
        up_to = np.searchsorted(s[negatives], s[positives], side="right")
        tied = not np.array_equal(below, up_to)
        out.append(_ByPair(positives, negatives, below, up_to if tied else None))
    return out


def _weighted_aucs(inputs: list[_ByLevel | _ByPair], weights) -> np.ndarray:
    """One-vs-rest AUCs of all resamples: weights (B, N) are case multiplicities -> (B, k).

    A resample's AUC is the positives' weight times the negatives' weight below them (half of
    it where tied), over W_pos * W_neg, summed by level or by positive: the weights are
    counts, so every sum is exact and both ways give the same bits.
    """
    out = np.full((weights.shape[0], len(inputs)), np.nan)
    for c, one in enumerate(inputs):
        if isinstance(one, _ByLevel):
            both = np.asarray(one.summing @ weights.T).T
            wp, wn = both[:, : one.n_levels], both[:, one.n_levels :]
            below = np.cumsum(wn, axis=1) - wn
            n1, n0 = wp.sum(axis=1), wn.sum(axis=1)
            pairs = (wp * (below + wn / 2)).sum(axis=1)
        else:
            cumulative = np.zeros((weights.shape[0], one.negatives.size + 1))
            np.cumsum(weights[:, one.negatives], axis=1, out=cumulative[:, 1:])
            wp = weights[:, one.positives]
            n1, n0 = wp.sum(axis=1), cumulative[:, -1]
            beaten = cumulative[:, one.below]
            if one.up_to is not None:
                beaten = (beaten + cumulative[:, one.up_to]) / 2
            pairs = np.einsum("bi,bi->b", wp, beaten)
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, c] = np.where((n1 > 0) & (n0 > 0), pairs / (n1 * n0), np.nan)
    return out


def _table_values(cm: np.ndarray, aucs: np.ndarray | None, warn: bool) -> dict:
    """{(scope, metric): values} for one (k, k) or a stack (B, k, k) of confusion matrices."""
    support = cm.sum(axis=-1).astype(float)
    k = cm.shape[-1]
    scopes = [_class_name(c, k) for c in range(k)]
    out = {}
    for name in METRICS:
        if name == "auc":
            if aucs is None:
                continue
            per = aucs
        else:
            per = _per_class(name, cm, np.nan, warn)
        for c, scope in enumerate(scopes):
            out[(scope, name)] = per[..., c]
        out[("macro", name)] = _average(per, support, "macro")
        out[("weighted", name)] = _average(per, support, "weighted")
    overall = np.trace(cm, axis1=-2, axis2=-1) / cm.sum(axis=(-2, -1))
    out[("overall", "accuracy")] = overall
    out[("overall", "error_rate")] = 1.0 - overall
    return out


def classification_table(
    y_true,
    y_pred,
    y_score=None,
    *,
    ci: bool = True,
    n_boot: int = 1000,
    seed: int = 0,
    groups=None,
    alpha: float = 0.05,
    n_classes: int = 3,
) -> pd.DataFrame:
    """All metrics per class, macro and support-weighted, with 95% confidence intervals.

    Parameters
    ----------
    y_true, y_pred : array-like of int, shape (n_cases,)
        One row per case (patient).
    y_score : array-like, shape (n_cases, n_classes), optional
        Per-class probabilities/confidences; adds the ``auc`` rows.
    ci : bool, default True
        Add percentile bootstrap CIs (cases resampled with replacement, seeded); per-class AUC
        CIs come from DeLong's method instead when every row is its own patient (``groups``
        None). With ``ci=False`` the CI columns are NaN. :func:`ci_methods` says it in words.
    n_boot : int, default 1000
    seed : int, default 0
    groups : array-like, optional
        Resample whole groups (e.g. patients when rows are images) instead of rows.
    alpha : float, default 0.05
        1 - confidence level.
    n_classes : int, default 3

    Returns
    -------
    DataFrame
        Long form with columns ``scope, metric, value, ci_low, ci_high``. Scopes are the class
        names, ``macro`` and ``weighted`` for every metric, plus ``overall`` (trace/N) for
        accuracy and error_rate. Undefined values are NaN (with a warning).
    """
    t, p, score = _check_table_inputs(y_true, y_pred, y_score, n_classes, ci, n_boot, alpha)
    cm = np.bincount(t * n_classes + p, minlength=n_classes**2).reshape(n_classes, n_classes)
    aucs = None if score is None else _table_aucs(t, score)
    point = _table_values(cm, aucs, warn=True)
    lows, highs = {}, {}
    if ci:
        lows, highs = _bootstrap_bounds(t, p, score, n_classes, n_boot, seed, groups, alpha)
        # DeLong assumes independent rows; with several rows per patient the patient bootstrap
        # (already in lows/highs) is the interval that respects them.
        if score is not None and groups is None:
            _replace_auc_bounds_with_delong(t, score, aucs, alpha, lows, highs)
    rows = [
        {
            "scope": scope,
            "metric": metric,
            "value": float(value),
            "ci_low": lows.get((scope, metric), np.nan),
            "ci_high": highs.get((scope, metric), np.nan),
        }
        for (scope, metric), value in point.items()
    ]
    return pd.DataFrame(rows, columns=["scope", "metric", "value", "ci_low", "ci_high"])


def _check_table_inputs(y_true, y_pred, y_score, n_classes, ci, n_boot, alpha):
    """Validated labels (and scores, or None) for :func:`classification_table`."""
    t, p = _check_pair(y_true, y_pred, n_classes)
    score = None
    if y_score is not None:
        t, score = _check_scores(t, y_score)
        if score.shape[1] != n_classes:
            raise ValueError(
                f"y_score has {score.shape[1]} columns but n_classes={n_classes}: they must match"
            )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")
    if ci and (not isinstance(n_boot, int | np.integer) or n_boot < 2):
        raise ValueError(f"n_boot={n_boot!r} is not allowed: use an integer >= 2")
    return t, p, score


def _table_aucs(t: np.ndarray, score: np.ndarray) -> np.ndarray:
    """One-vs-rest AUC per class, with one warning naming every class where it is undefined."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        aucs = roc_auc_ovr(t, score)
    if np.isnan(aucs).any():
        n_classes = score.shape[1]
        missing = ", ".join(_class_name(c, n_classes) for c in np.flatnonzero(np.isnan(aucs)))
        warnings.warn(
            f"AUC is undefined for class {missing} (no positive or no negative cases)",
            UndefinedMetricWarning,
            stacklevel=3,  # the caller of classification_table
        )
    return aucs


def _bootstrap_bounds(t, p, score, n_classes, n_boot, seed, groups, alpha):
    """Percentile bootstrap bounds {(scope, metric): low}, {...: high} of every table value."""
    cms, aucs = [], []
    auc_inputs = None if score is None else _auc_inputs(t, score)
    for weights in weight_chunks(t.size, n_boot, seed, groups):
        cms.append(_weighted_confusions(t, p, n_classes, weights))
        if auc_inputs is not None:
            aucs.append(_weighted_aucs(auc_inputs, weights))
    boot_cm = np.concatenate(cms)
    boot_auc = np.concatenate(aucs) if score is not None else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        boot = _table_values(boot_cm, boot_auc, warn=False)
        lows = {key: float(np.nanquantile(v, alpha / 2)) for key, v in boot.items()}
        highs = {key: float(np.nanquantile(v, 1 - alpha / 2)) for key, v in boot.items()}
    return lows, highs


def _replace_auc_bounds_with_delong(t, score, aucs, alpha, lows: dict, highs: dict) -> None:
    """Per-class AUC bounds from DeLong's interval instead of the bootstrap (in place)."""
    n_classes = score.shape[1]
    for c in range(n_classes):
        key = (_class_name(c, n_classes), "auc")
        if np.isnan(aucs[c]):
            lows[key] = highs[key] = np.nan
        else:
            res = delong_auc_ci(t == c, score[:, c], alpha=alpha)
            lows[key], highs[key] = res.low, res.high


def ci_methods(*, grouped: bool, n_boot: int = 1000) -> str:
    """How :func:`classification_table` made its intervals, in the words the app and report show."""
    boot = f"percentile bootstrap over patients ({n_boot} resamples)"
    if grouped:
        return f"95% CIs: {boot} for every metric, per-class AUC included (rows are images)."
    return f"95% CIs: per-class AUC by DeLong's method; every other metric by {boot}."


def per_fold_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD across folds of per-fold metric values, counting undefined (NaN) folds.

    Parameters
    ----------
    frame : DataFrame
        Either long form with columns ``metric`` and ``value`` (plus optional ``fold`` and
        ``scope``, e.g. stacked :func:`classification_table` outputs), or wide form with one row
        per fold and one numeric column per metric (a ``fold`` column is ignored).

    Returns
    -------
    DataFrame
        Columns ``[scope,] metric, mean, sd, n_folds, n_undefined``; mean and SD (ddof=1) use
        only the folds where the metric is defined.
    """
    if {"metric", "value"} <= set(frame.columns):
        keys = [c for c in ("scope", "metric") if c in frame.columns]
        long = frame[keys + ["value"]]
    else:
        numeric = [
            c for c in frame.columns if c != "fold" and pd.api.types.is_numeric_dtype(frame[c])
        ]
        if not numeric:
            raise ValueError(
                "frame has no metric values: expected columns 'metric' and 'value' or numeric "
                f"metric columns, got {list(frame.columns)}"
            )
        keys = ["metric"]
        long = frame[numeric].melt(var_name="metric", value_name="value")
    out = (
        long.groupby(keys, sort=False)["value"]
        .agg(
            mean="mean",
            sd=lambda v: v.std(ddof=1),
            n_folds="size",
            n_undefined=lambda v: int(v.isna().sum()),
        )
        .reset_index()
    )
    return out
