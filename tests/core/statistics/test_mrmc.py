"""core.statistics.mrmc against the published Van Dyke results, hand-built cases and 3-class reads."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from core.data.labels import CLASSES
from core.reader_study.simulate import PAPER_EXPERT_TABLES, simulate_reader
from core.statistics import metrics, mrmc

VANDYKE = Path(__file__).parents[2] / "data" / "vandyke" / "vandyke_roc.csv"


@pytest.fixture(scope="module")
def vandyke():
    frame = pd.read_csv(VANDYKE)
    return frame.rename(columns={"treatment": "modality", "rating": "score"})


@pytest.fixture(scope="module")
def rrrc(vandyke):
    return mrmc.or_analysis(vandyke)


# --------------------------------------------------------------------------- Van Dyke (published)


def test_vandyke_per_reader_aucs(rrrc):
    np.testing.assert_allclose(
        rrrc.foms[0], [0.919646, 0.858776, 0.903865, 0.973108, 0.829791], atol=5e-7
    )
    np.testing.assert_allclose(
        rrrc.foms[1], [0.947826, 0.905314, 0.921739, 0.999356, 0.929952], atol=5e-7
    )


def test_vandyke_random_readers_random_cases(rrrc):
    assert rrrc.modality_means[0] == pytest.approx(0.89703704, abs=5e-9)
    assert rrrc.modality_means[1] == pytest.approx(0.94083736, abs=5e-9)
    assert round(rrrc.statistic, 3) == 4.456
    assert (rrrc.df1, round(rrrc.ddf, 2)) == (1.0, 15.26)
    assert round(rrrc.p_value, 4) == 0.0517
    diff = rrrc.differences.iloc[0]
    assert round(diff["difference"], 5) == -0.04380
    assert (round(diff["ci_low"], 5), round(diff["ci_high"], 5)) == (-0.08796, 0.00036)
    assert diff["p_value"] == pytest.approx(rrrc.p_value)  # t^2 = F with one numerator df


def test_vandyke_variance_components(rrrc):
    assert float(f"{rrrc.var_error:.3e}") == 8.023e-4
    assert float(f"{rrrc.cov1:.3e}") == 3.466e-4
    assert float(f"{rrrc.cov2:.3e}") == 3.441e-4
    assert float(f"{rrrc.cov3:.3e}") == 2.390e-4
    # Var(R) and Var(T*R) as RJafroc prints them for this dataset (its dataset02)
    assert rrrc.var_R == pytest.approx(0.0015349993, rel=1e-6)
    assert rrrc.var_TR == pytest.approx(0.00020040252, rel=1e-6)


def test_vandyke_fixed_readers(vandyke):
    frrc = mrmc.or_analysis(vandyke, analysis="fixed_readers")
    assert mrmc.or_analysis(vandyke, readers="fixed").statistic == frrc.statistic
    assert round(frrc.statistic, 2) == 5.48
    assert round(frrc.p_value, 4) == 0.0193
    # single-modality CIs as printed by OR-DBM MRMC 2.51 (quoted in RJafroc's ORSummaryFRRC)
    ci = frrc.modality_ci.set_index("modality")
    np.testing.assert_allclose(ci["se"], [0.02428971, 0.01677632], atol=5e-9)
    np.testing.assert_allclose(ci["ci_low"], [0.84943008, 0.90795637], atol=5e-9)
    np.testing.assert_allclose(ci["ci_high"], [0.94464399, 0.97371835], atol=5e-9)
    np.testing.assert_allclose(ci["var_error"], [0.00101410, 0.00059047], atol=5e-9)
    np.testing.assert_allclose(ci["cov2"], [0.00048396, 0.00020419], atol=5e-9)


def test_summary_and_table(rrrc):
    text = rrrc.summary()
    assert "0: 0.897" in text and "1: 0.941" in text
    assert "-0.044" in text and "p = 0.0517" in text and "no significant" in text
    table = rrrc.to_frame()
    assert list(table["kind"]) == ["modality", "modality", "difference"]
    assert table.iloc[2]["estimate"] == pytest.approx(-0.0438003, abs=1e-7)
    assert table.iloc[0]["ci_low"] < rrrc.modality_means[0] < table.iloc[0]["ci_high"]


def _brute_auc(truth, score):
    """Pairwise Mann-Whitney AUC, the definition written out."""
    pos, neg = score[truth == 1], score[truth == 0]
    return float(((pos[:, None] > neg) + 0.5 * (pos[:, None] == neg)).mean())


def test_closed_form_jackknife_equals_leaving_each_case_out(vandyke):
    fast = mrmc.or_analysis(vandyke)
    slow = mrmc.or_analysis(vandyke, fom=_brute_auc)
    for name in ("var_error", "cov1", "cov2", "cov3", "statistic", "ddf", "p_value"):
        assert getattr(slow, name) == pytest.approx(getattr(fast, name), rel=1e-9), name


def test_delong_and_bootstrap_covariances_are_close_to_jackknife(vandyke, rrrc):
    delong = mrmc.or_analysis(vandyke, cov="delong")
    # jackknife and DeLong variances of the Wilcoxon AUC differ by O(1/K)
    assert delong.var_error == pytest.approx(rrrc.var_error, rel=0.03)
    assert delong.cov2 == pytest.approx(rrrc.cov2, rel=0.03)
    boot = mrmc.or_analysis(vandyke, cov="bootstrap", n_boot=200, seed=1)
    again = mrmc.or_analysis(vandyke, cov="bootstrap", n_boot=200, seed=1)
    assert boot.var_error == again.var_error
    assert boot.var_error == pytest.approx(rrrc.var_error, rel=0.25)
    np.testing.assert_allclose(boot.foms, rrrc.foms)


# --------------------------------------------------------------------------- hand-built cases


def _reads(scores: dict, truth):
    """scores: {(reader, modality): per-case scores} -> long reads."""
    rows = []
    for (reader, modality), values in scores.items():
        for case, (t, s) in enumerate(zip(truth, values, strict=True)):
            rows.append(
                {"reader": reader, "modality": modality, "case": case, "truth": t, "score": s}
            )
    return pd.DataFrame(rows)


def _noisy(truth, seed, noise=1.0):
    rng = np.random.default_rng(seed)
    return np.round(truth + rng.normal(0, noise, len(truth)), 1)


TRUTH = np.array([0, 1] * 15)


def test_a_reader_who_is_always_right_has_auc_one():
    reads = _reads(
        {("perfect", "A"): TRUTH * 5.0, ("other", "A"): _noisy(TRUTH, 1)}
        | {("perfect", "B"): TRUTH + 1.0, ("other", "B"): _noisy(TRUTH, 2)},
        TRUTH,
    )
    res = mrmc.or_analysis(reads)
    assert res.foms.loc["perfect", "A"] == 1.0 and res.foms.loc["perfect", "B"] == 1.0
    assert res.foms.loc["other", "A"] == pytest.approx(roc_auc_score(TRUTH, _noisy(TRUTH, 1)))


def test_identical_modalities_give_f_zero_and_no_difference():
    scores = {(r, "A"): _noisy(TRUTH, r) for r in range(3)}
    scores |= {(r, "B"): _noisy(TRUTH, r) for r in range(3)}
    for analysis in ("random_readers", "fixed_readers"):
        res = mrmc.or_analysis(_reads(scores, TRUTH), analysis=analysis)
        diff = res.differences.iloc[0]
        assert res.statistic == 0.0 and res.p_value == pytest.approx(1.0)
        assert diff["difference"] == 0.0 and diff["p_value"] == 1.0
        assert diff["ci_low"] == pytest.approx(0.0, abs=1e-12)


def test_a_clearly_better_modality_is_significant():
    scores = {(r, "good"): _noisy(TRUTH, r, 0.2) for r in range(4)}
    scores |= {(r, "poor"): _noisy(TRUTH, 10 + r, 1.5) for r in range(4)}
    res = mrmc.or_analysis(_reads(scores, TRUTH))
    assert res.p_value < 0.05 and res.differences.iloc[0]["ci_low"] > 0
    assert "a statistically significant" in res.summary()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda f: f.drop(columns="truth"), r"missing column\(s\) \['truth'\]"),
        (lambda f: f.iloc[1:], "not fully crossed"),
        (lambda f: f.assign(truth=np.where(f.index == 0, 1 - f["truth"], f["truth"])), "case 0"),
        (lambda f: pd.concat([f, f.iloc[:1]]), "read case 0 twice"),
    ],
    ids=["missing-column", "incomplete", "conflicting-truth", "duplicate"],
)
def test_bad_reads_are_named(change, match):
    reads = _reads({(r, m): _noisy(TRUTH, r) for r in range(2) for m in "AB"}, TRUTH)
    with pytest.raises(ValueError, match=match):
        mrmc.or_analysis(change(reads))


def test_bad_options_are_named():
    reads = _reads({(0, m): _noisy(TRUTH, 0) for m in "AB"}, TRUTH)
    with pytest.raises(ValueError, match="at least 2 readers"):
        mrmc.or_analysis(reads)
    assert mrmc.or_analysis(reads, analysis="fixed_readers").n_readers == 1
    with pytest.raises(ValueError, match="cov='boot'"):
        mrmc.or_analysis(reads, cov="boot", analysis="fixed_readers")
    with pytest.raises(ValueError, match="fom='kappa'"):
        mrmc.or_analysis(reads, fom="kappa", analysis="fixed_readers")


# --------------------------------------------------------------------------- 3-class reads


@pytest.fixture(scope="module")
def three_class():
    """Two simulated experts reproducing the paper's tables, reading unaided and aided."""
    truth = np.repeat([0, 1, 2], [487, 116, 38])
    cases = [f"P{i:04d}" for i in range(truth.size)]
    parts = []
    for arm, shift in (("unaided", 0), ("aided", 7)):
        for i, (name, table) in enumerate(PAPER_EXPERT_TABLES.items()):
            reads = simulate_reader(cases, truth, table, seed=shift + 10 * i)
            reads = reads.rename(columns={"case_id": "case"})
            reads["truth"] = reads["case"].map(
                dict(zip(cases, np.array(CLASSES)[truth], strict=True))
            )
            parts.append(reads.assign(reader=name, modality=arm))
    return pd.concat(parts, ignore_index=True), truth


