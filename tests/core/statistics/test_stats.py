"""core.statistics.stats against brute-force formulas, scipy/scikit-learn oracles and textbook examples."""

import numpy as np
import pytest
from scipy import stats as sps
from sklearn.metrics import cohen_kappa_score, roc_auc_score

from core.statistics import stats as S


def _binary_case(seed, n=60, n_scorings=3):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    truth[:2] = [0, 1]
    base = truth + rng.normal(0, 1, n)
    scores = np.round(base + rng.normal(0, 0.7, (n_scorings, n)), 1)  # ties on purpose
    return truth, scores


def _brute_force_delong(truth, scores):
    """DeLong et al. (1988) structural components written out pair by pair."""
    x, y = scores[:, truth == 1], scores[:, truth == 0]
    psi = (x[:, :, None] > y[:, None, :]) + 0.5 * (x[:, :, None] == y[:, None, :])
    v10, v01 = psi.mean(axis=2), psi.mean(axis=1)
    m, n = x.shape[1], y.shape[1]
    s10 = (v10 - v10.mean(1, keepdims=True)) @ (v10 - v10.mean(1, keepdims=True)).T / (m - 1)
    s01 = (v01 - v01.mean(1, keepdims=True)) @ (v01 - v01.mean(1, keepdims=True)).T / (n - 1)
    return psi.mean(axis=(1, 2)), s10 / m + s01 / n


@pytest.mark.parametrize("seed", [0, 1])
def test_fast_delong_equals_brute_force_definition(seed):
    truth, scores = _binary_case(seed)
    aucs, cov = S.delong_covariance(truth, scores)
    ref_aucs, ref_cov = _brute_force_delong(truth, scores)
    np.testing.assert_allclose(aucs, ref_aucs, rtol=1e-12)
    np.testing.assert_allclose(aucs, [roc_auc_score(truth, s) for s in scores], rtol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, rtol=1e-10, atol=1e-15)


def test_delong_auc_ci_is_normal_interval_of_delong_se():
    truth, scores = _binary_case(2, n_scorings=1)
    res = S.delong_auc_ci(truth, scores[0], alpha=0.1)
    ref_auc, ref_cov = _brute_force_delong(truth, scores)
    se = np.sqrt(ref_cov[0, 0])
    assert res.auc == pytest.approx(ref_auc[0])
    assert res.se == pytest.approx(se)
    assert res.low == pytest.approx(ref_auc[0] - 1.6448536269514722 * se)
    assert res.high == pytest.approx(min(1.0, ref_auc[0] + 1.6448536269514722 * se))


def test_delong_ci_is_clipped_for_a_perfect_score():
    truth = np.array([0, 0, 0, 1, 1, 1])
    res = S.delong_auc_ci(truth, truth * 2.0)
    assert (res.auc, res.high) == (1.0, 1.0) and res.low <= 1.0


def test_delong_test_matches_brute_force_z():
    truth, scores = _binary_case(3, n_scorings=2)
    res = S.delong_test(truth, scores[0], scores[1])
    aucs, cov = _brute_force_delong(truth, scores)
    se = np.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    z = (aucs[0] - aucs[1]) / se
    assert res.difference == pytest.approx(aucs[0] - aucs[1])
    assert res.z == pytest.approx(z)
    assert res.p_value == pytest.approx(2 * sps.norm.sf(abs(z)))
    same = S.delong_test(truth, scores[0], scores[0] * 3 + 1)
    assert (same.difference, same.z, same.p_value) == (0.0, 0.0, 1.0)


