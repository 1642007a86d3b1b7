"""Non-inferiority tests whose conclusion flips at the margin, and the split-plot analysis
against an independent computation (brute-force AUCs and jackknife, the OR expected mean squares
written out with the count of reader pairs that share cases)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from sklearn.metrics import roc_auc_score

from core.statistics import mrmc
from core.statistics.mrmc.noninferiority import (
    modality_noninferiority,
    model_noninferiority,
    noninferiority_test,
)
from core.statistics.mrmc.split_plot import reader_groups, split_plot_analysis

VANDYKE = Path(__file__).parents[2] / "data" / "vandyke" / "vandyke_roc.csv"


@pytest.fixture(scope="module")
def vandyke():
    return pd.read_csv(VANDYKE).rename(columns={"treatment": "modality", "rating": "score"})


# --------------------------------------------------------------------------- non-inferiority


@pytest.mark.parametrize(
    "df, bound",
    [(np.inf, -0.02 - 1.6448536269514722 * 0.01), (10, -0.02 - 1.8124611228107341 * 0.01)],
    ids=["z", "t10"],
)
def test_conclusion_flips_at_the_margin(df, bound):
    # hand-built: difference -0.02 with se 0.01; the one-sided 95% bound is -0.02 - q * 0.01
    wide = noninferiority_test(
        -0.02, 0.01, df, margin=-bound + 1e-6, new="aided", reference="unaided"
    )
    narrow = noninferiority_test(
        -0.02, 0.01, df, margin=-bound - 1e-6, new="aided", reference="unaided"
    )
    assert wide.non_inferior and not narrow.non_inferior
    assert wide.lower_bound == pytest.approx(bound)
    assert "aided is non-inferior to unaided" in wide.summary()
    assert "non-inferiority of aided to unaided is not shown" in narrow.summary()
    assert f"margin {-bound + 1e-6:.3f}" in wide.summary()
    # at the margin itself the one-sided p-value is alpha
    exact = noninferiority_test(-0.02, 0.01, df, margin=-bound)
    assert exact.p_value == pytest.approx(0.05)


def test_a_better_new_reading_is_non_inferior_at_any_margin():
    got = noninferiority_test(0.03, 0.01, np.inf, margin=0.001)
    assert got.non_inferior and got.p_value == pytest.approx(sps.norm.sf(0.031 / 0.01))


def test_aided_vs_unaided_flips_at_the_margin(vandyke):
    result = mrmc.or_analysis(vandyke)  # modality 0 is 0.044 worse than modality 1
    d = result.modality_means[0] - result.modality_means[1]
    se = result.differences["se"].iloc[0]
    threshold = -(d - sps.t.ppf(0.95, result.ddf) * se)
    yes = modality_noninferiority(result, new=0, reference=1, margin=threshold + 1e-6)
    no = modality_noninferiority(result, new=0, reference=1, margin=threshold - 1e-6)
    assert yes.non_inferior and not no.non_inferior
    assert yes.df == result.ddf and yes.difference == pytest.approx(d)
    with pytest.raises(ValueError, match="new=7 is not a modality"):
        modality_noninferiority(result, new=7, reference=1, margin=0.05)


def test_model_vs_readers_flips_at_the_margin(vandyke):
    one = vandyke[vandyke["modality"] == 0]
    readers = one[one["reader"] != 0]
    model = one[one["reader"] == 0][["case", "score"]]  # reader 0 plays the model
    result = mrmc.standalone_vs_readers(readers, model)
    model_minus_readers = -result.difference
    threshold = -(model_minus_readers - sps.t.ppf(0.95, result.df) * result.se)
    yes = model_noninferiority(result, margin=threshold + 1e-6)
    no = model_noninferiority(result, margin=threshold - 1e-6)
    assert yes.non_inferior and not no.non_inferior
    assert "model is non-inferior to readers" in yes.summary()
    assert model_noninferiority(result, margin=0.05, new="readers").difference == result.difference


@pytest.mark.parametrize("margin", [0, -0.05, np.nan], ids=["zero", "negative", "nan"])
def test_margin_must_be_positive(margin):
    with pytest.raises(ValueError, match="margin=.* is not allowed"):
        noninferiority_test(0.0, 0.01, np.inf, margin=margin)


# --------------------------------------------------------------------------- split-plot


def _split(frame):
    """Readers 0 and 1 read the odd cases, readers 2, 3 and 4 the even ones."""
    odd = frame["case"] % 2 == 1
    return frame[((frame["reader"] < 2) & odd) | ((frame["reader"] >= 2) & ~odd)]


def _independent_split_plot(frame, alpha=0.05):
    """The OR split-plot analysis written out: AUCs by scikit-learn, jackknife by a loop,
    E[MS] with P = the number of ordered reader pairs that share cases."""
    groups = [[0, 1], [2, 3, 4]]
    readers = [r for g in groups for r in g]
    theta, jack = {}, {}
    for g in groups:
        sub = frame[frame["reader"].isin(g)]
        cases = sorted(set(sub["case"]))
        truth = sub.drop_duplicates("case").set_index("case")["truth"].reindex(cases).to_numpy()
        for m in (0, 1):
            for r in g:
                s = sub[(sub["reader"] == r) & (sub["modality"] == m)].set_index("case")["score"]
                s = s.reindex(cases).to_numpy()
                theta[m, r] = roc_auc_score(truth, s)
                keep = ~np.eye(len(cases), dtype=bool)
                jack[m, r] = np.array([roc_auc_score(truth[k], s[k]) for k in keep])

    def cov(a, b):
        k = len(jack[a])
        return np.cov(jack[a], jack[b])[0, 1] * (k - 1) ** 2 / k

    j = len(readers)
    var = np.mean([cov((m, r), (m, r)) for m in (0, 1) for r in readers])
    cov1 = np.mean([cov((0, r), (1, r)) for r in readers])
    same = [(a, b) for g in groups for a in g for b in g if a != b]
    cov2 = np.mean([cov((m, a), (m, b)) for m in (0, 1) for a, b in same])
    cov3 = np.mean([cov((0, a), (1, b)) for a, b in same])
    th = np.array([[theta[m, r] for r in readers] for m in (0, 1)])
    grand = th.mean()
    ms_t = j * ((th.mean(axis=1) - grand) ** 2).sum()
    resid = th - th.mean(axis=1, keepdims=True) - th.mean(axis=0, keepdims=True) + grand
    ms_tr = (resid**2).sum() / (j - 1)
    den = ms_tr + len(same) / (j - 1) * max(cov2 - cov3, 0)
    ddf = den**2 / (ms_tr**2 / (j - 1))
    d = th[0].mean() - th[1].mean()
    half = sps.t.ppf(1 - alpha / 2, ddf) * np.sqrt(2 * den / j)
    return ms_t / den, ddf, sps.f.sf(ms_t / den, 1, ddf), d - half, d + half, var, cov1


def test_split_plot_equals_the_independent_computation(vandyke):
    reads = _split(vandyke)
    got = split_plot_analysis(reads)
    f, ddf, p, low, high, var, cov1 = _independent_split_plot(reads)
    assert got.statistic == pytest.approx(f, rel=1e-9)
    assert got.ddf == pytest.approx(ddf, rel=1e-9)
    assert got.p_value == pytest.approx(p, rel=1e-9)
    row = got.differences.iloc[0]
    assert (row["ci_low"], row["ci_high"]) == (pytest.approx(low), pytest.approx(high))
    assert got.var_error == pytest.approx(var) and got.cov1 == pytest.approx(cov1)
    assert got.n_cases == 114 and got.n_readers == 5


def test_split_plot_of_a_crossed_design_is_the_crossed_analysis(vandyke):
    crossed = mrmc.or_analysis(vandyke)
    one_group = split_plot_analysis(vandyke)
    assert one_group.statistic == pytest.approx(crossed.statistic)
    assert one_group.ddf == pytest.approx(crossed.ddf)
    pd.testing.assert_frame_equal(one_group.modality_ci, crossed.modality_ci)


def test_split_plot_uses_every_read_where_the_crossed_subset_has_none(vandyke):
    reads = _split(vandyke)
    assert reader_groups(reads) == [[0, 1], [2, 3, 4]]
    with pytest.raises(ValueError, match="not fully crossed"):
        mrmc.or_analysis(reads)


def test_overlapping_groups_are_refused(vandyke):
    reads = vandyke[(vandyke["reader"] < 2) | (vandyke["case"] > 50)]
    with pytest.raises(ValueError, match="neither fully crossed nor split-plot"):
        split_plot_analysis(reads)


def test_imrmc_round_trip_gives_the_same_analysis(vandyke):
    back = mrmc.read_imrmc(mrmc.to_imrmc(vandyke))
    assert len(back) == len(vandyke) and set(back["truth"]) == {0, 1}
    assert mrmc.or_analysis(back).statistic == pytest.approx(mrmc.or_analysis(vandyke).statistic)
    with pytest.raises(ValueError, match="no 'BEGIN DATA:' line"):
        mrmc.read_imrmc("NR: 5\n")
    with pytest.raises(ValueError, match="line 3: expected 4"):
        mrmc.read_imrmc("x\nBEGIN DATA:\n1,2\n")