def test_three_class_accuracy_and_sensitivity_match_the_tables(three_class):
    reads, _ = three_class
    acc = mrmc.or_analysis(reads, fom="accuracy")
    e1, e2 = PAPER_EXPERT_TABLES.values()
    hand = {name: np.trace(t) / 641 for name, t in PAPER_EXPERT_TABLES.items()}
    for name, value in hand.items():
        np.testing.assert_allclose(acc.foms.loc[name], [value, value])
    # jackknife variance of a proportion is p(1 - p) / (K - 1)
    expected = np.mean([p * (1 - p) / 640 for p in hand.values()])
    assert acc.var_error == pytest.approx(expected, rel=1e-10)
    sens = mrmc.or_analysis(reads, fom="sensitivity:ASC")
    assert sens.foms.loc["Expert 1 (simulated)", "aided"] == pytest.approx(e1[2, 2] / 38)
    assert sens.foms.loc["Expert 2 (simulated)", "unaided"] == pytest.approx(e2[2, 2] / 38)
    spec = mrmc.or_analysis(reads, fom="specificity:AC")
    assert spec.foms.loc["Expert 2 (simulated)", "aided"] == pytest.approx((525 - 1 - 2) / 525)


def test_three_class_auc_matches_core_metrics(three_class):
    reads, truth = three_class
    ovr = mrmc.or_analysis(reads, fom="auc:ASC")
    macro = mrmc.or_analysis(reads, fom="auc_macro", analysis="fixed_readers")
    one = reads[(reads["reader"] == "Expert 1 (simulated)") & (reads["modality"] == "aided")]
    one = one.sort_values("case")
    scores = one[["c_SCC", "c_AC", "c_ASC"]].to_numpy()
    auc = metrics.roc_auc_ovr(truth, scores)
    assert ovr.foms.loc["Expert 1 (simulated)", "aided"] == pytest.approx(auc[2])
    assert macro.foms.loc["Expert 1 (simulated)", "aided"] == pytest.approx(auc.mean())
    assert np.isfinite([ovr.statistic, ovr.p_value, macro.statistic]).all()


