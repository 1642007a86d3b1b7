"""core.statistics.metrics against hand-computed values, scikit-learn as an oracle, and invariances."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from core.statistics import metrics as M
from core.statistics.stats import delong_auc_ci

# The paper's published confusion table of the model: rows true SCC/AC/ASC, columns predicted.
PAPER_CM = np.array([[467, 12, 8], [10, 96, 10], [3, 2, 33]])
N = 641  # 487 SCC + 116 AC + 38 ASC


def _labels_from_cm(cm):
    k = cm.shape[0]
    true = np.repeat(np.repeat(np.arange(k), k), cm.ravel())
    pred = np.repeat(np.tile(np.arange(k), k), cm.ravel())
    return true, pred


@pytest.fixture(scope="module")
def paper():
    return _labels_from_cm(PAPER_CM)


def _random_case(seed, n=200, k=3):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.6, true, rng.integers(0, k, n))
    # small integers make ties on purpose; rows sum to 1 as scikit-learn's multiclass AUC wants
    raw = rng.integers(1, 5, size=(n, k)).astype(float)
    raw[np.arange(n), true] += rng.integers(0, 3, n)
    score = raw / raw.sum(axis=1, keepdims=True)
    return true, pred, score


# Hand computation from the table. Column sums (predicted): SCC 480, AC 110, ASC 51.
# TN = N - row sum - column sum + TP: SCC 641-487-480+467 = 141 of 154 negatives;
# AC 641-116-110+96 = 511 of 525; ASC 641-38-51+33 = 585 of 603.
HAND = {
    "precision": [467 / 480, 96 / 110, 33 / 51],
    "sensitivity": [467 / 487, 96 / 116, 33 / 38],
    "specificity": [141 / 154, 511 / 525, 585 / 603],
    # F1 = 2TP / (2TP + FP + FN): FP = 13, 14, 18; FN = 20, 20, 5
    "f1": [934 / 967, 192 / 226, 66 / 89],
    "accuracy": [(467 + 141) / N, (96 + 511) / N, (33 + 585) / N],
    "error_rate": [1 - 608 / N, 1 - 607 / N, 1 - 618 / N],
}
FUNCS = {
    "precision": M.precision_score,
    "sensitivity": M.sensitivity_score,
    "specificity": M.specificity_score,
    "f1": M.f1_score,
    "accuracy": M.accuracy_score,
    "error_rate": M.error_rate,
}
SUPPORT = np.array([487, 116, 38])


def test_confusion_matrix_reproduces_the_paper_table(paper):
    np.testing.assert_array_equal(M.confusion_matrix(*paper), PAPER_CM)


@pytest.mark.parametrize("name", list(HAND), ids=list(HAND))
def test_per_class_and_averages_match_hand_computation(paper, name):
    hand = np.array(HAND[name])
    np.testing.assert_allclose(FUNCS[name](*paper, average=None), hand, rtol=1e-12)
    assert FUNCS[name](*paper, average="macro") == pytest.approx(hand.mean(), rel=1e-12)
    assert FUNCS[name](*paper, average="weighted") == pytest.approx(
        (hand * SUPPORT).sum() / N, rel=1e-12
    )


def test_overall_accuracy_is_trace_over_n(paper):
    assert M.accuracy_score(*paper) == pytest.approx(596 / 641)
    assert M.error_rate(*paper) == pytest.approx(45 / 641)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scores_agree_with_sklearn(seed):
    true, pred, score = _random_case(seed)
    labels = [0, 1, 2]
    np.testing.assert_array_equal(
        M.confusion_matrix(true, pred), skm.confusion_matrix(true, pred, labels=labels)
    )
    for average in (None, "macro", "weighted"):
        np.testing.assert_allclose(
            M.precision_score(true, pred, average=average),
            skm.precision_score(true, pred, labels=labels, average=average),
        )
        np.testing.assert_allclose(
            M.sensitivity_score(true, pred, average=average),
            skm.recall_score(true, pred, labels=labels, average=average),
        )
        np.testing.assert_allclose(
            M.f1_score(true, pred, average=average),
            skm.f1_score(true, pred, labels=labels, average=average),
        )
    spec = [skm.recall_score(true != c, pred != c) for c in labels]
    np.testing.assert_allclose(M.specificity_score(true, pred), spec)
    auc = [skm.roc_auc_score(true == c, score[:, c]) for c in labels]
    np.testing.assert_allclose(M.roc_auc_ovr(true, score), auc)
    np.testing.assert_allclose(
        M.roc_auc_ovr(true, score, average="macro"),
        skm.roc_auc_score(true, score, multi_class="ovr", average="macro"),
    )
    np.testing.assert_allclose(
        M.roc_auc_ovr(true, score, average="weighted"),
        skm.roc_auc_score(true, score, multi_class="ovr", average="weighted"),
    )


def test_auc_invariant_to_monotone_transform_and_case_order():
    true, _, score = _random_case(3)
    base = M.roc_auc_ovr(true, score)
    np.testing.assert_allclose(M.roc_auc_ovr(true, np.exp(3 * score) + 7), base)
    perm = np.random.default_rng(9).permutation(true.size)
    np.testing.assert_allclose(M.roc_auc_ovr(true[perm], score[perm]), base)


@pytest.mark.parametrize("c", [0, 1, 2])
def test_roc_curve_matches_sklearn(c):
    true, _, score = _random_case(4)
    fpr, tpr, thr = M.roc_curve_ovr(true, score, c)
    sk_fpr, sk_tpr, sk_thr = skm.roc_curve(true == c, score[:, c], drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr, sk_thr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(M.roc_auc_ovr(true, score)[c])


def test_macro_roc_curve_averages_interpolated_class_curves():
    true, _, score = _random_case(5)
    fpr, tpr = M.macro_roc_curve(true, score)
    curves = [skm.roc_curve(true == c, score[:, c], drop_intermediate=False)[:2] for c in range(3)]
    grid = np.unique(np.concatenate([f for f, _ in curves]))
    expected = np.mean([np.interp(grid, f, t) for f, t in curves], axis=0)
    np.testing.assert_allclose(fpr[1:], grid)
    np.testing.assert_allclose(tpr[1:], expected, atol=1e-12)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)


def test_absent_class_is_nan_with_warning_and_skipped_by_averages():
    true = np.array([0, 0, 1, 1, 0, 1])
    pred = np.array([0, 1, 1, 1, 0, 0])
    score = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1]] * 2)
    with pytest.warns(M.UndefinedMetricWarning, match="ASC"):
        sens = M.sensitivity_score(true, pred)
    assert np.isnan(sens[2]) and sens[0] == pytest.approx(2 / 3)
    with pytest.warns(M.UndefinedMetricWarning, match="ASC"):
        assert M.sensitivity_score(true, pred, average="macro") == pytest.approx(
            (2 / 3 + 2 / 3) / 2
        )
    with pytest.warns(M.UndefinedMetricWarning, match="AUC is undefined for class ASC"):
        auc = M.roc_auc_ovr(true, score)
    assert np.isnan(auc[2]) and not np.isnan(auc[:2]).any()
    with pytest.warns(M.UndefinedMetricWarning):
        assert M.precision_score(true, pred, zero_division=0.0)[2] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y_true": [0, 1, 3], "y_pred": [0, 1, 2]}, "label 3 outside the allowed range 0..2"),
        ({"y_true": [0, 1], "y_pred": [0, 1, 2]}, "y_true has 2 cases but y_pred has 3"),
        ({"y_true": ["SCC"], "y_pred": [0]}, "parse_label"),
        ({"y_true": [0, 1], "y_pred": [0, 1], "average": "micro"}, "average='micro'"),
        ({"y_true": [], "y_pred": []}, "y_true is empty"),
    ],
    ids=["out-of-range", "length", "strings", "average", "empty"],
)
def test_errors_name_the_value_and_what_is_allowed(kwargs, match):
    with pytest.raises(ValueError, match=match):
        M.precision_score(**kwargs)


def test_score_shape_errors():
    with pytest.raises(ValueError, match="y_score must be 2-D"):
        M.roc_auc_ovr([0, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="class_index=3"):
        M.roc_curve_ovr([0, 1, 2], np.eye(3), 3)


def test_classification_table_point_values_match_the_functions(paper):
    true, pred = paper
    table = M.classification_table(true, pred, ci=False)
    assert list(table.columns) == ["scope", "metric", "value", "ci_low", "ci_high"]
    got = table.set_index(["scope", "metric"])["value"]
    for name, hand in HAND.items():
        for c, scope in enumerate(("SCC", "AC", "ASC")):
            assert got[(scope, name)] == pytest.approx(hand[c])
        assert got[("macro", name)] == pytest.approx(np.mean(hand))
    assert got[("overall", "accuracy")] == pytest.approx(596 / 641)
    assert table[["ci_low", "ci_high"]].isna().all().all()
    assert "auc" not in set(table["metric"])


def _naive_bootstrap(true, pred, score, n_boot, seed):
    """The obvious loop: same draws as the vectorised code, metrics from scikit-learn."""
    draws = np.random.default_rng(seed).integers(0, true.size, size=(n_boot, true.size))
    rows = []
    for idx in draws:
        t, p, s = true[idx], pred[idx], score[idx]
        rows.append(
            {
                ("AC", "precision"): skm.precision_score(t == 1, p == 1),
                ("ASC", "sensitivity"): skm.recall_score(t == 2, p == 2),
                ("SCC", "specificity"): skm.recall_score(t != 0, p != 0),
                ("weighted", "f1"): skm.f1_score(t, p, labels=[0, 1, 2], average="weighted"),
                ("overall", "accuracy"): skm.accuracy_score(t, p),
                ("macro", "auc"): skm.roc_auc_score(t, s, multi_class="ovr", average="macro"),
            }
        )
    return pd.DataFrame(rows)


def test_vectorised_bootstrap_equals_naive_loop():
    true, pred, score = _random_case(6, n=120)
    table = M.classification_table(true, pred, score, n_boot=60, seed=11)
    got = table.set_index(["scope", "metric"])
    naive = _naive_bootstrap(true, pred, score, 60, 11)
    for key in naive.columns:
        low, high = np.quantile(naive[key], [0.025, 0.975])
        assert got.loc[key, "ci_low"] == pytest.approx(low, abs=1e-12), key
        assert got.loc[key, "ci_high"] == pytest.approx(high, abs=1e-12), key


def test_per_class_auc_ci_is_delong_and_ci_brackets_value():
    true, pred, score = _random_case(7)
    table = M.classification_table(true, pred, score, n_boot=200).set_index(["scope", "metric"])
    for c, scope in enumerate(("SCC", "AC", "ASC")):
        ref = delong_auc_ci(true == c, score[:, c])
        assert table.loc[(scope, "auc"), "ci_low"] == pytest.approx(ref.low)
        assert table.loc[(scope, "auc"), "ci_high"] == pytest.approx(ref.high)
    defined = table.dropna()
    assert (
        (defined["ci_low"] <= defined["value"]) & (defined["value"] <= defined["ci_high"])
    ).all()


def test_bootstrap_is_seeded():
    true, pred, score = _random_case(8, n=80)
    a = M.classification_table(true, pred, score, n_boot=100, seed=1)
    b = M.classification_table(true, pred, score, n_boot=100, seed=1)
    c = M.classification_table(true, pred, score, n_boot=100, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a["ci_low"].equals(c["ci_low"])


def test_grouped_bootstrap_resamples_patients_not_rows():
    true, pred, score = _random_case(9, n=90)
    plain = M.classification_table(true, pred, score, n_boot=100, seed=3)
    # every patient contributes two identical rows: resampling patients must give the same table
    twice = np.repeat(np.arange(true.size), 2)
    grouped = M.classification_table(
        true[twice], pred[twice], score[twice], n_boot=100, seed=3, groups=twice
    )
    boot = ~((plain["scope"].isin(["SCC", "AC", "ASC"])) & (plain["metric"] == "auc"))
    pd.testing.assert_frame_equal(plain[boot], grouped[boot])
    rows = M.classification_table(true[twice], pred[twice], score[twice], n_boot=100, seed=3)
    assert (rows["ci_high"] - rows["ci_low"])[boot].mean() < (plain["ci_high"] - plain["ci_low"])[
        boot
    ].mean()


@pytest.mark.parametrize("slices", [3, 8])
def test_every_image_level_auc_ci_is_about_as_wide_as_the_case_level_one(slices):
    true, pred, score = _random_case(11, n=150)
    cases = M.classification_table(true, pred, score, n_boot=400, seed=5)
    rows = np.repeat(np.arange(true.size), slices)  # identical slices per patient
    images = M.classification_table(
        true[rows], pred[rows], score[rows], n_boot=400, seed=5, groups=rows
    )
    auc = cases["metric"] == "auc"
    assert list(cases.loc[auc, "scope"]) == ["SCC", "AC", "ASC", "macro", "weighted"]
    case_width = (cases["ci_high"] - cases["ci_low"])[auc].to_numpy()
    image_width = (images["ci_high"] - images["ci_low"])[auc].to_numpy()
    # DeLong (cases) and the patient bootstrap (images) agree to within resampling noise; a row
    # DeLong on images would be sqrt(slices) too narrow
    np.testing.assert_allclose(image_width, case_width, rtol=0.25)
    assert (image_width > case_width / np.sqrt(slices) * 1.5).all()


@pytest.mark.parametrize("ties", ["few levels", "no ties", "some ties"])
def test_bootstrap_auc_bounds_are_those_of_each_resample_written_out(ties):
    rng = np.random.default_rng(4)
    n = 120
    true = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.6, true, rng.integers(0, 3, n))
    score = rng.dirichlet([1, 1, 1], n)
    if ties == "few levels":
        score = np.round(score, 1)
    elif ties == "some ties":
        score[::9] = score[1::9][: len(score[::9])]  # a tenth of the cases share a score
    groups = np.arange(n)  # per-class AUC bounds come from the bootstrap, not DeLong
    table = M.classification_table(true, pred, score, n_boot=60, seed=2, groups=groups)
    weights = np.concatenate(list(M.weight_chunks(n, 60, 2, groups))).astype(int)
    written_out = np.array(
        [M.roc_auc_ovr(np.repeat(true, w), np.repeat(score, w, axis=0)) for w in weights]
    )
    got = table.set_index(["scope", "metric"])
    for c, scope in enumerate(["SCC", "AC", "ASC"]):
        low, high = np.nanquantile(written_out[:, c], [0.025, 0.975])
        assert got.loc[(scope, "auc"), "ci_low"] == pytest.approx(low, abs=1e-12)
        assert got.loc[(scope, "auc"), "ci_high"] == pytest.approx(high, abs=1e-12)


def test_ci_methods_say_how_each_interval_was_made():
    assert "DeLong" in M.ci_methods(grouped=False)
    assert "DeLong" not in M.ci_methods(grouped=True)
    assert "over patients" in M.ci_methods(grouped=True, n_boot=200)


def test_table_with_absent_class_warns_and_keeps_going():
    true = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    pred = np.array([0, 1, 1, 1, 0, 0, 0, 1])
    score = np.tile([[0.6, 0.3, 0.1], [0.3, 0.6, 0.1]], (4, 1))
    with pytest.warns(M.UndefinedMetricWarning):
        table = M.classification_table(true, pred, score, n_boot=50)
    got = table.set_index(["scope", "metric"])
    assert np.isnan(got.loc[("ASC", "auc"), "value"])
    assert np.isnan(got.loc[("ASC", "sensitivity"), "value"])
    assert got.loc[("macro", "sensitivity"), "value"] == pytest.approx((3 / 4 + 3 / 4) / 2)


def test_bootstrap_of_641_cases_is_vectorised(paper):
    # not a timing assertion: the bootstrap must not call a per-resample Python metric
    true, pred = paper
    score = np.random.default_rng(0).random((N, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = M.classification_table(true, pred, score, n_boot=1000)
    assert table["ci_low"].notna().all()


def test_per_fold_summary_counts_undefined_folds():
    long = pd.DataFrame(
        {
            "fold": [0, 1, 2, 0, 1, 2],
            "scope": ["ASC"] * 6,
            "metric": ["sensitivity"] * 3 + ["precision"] * 3,
            "value": [0.5, np.nan, 1.0, 0.2, 0.4, 0.9],
        }
    )
    out = M.per_fold_summary(long).set_index(["scope", "metric"])
    assert out.loc[("ASC", "sensitivity"), "mean"] == pytest.approx(0.75)
    assert out.loc[("ASC", "sensitivity"), "sd"] == pytest.approx(np.std([0.5, 1.0], ddof=1))
    assert out.loc[("ASC", "sensitivity"), "n_undefined"] == 1
    assert out.loc[("ASC", "precision"), "n_folds"] == 3
    wide = pd.DataFrame({"fold": [0, 1], "auc": [0.8, 0.9], "accuracy": [np.nan, 0.7]})
    out = M.per_fold_summary(wide).set_index("metric")
    assert out.loc["auc", "mean"] == pytest.approx(0.85)
    assert out.loc["accuracy", "n_undefined"] == 1
    assert "fold" not in out.index
