"""The pieces the MRMC analyses share, against hand-built matrices and scipy's textbook intervals."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from core.statistics.mrmc.covariance import or_components, reader_components
from core.statistics.mrmc.design import estimate_foms, read_design
from core.statistics.mrmc.obuchowski_rockette import reader_mean_interval, safe_ratio


def test_random_readers_interval_without_case_covariance_is_the_one_sample_t_interval():
    foms = np.array([0.81, 0.86, 0.78, 0.90, 0.84])
    se, df, q = reader_mean_interval(
        foms, var=0.002, cov2=0.0, analysis="random_readers", alpha=0.05
    )
    low, high = sps.t.interval(0.95, foms.size - 1, loc=foms.mean(), scale=sps.sem(foms))
    assert se == pytest.approx(sps.sem(foms)) and df == pytest.approx(foms.size - 1)
    assert (foms.mean() - q * se, foms.mean() + q * se) == pytest.approx((low, high))


def test_random_readers_interval_adds_the_case_covariance():
    foms = np.array([0.81, 0.86, 0.78, 0.90])
    se, df, _ = reader_mean_interval(
        foms, var=0.002, cov2=0.0004, analysis="random_readers", alpha=0.05
    )
    ms_r = foms.var(ddof=1)
    assert se**2 == pytest.approx(ms_r / 4 + 0.0004)
    assert df == pytest.approx((ms_r + 4 * 0.0004) ** 2 / (ms_r**2 / 3))


def test_fixed_readers_interval_is_normal_with_var_and_cov2():
    foms = np.array([0.81, 0.86, 0.78])
    se, df, q = reader_mean_interval(
        foms, var=0.002, cov2=-0.001, analysis="fixed_readers", alpha=0.1
    )
    assert se == pytest.approx(np.sqrt(0.002 / 3))  # a negative Cov2 counts as 0
    assert df == np.inf and q == pytest.approx(sps.norm.ppf(0.95))


def test_components_average_the_right_cells():
    # 2 modalities x 2 readers, modality-major: cell (m, r) is index 2m + r
    cov = np.array(
        [
            [1.0, 3.0, 2.0, 4.0],
            [3.0, 1.0, 4.0, 2.0],
            [2.0, 4.0, 1.0, 3.0],
            [4.0, 2.0, 3.0, 1.0],
        ]
    )
    assert or_components(cov, 2, 2) == (1.0, 2.0, 3.0, 4.0)
    assert reader_components(cov[:2, :2]) == (1.0, 3.0)
    assert reader_components(np.array([[5.0]])) == (5.0, 0.0)


def test_safe_ratio_treats_zero_over_zero_as_zero():
    assert safe_ratio(0.0, 0.0) == 0.0
    assert safe_ratio(-1.0, 0.0) == -np.inf
    assert safe_ratio(1.0, 4.0) == 0.25


def _reads(readers):
    truth = [0, 1, 0, 1, 0, 1]
    return pd.DataFrame(
        [
            {"reader": r, "modality": "A", "case": c, "truth": t, "score": t + 0.1 * ((c + i) % 3)}
            for i, r in enumerate(readers)
            for c, t in enumerate(truth)
        ]
    )


def test_design_sorts_mixed_ids_as_text_and_keeps_one_truth_per_case():
    design = read_design(_reads([2, "b"]))
    assert design.readers == [2, "b"] and design.cases == list(range(6))
    assert design.truth.tolist() == [0, 1, 0, 1, 0, 1]
    assert design.cube("score").shape == (1, 2, 6)


def test_a_reference_reader_does_not_count_towards_random_readers():
    options = {
        "fom": "auc",
        "cov": "jackknife",
        "analysis": "random_readers",
        "n_boot": 2,
        "seed": 0,
    }
    est = estimate_foms(_reads(["r1", "r2"]), **options)
    assert est.theta.shape == (1, 2) and est.cov.shape == (2, 2)
    with pytest.raises(ValueError, match="at least 2 readers, got 1"):
        estimate_foms(_reads(["r1", "model"]), reference="model", **options)