def test_truth_must_be_binary_for_plain_auc(three_class):
    reads, _ = three_class
    with pytest.raises(ValueError, match="auc:SCC"):
        mrmc.or_analysis(reads.assign(score=reads["c_SCC"]), fom="auc")
    with pytest.raises(ValueError, match="class 'XYZ' is not allowed: use one of SCC, AC, ASC"):
        mrmc.or_analysis(reads, fom="auc:XYZ")


def test_three_class_bootstrap_keeps_class_counts(three_class):
    reads, _ = three_class
    jack = mrmc.or_analysis(reads, fom="accuracy")
    boot = mrmc.or_analysis(reads, fom="accuracy", cov="bootstrap", n_boot=200, seed=0)
    # resampling within each truth class (as RJafroc) still estimates the same case variance
    assert boot.var_error == pytest.approx(jack.var_error, rel=0.3)


# --------------------------------------------------------------------------- model vs readers


@pytest.mark.parametrize("analysis", ["random_readers", "fixed_readers"])
def test_standalone_equals_or_with_the_model_as_every_readers_second_modality(vandyke, analysis):
    reads = vandyke[vandyke["modality"] == 1]
    model = vandyke[(vandyke["modality"] == 0) & (vandyke["reader"] == 0)][["case", "score"]]
    res = mrmc.standalone_vs_readers(reads, model, analysis=analysis)
    as_modality = pd.concat(
        [reads.assign(modality="readers")]
        + [
            model.assign(
                reader=r,
                modality="model",
                truth=model["case"].map(reads.groupby("case")["truth"].first()),
            )
            for r in range(5)
        ]
    )
    ref = mrmc.or_analysis(as_modality, analysis=analysis).differences.iloc[0]
    assert ref["modality_a"] == "model"
    assert res.difference == pytest.approx(-ref["difference"])
    assert res.se == pytest.approx(ref["se"])
    assert res.p_value == pytest.approx(ref["p_value"])
    assert (res.ci_low, res.ci_high) == pytest.approx((-ref["ci_high"], -ref["ci_low"]))
    assert res.model_fom == pytest.approx(0.919646, abs=5e-7)
    assert res.mean_reader_fom == pytest.approx(0.94083736, abs=5e-9)


