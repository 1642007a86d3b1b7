"""core.statistics.power against RJafroc 2.x's own test values for the Van Dyke data (its
dataset02), and the sample-size search against a plain scan."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from core.statistics import mrmc
from core.statistics.power import (
    VarianceComponents,
    cases_for_power,
    cases_table,
    power_given_jk,
    power_table,
)

VANDYKE = Path(__file__).parents[2] / "data" / "vandyke" / "vandyke_roc.csv"
EFFECT = -0.043800322  # RJafroc's test effect size: the pilot's observed difference


@pytest.fixture(scope="module")
def pilot():
    frame = pd.read_csv(VANDYKE).rename(columns={"treatment": "modality", "rating": "score"})
    return VarianceComponents.from_or_result(mrmc.or_analysis(frame))


# RJafroc tests/testthat/test-SsSampleSizeRoc.R: SsPowerGivenJK(dataset02, FOM = "Wilcoxon",
# method = "OR", effectSize = -0.043800322, J = 10, K = ...), tolerance 1e-8
@pytest.mark.parametrize(
    "analysis, n_cases, expected",
    [
        ("random", 165, 0.80541995),
        ("fixed_readers", 131, 0.80091813),
        ("fixed_cases", 53, 0.80496663),
    ],
    ids=["RRRC", "FRRC", "RRFC"],
)
def test_vandyke_power_as_rjafroc(pilot, analysis, n_cases, expected):
    got = power_given_jk(
        pilot, n_readers=10, n_cases=n_cases, effect_size=EFFECT, analysis=analysis
    )
    assert got.power == pytest.approx(expected, abs=1e-8)


def test_components_typed_in_equal_the_pilot(pilot):
    # RJafroc's EXAMPLE 4A: the same components typed in (VarTR, Cov1..3, Var, KStar = 114)
    typed = VarianceComponents(
        var_tr=0.00020040252,
        var=0.00080228827,
        cov1=0.00034661371,
        cov2=0.00034407483,
        cov3=0.00023902837,
        n_cases=114,
    )
    a = power_given_jk(pilot, n_readers=6, n_cases=251, effect_size=0.05)
    b = power_given_jk(typed, n_readers=6, n_cases=251, effect_size=0.05)
    assert a.power == pytest.approx(b.power, abs=1e-7)


def test_default_effect_is_the_pilots_observed_difference(pilot):
    # RJafroc: SsPowerGivenJK(dataset02, "Wilcoxon", J = 6, K = 111, method = "OR") = 0.5526116
    assert pilot.effect_size == pytest.approx(EFFECT, abs=1e-9)
    assert power_given_jk(pilot, n_readers=6, n_cases=111).power == pytest.approx(
        0.5526116, abs=5e-8
    )


def test_power_by_hand_from_the_2011_formulas(pilot):
    # Hillis, Obuchowski & Berbaum 2011, eq. 10, computed here step by step
    j, k, c = 7, 200, pilot
    s = c.n_cases / k
    den = c.var_tr + s * (c.var - c.cov1 + (j - 1) * (c.cov2 - c.cov3))
    ddf = den**2 / ((c.var_tr + s * (c.var - c.cov1 - (c.cov2 - c.cov3))) ** 2 / (j - 1))
    ncp = j * 0.05**2 / 2 / den
    expected = sps.ncf.sf(sps.f.ppf(0.95, 1, ddf), 1, ddf, ncp)
    assert power_given_jk(pilot, n_readers=j, n_cases=k, effect_size=0.05).power == pytest.approx(
        expected
    )


@pytest.mark.parametrize("analysis", ["random", "fixed_readers", "fixed_cases"])
def test_sample_size_is_the_smallest_k_reaching_the_target(pilot, analysis):
    found = cases_for_power(pilot, n_readers=10, effect_size=EFFECT, analysis=analysis)
    # independent truth: a plain scan from K = 2, as RJafroc's searchNumCasesOR
    scan = next(
        k
        for k in range(2, 2001)
        if power_given_jk(
            pilot, n_readers=10, n_cases=k, effect_size=EFFECT, analysis=analysis
        ).power
        >= 0.8
    )
    assert found.n_cases == scan and found.power >= 0.8


def test_sample_size_as_rjafroc(pilot):
    # RJafroc: SsSampleSizeKGivenJ(dataset02, J = 6, FOM = "Wilcoxon", method = "OR")$KRRRC = 251;
    # SsPowerTable(dataset02, "Wilcoxon") row J = 6: 251 cases, power 0.801
    found = cases_for_power(pilot, n_readers=6)
    assert found.n_cases == 251 and round(found.power, 3) == 0.801
    table = cases_table(pilot, readers=[3, 6])
    assert np.isnan(table.loc[0, "cases"])  # 3 readers never reach 0.8 (reader variance caps it)
    assert table.loc[1, "cases"] == 251


def test_unreachable_target_says_what_to_change(pilot):
    with pytest.raises(ValueError, match="3 readers do not reach power 0.8 .* add readers"):
        cases_for_power(pilot, n_readers=3)


def test_power_table_grid(pilot):
    grid = power_table(pilot, readers=[4, 8], cases=[50, 200], effect_size=0.05)
    assert grid.shape == (2, 2) and list(grid.index) == [4, 8] and list(grid.columns) == [50, 200]
    assert grid.loc[8, 200] > grid.loc[8, 50] and grid.loc[8, 200] > grid.loc[4, 200]
    assert grid.loc[4, 50] == power_given_jk(pilot, n_readers=4, n_cases=50, effect_size=0.05).power


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_readers": 1, "n_cases": 100}, "too few for random readers"),
        ({"n_readers": 5, "n_cases": 1}, "n_cases=1 is not allowed"),
        ({"n_readers": 5, "n_cases": 100, "effect_size": 0.0}, "effect_size=0.0 is not allowed"),
        ({"n_readers": 5, "n_cases": 100, "analysis": "mixed"}, "analysis='mixed' is not allowed"),
        ({"n_readers": 5, "n_cases": 100, "alpha": 1.5}, "alpha=1.5 is not allowed"),
    ],
    ids=["one-reader", "one-case", "zero-effect", "analysis", "alpha"],
)
def test_bad_inputs_are_named(pilot, kwargs, message):
    with pytest.raises(ValueError, match=message):
        power_given_jk(pilot, **kwargs)


def test_rjafroc_option_names_accepted(pilot):
    a = power_given_jk(pilot, n_readers=5, n_cases=90, analysis="FRRC")
    assert a.analysis == "fixed_readers" and "fixed readers" in a.summary()
