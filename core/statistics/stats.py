"""Statistical tests and intervals used by the CV report and the reader study.

Pure functions over arrays: DeLong's AUC variance (the fast algorithm of Sun & Xu 2014),
McNemar's test for paired correctness, Cohen's and Fleiss' kappa (with CIs). The bootstrap
intervals of the metrics table live with the metrics (:func:`core.statistics.metrics.classification_table`).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score

from core.statistics.resampling import bootstrap_counts


class AUCInterval(NamedTuple):
    auc: float
    low: float
    high: float
    se: float


class DeLongTest(NamedTuple):
    auc_a: float
    auc_b: float
    difference: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float


class McNemarResult(NamedTuple):
    statistic: float
    p_value: float
    b: int
    c: int
    method: str


def _check_alpha(alpha: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")


def _check_binary(y, name: str = "y_true_binary") -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    values = set(np.unique(arr).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{name} must hold 0/1 (or bool), found {sorted(values)[:5]}")
    pos = arr.astype(bool)
    if pos.all() or not pos.any():
        raise ValueError(
            f"{name} needs both positive and negative cases, got {int(pos.sum())} "
            f"positives of {pos.size}"
        )
    return pos


def delong_placements(y_true_binary, scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AUCs and DeLong placement values of several scorings of the same cases.

    Parameters
    ----------
    y_true_binary : array-like of 0/1, shape (n_cases,)
    scores : array-like, shape (n_scorings, n_cases) or (n_cases,)

    Returns
    -------
    aucs : ndarray, shape (n_scorings,)
    v_pos : ndarray, shape (n_scorings, n_pos)
        For each positive case, the fraction of negatives it outranks (ties 1/2).
    v_neg : ndarray, shape (n_scorings, n_neg)
        For each negative case, the fraction of positives that outrank it (ties 1/2).
    """
    pos = _check_binary(y_true_binary)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    if s.shape[1] != pos.size:
        raise ValueError(f"scores have {s.shape[1]} cases but y_true_binary has {pos.size}")
    m, n = int(pos.sum()), int((~pos).sum())
    ranks_all = sps.rankdata(s, axis=1)
    ranks_pos = sps.rankdata(s[:, pos], axis=1)
    ranks_neg = sps.rankdata(s[:, ~pos], axis=1)
    v_pos = (ranks_all[:, pos] - ranks_pos) / n
    v_neg = 1.0 - (ranks_all[:, ~pos] - ranks_neg) / m
    return v_pos.mean(axis=1), v_pos, v_neg


def delong_covariance(y_true_binary, scores) -> tuple[np.ndarray, np.ndarray]:
    """AUCs and their DeLong covariance matrix for several scorings of the same cases.

    Parameters
    ----------
    y_true_binary : array-like of 0/1, shape (n_cases,)
    scores : array-like, shape (n_scorings, n_cases)

    Returns
    -------
    aucs : ndarray, shape (n_scorings,)
    cov : ndarray, shape (n_scorings, n_scorings)
        ``S10 / m + S01 / n`` (DeLong et al. 1988; Sun & Xu 2014).
    """
    aucs, v_pos, v_neg = delong_placements(y_true_binary, scores)
    m, n = v_pos.shape[1], v_neg.shape[1]
    s10 = np.atleast_2d(np.cov(v_pos)) if m > 1 else np.zeros((len(aucs),) * 2)
    s01 = np.atleast_2d(np.cov(v_neg)) if n > 1 else np.zeros((len(aucs),) * 2)
    return aucs, s10 / m + s01 / n