def test_standalone_three_class_and_errors(three_class):
    reads, truth = three_class
    unaided = reads[reads["modality"] == "unaided"]
    model = unaided[unaided["reader"] == "Expert 2 (simulated)"][["case", "label"]]
    res = mrmc.standalone_vs_readers(reads, model, fom="accuracy", modality="unaided")
    assert res.model_fom == pytest.approx(621 / 641)
    assert res.difference == pytest.approx((601 / 641 - 621 / 641) / 2)
    assert "readers" in res.summary() and len(res.to_frame()) == 5
    with pytest.raises(ValueError, match="pick one with modality="):
        mrmc.standalone_vs_readers(reads, model, fom="accuracy")
    with pytest.raises(ValueError, match="no prediction for case"):
        mrmc.standalone_vs_readers(reads, model.iloc[1:], fom="accuracy", modality="unaided")


# --------------------------------------------------------------------------- iMRMC export


def _parse_imrmc(text):
    lines = text.splitlines()
    header = dict(line.split(": ") for line in lines if line[:3] in ("NR:", "N0:", "N1:", "NM:"))
    start = lines.index("BEGIN DATA:") + 1
    rows = [line.split(",") for line in lines[start:] if line]
    assert all(len(r) == 4 for r in rows)
    return header, rows


def test_imrmc_export_round_trips(vandyke, tmp_path):
    path = mrmc.write_imrmc(vandyke, tmp_path / "vandyke.imrmc")
    header, rows = _parse_imrmc(path.read_text())
    assert header == {"NR": "5", "N0": "69", "N1": "45", "NM": "2"}
    truth = {r[1]: int(r[3]) for r in rows if r[0] == "-1"}
    reads = pd.DataFrame(
        [r for r in rows if r[0] != "-1"], columns=["reader", "case", "modality", "score"]
    )
    assert len(truth) == 114 and len(reads) == 1140
    back = reads.astype({"reader": int, "case": int, "modality": int, "score": float})
    back["truth"] = back["case"].astype(str).map(truth)
    merged = vandyke.merge(back, on=["reader", "case", "modality"], suffixes=("", "_back"))
    assert len(merged) == 1140
    assert (merged["score"] == merged["score_back"]).all()
    assert (merged["truth"] == merged["truth_back"]).all()


def test_imrmc_three_class_export_needs_a_class(three_class):
    reads, truth = three_class
    with pytest.raises(ValueError, match="positive_class"):
        mrmc.to_imrmc(reads)
    header, rows = _parse_imrmc(mrmc.to_imrmc(reads, positive_class="ASC"))
    assert header["N1"] == "38" and header["N0"] == str(641 - 38)
    with pytest.raises(ValueError, match="without commas"):
        renamed = reads.replace({"reader": {"Expert 1 (simulated)": "a,b"}})
        mrmc.to_imrmc(renamed, positive_class="ASC")


def test_one_modality_gives_its_mean_with_ci_and_no_test(vandyke, rrrc):
    one = mrmc.or_analysis(vandyke[vandyke["modality"] == 0])
    assert np.isnan(one.statistic) and np.isnan(one.p_value) and one.differences.empty
    ci = one.modality_ci.iloc[0]
    assert ci["estimate"] == pytest.approx(0.89703704, abs=5e-9)
    # Hillis' single-modality interval: se^2 = MS_R / J + max(Cov2_i, 0)
    ms_r = rrrc.foms[0].var(ddof=1)
    assert ci["se"] == pytest.approx(np.sqrt(ms_r / 5 + max(ci["cov2"], 0)))
    assert ci["cov2"] == pytest.approx(0.00048396, abs=5e-9)
    assert one.summary().endswith("0: 0.897.")


def test_a_missing_score_is_named(vandyke):
    holes = vandyke.assign(score=vandyke["score"].where(vandyke.index != 5))
    with pytest.raises(ValueError, match="column 'score' is missing for reader 0, modality 0"):
        mrmc.or_analysis(holes)
