"""Kappa confidence intervals against statsmodels (the reference implementation)."""

import numpy as np
import pytest
from statsmodels.stats import inter_rater as ir

from core.statistics.stats import cohen_kappa, cohen_kappa_ci, fleiss_kappa_ci


def _pair(seed, n, k, agree):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, k, n)
    return a, np.where(rng.random(n) < agree, a, rng.integers(0, k, n))


@pytest.mark.parametrize(
    "seed, n, k, agree",
    [(0, 40, 2, 0.8), (1, 120, 3, 0.6), (2, 25, 4, 0.5), (3, 300, 3, 0.95)],
    ids=["2x2", "3x3", "4x4-small", "3x3-high"],
)
def test_cohen_kappa_ci_equals_statsmodels(seed, n, k, agree):
    a, b = _pair(seed, n, k, agree)
    table = np.zeros((k, k))
    np.add.at(table, (a, b), 1)
    ref = ir.cohens_kappa(table)
    got = cohen_kappa_ci(a, b)
    assert got.kappa == pytest.approx(ref.kappa, abs=1e-12)
    assert got.se == pytest.approx(ref.std_kappa, rel=1e-10)
    assert (got.low, got.high) == (pytest.approx(ref.kappa_low), pytest.approx(ref.kappa_upp))
    assert got.kappa == pytest.approx(cohen_kappa(a, b))  # the same kappa as scikit-learn's


def test_cohen_kappa_ci_on_class_names_and_level():
    a = np.array(["SCC", "AC", "ASC", "SCC", "AC", "SCC", "ASC", "AC"])
    b = np.array(["SCC", "AC", "SCC", "SCC", "AC", "SCC", "ASC", "ASC"])
    wide, narrow = cohen_kappa_ci(a, b, alpha=0.05), cohen_kappa_ci(a, b, alpha=0.2)
    assert wide.low < narrow.low < narrow.kappa < narrow.high < wide.high


def test_cohen_kappa_ci_single_label_is_nan_with_a_warning():
    with pytest.warns(UserWarning, match="undefined"):
        got = cohen_kappa_ci(["SCC"] * 5, ["SCC"] * 5)
    assert np.isnan(got.kappa) and np.isnan(got.low)


def test_fleiss_kappa_ci_point_equals_statsmodels_and_interval_its_bootstrap():
    rng = np.random.default_rng(4)
    truth = rng.integers(0, 3, 60)
    ratings = np.stack(
        [np.where(rng.random(60) < 0.7, truth, rng.integers(0, 3, 60)) for _ in range(4)], axis=1
    )
    got = fleiss_kappa_ci(ratings, n_boot=300, seed=7)
    assert got.kappa == pytest.approx(ir.fleiss_kappa(ir.aggregate_raters(ratings)[0]))
    # independent truth: the same resamples, each scored by statsmodels
    idx = np.random.default_rng(7).integers(0, 60, size=(300, 60))
    ref = [ir.fleiss_kappa(ir.aggregate_raters(ratings[i])[0]) for i in idx]
    low, high = np.quantile(ref, [0.025, 0.975])
    assert (got.low, got.high) == (pytest.approx(low), pytest.approx(high))
    assert got.low < got.kappa < got.high and got.method == "bootstrap"


def test_fleiss_kappa_ci_bad_n_boot():
    with pytest.raises(ValueError, match="n_boot=1 is not allowed"):
        fleiss_kappa_ci([[0, 1], [1, 1], [0, 0]], n_boot=1)