def test_delong_rejects_one_class_truth():
    with pytest.raises(ValueError, match="needs both positive and negative cases"):
        S.delong_auc_ci([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="must hold 0/1"):
        S.delong_auc_ci([0, 2, 1], [0.1, 0.2, 0.3])


@pytest.mark.parametrize(("b", "c"), [(7, 2), (0, 5), (10, 10)], ids=["7-2", "0-5", "10-10"])
def test_mcnemar_exact_is_binomial(b, c):
    a_right = np.r_[np.ones(b), np.zeros(c), np.ones(20), np.zeros(4)].astype(bool)
    b_right = np.r_[np.zeros(b), np.ones(c), np.ones(20), np.zeros(4)].astype(bool)
    res = S.mcnemar_test(a_right, b_right)
    assert (res.b, res.c, res.method) == (b, c, "exact")
    assert res.p_value == pytest.approx(sps.binomtest(min(b, c), b + c, 0.5).pvalue)


def test_mcnemar_chi_square_with_continuity_correction():
    a_right = np.r_[np.ones(30), np.zeros(12)].astype(bool)
    res = S.mcnemar_test(a_right, ~a_right)
    assert (res.b, res.c, res.method) == (30, 12, "chi2")
    assert res.statistic == pytest.approx(17**2 / 42)  # (|30 - 12| - 1)^2 / (30 + 12)
    assert res.p_value == pytest.approx(sps.chi2.sf(17**2 / 42, 1))
    forced = S.mcnemar_test(a_right, ~a_right, exact=True)
    assert forced.method == "exact" and forced.statistic == 12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cohen_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 3, 80)
    b = np.where(rng.random(80) < 0.6, a, rng.integers(0, 3, 80))
    assert S.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert S.cohen_kappa(list("ab"), list("ab")) == pytest.approx(1.0)


def test_cohen_kappa_matches_sklearn_on_class_names_and_disjoint_labels():
    rng = np.random.default_rng(3)
    a = rng.choice(["SCC", "AC", "ASC"], 120)
    b = np.where(rng.random(120) < 0.5, a, rng.choice(["SCC", "AC", "ASC"], 120))
    assert S.cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    # two raters who never agree: p_o = 0, p_e = 0, kappa = 0
    assert S.cohen_kappa([0, 0, 0], [1, 1, 1]) == pytest.approx(0.0)


def test_cohen_kappa_by_hand():
    # 2x2 table [[20, 5], [10, 15]]: p_o = 35/50, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5, kappa = 0.4
    a = np.repeat([0, 0, 1, 1], [20, 5, 10, 15])
    b = np.repeat([0, 1, 0, 1], [20, 5, 10, 15])
    assert S.cohen_kappa(a, b) == pytest.approx(0.4)
    assert S.cohen_kappa(b, a) == pytest.approx(0.4)


def test_cohen_kappa_rejects_mismatched_labels():
    with pytest.raises(ValueError, match=r"labels_a \(3,\) and labels_b \(2,\)"):
        S.cohen_kappa([0, 1, 0], [0, 1])
    with pytest.raises(ValueError, match="non-empty"):
        S.cohen_kappa([], [])


def test_cohen_kappa_undefined_when_one_label():
    with pytest.warns(UserWarning, match="single label"):
        assert np.isnan(S.cohen_kappa([1, 1, 1], [1, 1, 1]))


# Wikipedia "Fleiss' kappa" worked example: 10 subjects, 14 raters, 5 categories.
FLEISS_COUNTS = np.array(
    [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
)


def test_fleiss_kappa_reproduces_the_worked_example():
    ratings = np.array([np.repeat(np.arange(1, 6), row) for row in FLEISS_COUNTS])
    # by hand: P_bar = mean((sum n_ij^2 - 14) / (14 * 13)) = 0.378;
    # p_j = (0.143, 0.200, 0.279, 0.150, 0.229), P_e = sum p_j^2 = 0.213
    p_i = ((FLEISS_COUNTS**2).sum(1) - 14) / 182
    p_j = FLEISS_COUNTS.sum(0) / 140
    hand = (p_i.mean() - (p_j**2).sum()) / (1 - (p_j**2).sum())
    assert round(p_i.mean(), 3) == 0.378 and round((p_j**2).sum(), 3) == 0.213
    assert S.fleiss_kappa(ratings) == pytest.approx(hand)
    assert round(S.fleiss_kappa(ratings), 3) == 0.210


def test_fleiss_kappa_perfect_agreement_and_errors():
    assert S.fleiss_kappa([["a", "a"], ["b", "b"], ["c", "c"]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2 raters"):
        S.fleiss_kappa([[1], [2]])