def delong_auc_ci(y_true_binary, score, alpha: float = 0.05) -> AUCInterval:
    """AUC with a DeLong normal-approximation confidence interval, clipped to [0, 1].

    Parameters
    ----------
    y_true_binary : array-like of 0/1, shape (n_cases,)
    score : array-like, shape (n_cases,)
    alpha : float, default 0.05

    Returns
    -------
    AUCInterval
        ``auc, low, high, se``.
    """
    _check_alpha(alpha)
    aucs, cov = delong_covariance(y_true_binary, np.asarray(score, dtype=float)[None, :])
    auc, se = float(aucs[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    z = sps.norm.ppf(1 - alpha / 2)
    return AUCInterval(auc, max(0.0, auc - z * se), min(1.0, auc + z * se), se)


def delong_test(y_true, score_a, score_b, alpha: float = 0.05) -> DeLongTest:
    """DeLong's test that two correlated ROC AUCs (same cases) are equal.

    Parameters
    ----------
    y_true : array-like of 0/1, shape (n_cases,)
    score_a, score_b : array-like, shape (n_cases,)
    alpha : float, default 0.05
        For the CI of the difference ``auc_a - auc_b``.

    Returns
    -------
    DeLongTest
        AUCs, difference, its standard error, z and the two-sided p-value. When the two scorings
        give identical placements the SE is 0, z is 0 and p is 1.
    """
    _check_alpha(alpha)
    a, b = np.asarray(score_a, dtype=float), np.asarray(score_b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"score_a has shape {a.shape} but score_b has {b.shape}: they must match")
    aucs, cov = delong_covariance(y_true, np.vstack([a, b]))
    diff = float(aucs[0] - aucs[1])
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    se = float(np.sqrt(max(var, 0.0)))
    if se == 0:
        z, p = 0.0 if diff == 0 else np.copysign(np.inf, diff), 1.0 if diff == 0 else 0.0
    else:
        z = diff / se
        p = float(2 * sps.norm.sf(abs(z)))
    q = sps.norm.ppf(1 - alpha / 2)
    return DeLongTest(
        float(aucs[0]), float(aucs[1]), diff, se, float(z), p, diff - q * se, diff + q * se
    )


def mcnemar_test(correct_a, correct_b, *, exact: bool | None = None) -> McNemarResult:
    """McNemar's test that two paired classifiers (or readers) have the same accuracy.

    Parameters
    ----------
    correct_a, correct_b : array-like of bool, shape (n_cases,)
        Whether each rater got each case right.
    exact : bool, optional
        Exact binomial test (statistic = min(b, c)); default when the discordant count b + c
        is below 25. Otherwise chi-square with continuity correction (|b - c| - 1)^2 / (b + c).

    Returns
    -------
    McNemarResult
        ``statistic, p_value, b, c, method`` where b = a right and b wrong, c = a wrong and b
        right.
    """
    a = np.asarray(correct_a)
    b_arr = np.asarray(correct_b)
    if a.shape != b_arr.shape or a.ndim != 1:
        raise ValueError(
            f"correct_a {a.shape} and correct_b {b_arr.shape} must be 1-D of the same length"
        )
    for name, arr in (("correct_a", a), ("correct_b", b_arr)):
        if not set(np.unique(arr).tolist()) <= {0, 1}:
            raise ValueError(f"{name} must hold booleans (or 0/1)")
    a, b_arr = a.astype(bool), b_arr.astype(bool)
    b = int((a & ~b_arr).sum())
    c = int((~a & b_arr).sum())
    if exact is None:
        exact = b + c < 25
    if b + c == 0:
        return McNemarResult(0.0, 1.0, b, c, "exact" if exact else "chi2")
    if exact:
        p = min(1.0, 2 * sps.binom.cdf(min(b, c), b + c, 0.5))
        return McNemarResult(float(min(b, c)), float(p), b, c, "exact")
    stat = (abs(b - c) - 1) ** 2 / (b + c)
    return McNemarResult(float(stat), float(sps.chi2.sf(stat, 1)), b, c, "chi2")


def cohen_kappa(labels_a, labels_b) -> float:
    """Cohen's kappa between two raters' labels of the same cases (scikit-learn's, unweighted).

    Parameters
    ----------
    labels_a, labels_b : array-like, shape (n_cases,)
        Any labels that compare equal across the two raters (ints, class names).

    Returns
    -------
    float
        (p_o - p_e) / (1 - p_e); NaN with a warning when p_e = 1 (both raters use one label).
    """
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"labels_a {a.shape} and labels_b {b.shape} must be non-empty 1-D of the same length"
        )
    # codes over both raters' labels, so 1 and "1" compare as NumPy compares them
    cats, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    if cats.size == 1:
        warnings.warn("Cohen's kappa is undefined: both raters used a single label", stacklevel=2)
        return np.nan
    return float(cohen_kappa_score(codes[: a.size], codes[a.size :]))


def fleiss_kappa(ratings) -> float:
    """Fleiss' kappa for a fixed number of raters per subject.

    Parameters
    ----------
    ratings : array-like, shape (n_subjects, n_raters)
        The label each rater gave each subject (any hashable labels).

    Returns
    -------
    float
        (P_bar - P_e) / (1 - P_e) (Fleiss 1971); NaN with a warning when P_e = 1.
    """
    r = np.asarray(ratings)
    if r.ndim != 2 or r.shape[0] < 1 or r.shape[1] < 2:
        raise ValueError(
            f"ratings must be 2-D (subjects x raters) with at least 2 raters, got shape {r.shape}"
        )
    _, codes = np.unique(r, return_inverse=True)
    codes = codes.reshape(r.shape)
    n_sub, n_rat = r.shape
    k = int(codes.max()) + 1
    counts = (
        np.bincount((np.arange(n_sub)[:, None] * k + codes).ravel(), minlength=n_sub * k)
        .reshape(n_sub, k)
        .astype(float)
    )
    p_j = counts.sum(axis=0) / (n_sub * n_rat)
    p_i = ((counts**2).sum(axis=1) - n_rat) / (n_rat * (n_rat - 1))
    p_bar, p_e = p_i.mean(), float((p_j**2).sum())
    if np.isclose(p_e, 1.0):
        warnings.warn("Fleiss' kappa is undefined: every rating used the same label", stacklevel=2)
        return np.nan
    return float((p_bar - p_e) / (1 - p_e))


class KappaInterval(NamedTuple):
    kappa: float
    low: float
    high: float
    se: float  # NaN for a bootstrap interval
    method: str


def _codes(labels_a, labels_b) -> tuple[np.ndarray, np.ndarray, int]:
    a, b = np.asarray(labels_a), np.asarray(labels_b)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(
            f"labels_a {a.shape} and labels_b {b.shape} must be non-empty 1-D of the same length"
        )
    cats, codes = np.unique(np.concatenate([a, b]), return_inverse=True)
    return codes[: a.size], codes[a.size :], cats.size


def cohen_kappa_ci(labels_a, labels_b, *, alpha: float = 0.05) -> KappaInterval:
    """Cohen's kappa with its large-sample confidence interval.

    The standard error is Fleiss, Cohen & Everitt's (1969) non-null asymptotic one (as
    statsmodels' ``cohens_kappa`` and SAS PROC FREQ give it); the interval is kappa +/- z SE,
    not clipped.

    Parameters
    ----------
    labels_a, labels_b : array-like, shape (n_cases,)
    alpha : float, default 0.05

    Returns
    -------
    KappaInterval
        ``kappa, low, high, se, method``; all NaN with a warning when both raters used a single
        label.
    """
    _check_alpha(alpha)
    a, b, k = _codes(labels_a, labels_b)
    if k == 1:
        warnings.warn("Cohen's kappa is undefined: both raters used a single label", stacklevel=2)
        return KappaInterval(np.nan, np.nan, np.nan, np.nan, "asymptotic")
    n = a.size
    p = np.zeros((k, k))
    np.add.at(p, (a, b), 1.0 / n)
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    p_o, p_e = float(np.trace(p)), float(rows @ cols)
    kappa = (p_o - p_e) / (1 - p_e)
    # Fleiss, Cohen & Everitt 1969, eq. 13: diagonal, off-diagonal and correction terms
    diag = (np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2).sum()
    weights = (cols[:, None] + rows[None, :]) ** 2
    off = (1 - kappa) ** 2 * (p * weights)[~np.eye(k, dtype=bool)].sum()
    var = (diag + off - (kappa - p_e * (1 - kappa)) ** 2) / ((1 - p_e) ** 2 * n)
    se = float(np.sqrt(max(var, 0.0)))
    z = sps.norm.ppf(1 - alpha / 2)
    return KappaInterval(
        float(kappa), float(kappa - z * se), float(kappa + z * se), se, "asymptotic"
    )


def _fleiss_of_resamples(counts: np.ndarray, times_drawn: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of each resample of the count tables ``counts`` (subjects x categories, n
    raters per subject), resample ``b`` drawing subject ``i`` ``times_drawn[b, i]`` times. Fleiss'
    kappa needs only the category totals and the sum of squared counts, so it is computed from
    the resamples' sums and no (resamples x subjects x categories) array is ever built."""
    n_sub = counts.shape[0]
    per_subject = np.column_stack([counts, (counts**2).sum(axis=1)])
    sums = times_drawn @ per_subject
    n_rat = counts[0].sum()
    p_j = sums[:, :-1] / (n_sub * n_rat)
    p_bar = (sums[:, -1] / n_sub - n_rat) / (n_rat * (n_rat - 1))
    p_e = (p_j**2).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_bar - p_e) / (1 - p_e)


def fleiss_kappa_ci(
    ratings, *, alpha: float = 0.05, n_boot: int = 2000, seed: int = 0
) -> KappaInterval:
    """Fleiss' kappa with a percentile bootstrap interval over subjects.

    Subjects (cases) are resampled with replacement, ``n_boot`` times, seeded; resamples in
    which every rating is one label (kappa undefined) are left out of the percentiles.

    Parameters
    ----------
    ratings : array-like, shape (n_subjects, n_raters)
    alpha : float, default 0.05
    n_boot, seed : int

    Returns
    -------
    KappaInterval
    """
    _check_alpha(alpha)
    kappa = fleiss_kappa(ratings)
    if not isinstance(n_boot, int | np.integer) or n_boot < 2:
        raise ValueError(f"n_boot={n_boot!r} is not allowed: use an integer >= 2")
    r = np.asarray(ratings)
    _, codes = np.unique(r, return_inverse=True)
    codes = codes.reshape(r.shape)
    counts = np.stack([(codes == c).sum(axis=1) for c in range(codes.max() + 1)], axis=1)
    if np.isnan(kappa):
        return KappaInterval(np.nan, np.nan, np.nan, np.nan, "bootstrap")
    times_drawn = bootstrap_counts(r.shape[0], n_boot, seed).astype(float)
    draws = _fleiss_of_resamples(counts.astype(float), times_drawn)
    draws = draws[np.isfinite(draws)]
    low, high = np.quantile(draws, [alpha / 2, 1 - alpha / 2])
    return KappaInterval(kappa, float(low), float(high), np.nan, "bootstrap")
