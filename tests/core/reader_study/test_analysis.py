"""The reader-study analysis tables against a 6-case, 2-reader example computed by hand, and
against core.statistics.metrics / stats on the same frames.

The example (S = SCC, A = AC, X = ASC; a tick where the rater is right):

    case    truth   reader A   reader B   model
    K1      S       S  ok      S  ok      S  ok
    K2      S       A          S  ok      S  ok
    K3      A       A  ok      S          A  ok
    K4      A       A  ok      A  ok      S
    K5      X       X  ok      A          X  ok
    K6      X       S          X  ok      X  ok
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.data.labels import CLASSES
from core.reader_study import analysis
from core.reader_study.mrmc_inputs import mrmc_reads
from core.reader_study.study_data import (
    MODEL,
    SCORE_COLUMNS,
    StudyData,
    model_seconds_per_case,
    raters,
    tidy_reads,
)
from core.statistics import metrics, stats

CASES = ["K1", "K2", "K3", "K4", "K5", "K6"]
TRUTH = ["SCC", "SCC", "AC", "AC", "ASC", "ASC"]
LABELS = {
    "A": ["SCC", "AC", "AC", "AC", "ASC", "SCC"],
    "B": ["SCC", "SCC", "SCC", "AC", "AC", "ASC"],
    MODEL: ["SCC", "SCC", "AC", "SCC", "ASC", "ASC"],
}
SECONDS = {"A": [10, 20, 30, 40, 50, 60], "B": [5, 5, 5, 5, 5, 100]}


def _scores(labels: list[str]) -> dict[str, list[float]]:
    """Confidences that favour each label (0.8 on it, 0.1 elsewhere)."""
    return {f"c_{c}": [0.8 if x == c else 0.1 for x in labels] for c in CLASSES}


def _rater(name: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"case_id": CASES, "truth": TRUTH, "label": LABELS[name], **_scores(LABELS[name])}
    )


def _reads(arm: str = "unaided", readers=("A", "B")) -> pd.DataFrame:
    """tidy_reads-shaped reads of the example readers."""
    frames = []
    for r, name in enumerate(readers):
        frame = _rater(name).assign(
            reader=name, reader_id=r + 1, simulated=False, arm=arm, seconds=SECONDS[name]
        )
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def data() -> StudyData:
    model = _rater(MODEL)
    study = {"arms": ("unaided",), "model_run_id": "r1"}
    return StudyData(study, _reads(), model, model_seconds_per_case=0.02)


@pytest.fixture
def named(data) -> dict[str, pd.DataFrame]:
    return raters(data, "unaided")


def test_raters_put_the_model_first_on_the_cases_the_arm_has_read(data):
    extra = pd.DataFrame({"case_id": ["K9"], "truth": ["SCC"], "label": ["SCC"]})
    data.model = pd.concat([data.model, extra.assign(**{c: 0.5 for c in SCORE_COLUMNS})])
    named = raters(data, "unaided")
    assert list(named) == [MODEL, "A", "B"]
    assert named[MODEL]["case_id"].tolist() == CASES  # K9 was read by nobody
    assert "reader" not in named["A"].columns and "arm" not in named["A"].columns
    assert list(raters(data, "unaided", with_model=False)) == ["A", "B"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("A", [[1, 1, 0], [0, 2, 0], [1, 0, 1]]),
        ("B", [[2, 0, 0], [1, 1, 0], [0, 1, 1]]),
        (MODEL, [[2, 0, 0], [1, 1, 0], [0, 0, 2]]),
    ],
    ids=["reader-A", "reader-B", "model"],
)
def test_confusion_table_by_hand(named, name, expected):
    table = analysis.confusion_table(named[name])
    assert table.to_numpy().tolist() == expected
    assert list(table.index) == ["true SCC", "true AC", "true ASC"]
    assert list(table.columns) == ["predicted SCC", "predicted AC", "predicted ASC"]


# Per class SCC, AC, ASC, counted from the table in the module docstring.
HAND = {
    "A": {"sensitivity": [1 / 2, 1, 1 / 2], "specificity": [3 / 4, 3 / 4, 1], "accuracy": 4 / 6},
    "B": {"sensitivity": [1, 1 / 2, 1 / 2], "specificity": [3 / 4, 3 / 4, 1], "accuracy": 4 / 6},
    MODEL: {"sensitivity": [1, 1 / 2, 1], "specificity": [3 / 4, 1, 1], "accuracy": 5 / 6},
}


@pytest.mark.parametrize("name", ["A", "B", MODEL], ids=["reader-A", "reader-B", "model"])
def test_metrics_table_by_hand_and_through_core_metrics(named, name):
    rater = named[name]
    table = analysis.metrics_table(rater, n_boot=50, seed=1).set_index(["metric", "scope"])
    value = table["value"]
    for metric in ("sensitivity", "specificity"):
        got = [value[(metric, c)] for c in CLASSES]
        np.testing.assert_allclose(got, HAND[name][metric])
    assert value[("accuracy", "overall")] == pytest.approx(HAND[name]["accuracy"])
    assert value[("error_rate", "overall")] == pytest.approx(1 - HAND[name]["accuracy"])
    # the same numbers as core.statistics.metrics on the class indices
    t = analysis.class_indices(rater["truth"])
    p = analysis.class_indices(rater["label"])
    np.testing.assert_allclose(
        [value[("sensitivity", c)] for c in CLASSES], metrics.sensitivity_score(t, p)
    )
    np.testing.assert_allclose(
        [value[("precision", c)] for c in CLASSES], metrics.precision_score(t, p)
    )
    assert set(table.index.get_level_values("scope")) == {*CLASSES, "macro", "overall"}
    assert "auc" in set(table.index.get_level_values("metric"))  # scores are all finite


def test_metrics_table_has_no_auc_without_scores(named):
    rater = named["A"].assign(c_SCC=np.nan)
    table = analysis.metrics_table(rater, n_boot=20)
    assert "auc" not in set(table["metric"])


def test_metrics_wide_formats_value_and_interval():
    table = pd.DataFrame(
        {
            "scope": ["SCC", "overall", "SCC"],
            "metric": ["sensitivity", "accuracy", "auc"],
            "value": [0.5, 4 / 6, np.nan],
            "ci_low": [0.25, np.nan, np.nan],
            "ci_high": [0.75, np.nan, np.nan],
        }
    )
    wide = analysis.metrics_wide(table, digits=2)
    assert list(wide.index) == ["SCC", "overall"]
    assert list(wide.columns) == ["sensitivity", "accuracy", "auc"]
    assert wide.loc["SCC", "sensitivity"] == "0.50 (0.25-0.75)"
    assert wide.loc["overall", "accuracy"] == "0.67"
    assert wide.loc["SCC", "auc"] == "" and wide.loc["SCC", "accuracy"] == ""


@pytest.mark.parametrize(
    ("name", "class_name", "expected"),
    [("A", "SCC", (1 / 4, 1 / 2)), ("A", "ASC", (0.0, 1 / 2)), ("B", "AC", (1 / 4, 1 / 2))],
    ids=["A-SCC", "A-ASC", "B-AC"],
)
def test_operating_point_by_hand(named, name, class_name, expected):
    fpr, tpr = analysis.operating_point(named[name], CLASSES.index(class_name))
    assert (fpr, tpr) == pytest.approx(expected)


def test_operating_point_is_nan_for_an_absent_class():
    rater = pd.DataFrame({"truth": ["SCC", "AC"], "label": ["SCC", "SCC"]})
    fpr, tpr = analysis.operating_point(rater, CLASSES.index("ASC"))
    assert np.isnan(tpr) and fpr == 0.0


def test_mcnemar_table_by_hand(named):
    table = analysis.mcnemar_table(named).set_index("reader")
    assert list(table.index) == ["A", "B"]
    # model right / reader wrong: A on K2, K6; B on K3, K5. Model wrong / reader right: K4.
    assert table.loc["A", "model right, reader wrong"] == 2
    assert table.loc["B", "model right, reader wrong"] == 2
    assert (table["model wrong, reader right"] == 1).all()
    assert (table["cases"] == 6).all()
    assert table["model accuracy"].tolist() == pytest.approx([5 / 6, 5 / 6])
    assert table["reader accuracy"].tolist() == pytest.approx([4 / 6, 4 / 6])
    # exact test: min(2, 1) = 1, p = 2 * P(Bin(3, 1/2) <= 1) = 1
    assert table["method"].tolist() == ["exact", "exact"]
    assert table["statistic"].tolist() == [1.0, 1.0]
    assert table["p-value"].tolist() == pytest.approx([1.0, 1.0])
    expected = stats.mcnemar_test(
        np.array(LABELS[MODEL]) == np.array(TRUTH), np.array(LABELS["A"]) == np.array(TRUTH)
    )
    assert table.loc["A", "p-value"] == expected.p_value


def test_mcnemar_table_pairs_only_the_cases_both_read(named):
    named = {**named, "A": named["A"].iloc[:3]}
    table = analysis.mcnemar_table(named).set_index("reader")
    assert table.loc["A", "cases"] == 3
    assert table.loc["A", "model right, reader wrong"] == 1  # K2 only
    assert table.loc["A", "model wrong, reader right"] == 0


def test_mcnemar_table_is_empty_without_a_model(named):
    assert analysis.mcnemar_table({"A": named["A"], "B": named["B"]}).empty


def test_kappas_by_hand(named):
    pairwise, fleiss, n_common = analysis.kappa_tables(named)
    assert n_common == 6
    pairs = pairwise.set_index(["rater A", "rater B"])["Cohen's kappa"]
    assert list(pairs.index) == [(MODEL, "A"), (MODEL, "B"), ("A", "B")]
    # A vs B: p_o = 2/6, p_e = (2*3 + 3*2 + 1*1)/36 = 13/36, kappa = (12 - 13) / (36 - 13)
    assert pairs[("A", "B")] == pytest.approx(-1 / 23)
    assert pairs[(MODEL, "A")] == pytest.approx(stats.cohen_kappa(LABELS[MODEL], LABELS["A"]))
    # Fleiss over the two readers only: P_bar = 2/6, P_e = (25 + 25 + 4)/144
    assert fleiss == pytest.approx((1 / 3 - 54 / 144) / (1 - 54 / 144))


def test_kappas_need_two_raters(named):
    pairwise, fleiss, n_common = analysis.kappa_tables({"A": named["A"]})
    assert pairwise.empty and fleiss is None and n_common == 6


def test_time_table_by_hand(data):
    table = analysis.time_table(data).set_index("rater")
    assert table.loc["A", "median s/case"] == 35 and table.loc["A", "mean s/case"] == 35
    assert table.loc["B", "median s/case"] == 5
    assert table.loc["B", "mean s/case"] == pytest.approx(125 / 6)
    assert table.loc[MODEL, "arm"] == "standalone" and table.loc[MODEL, "cases"] == 6
    assert table.loc[MODEL, "median s/case"] == 0.02
    data.model_seconds_per_case = None
    assert MODEL not in set(analysis.time_table(data)["rater"])


def test_aided_minus_unaided_by_hand(data):
    aided = _reads("aided", readers=("A",)).assign(label=TRUTH, seconds=10.0)
    aided = aided.assign(**_scores(TRUTH))
    data.reads = pd.concat([data.reads, aided], ignore_index=True)
    table = analysis.aided_minus_unaided(data).set_index("reader")
    assert list(table.index) == ["A"]  # B has no aided reads
    row = table.loc["A"]
    assert row["cases"] == 6
    assert row["accuracy unaided"] == pytest.approx(4 / 6) and row["accuracy aided"] == 1.0
    assert row["accuracy difference"] == pytest.approx(2 / 6)
    assert row["median s difference"] == 10 - 35
    assert row["macro AUC aided"] == 1.0  # the aided confidences rank every case right
    unaided = analysis.class_indices(TRUTH), _rater("A")[SCORE_COLUMNS].to_numpy()
    assert row["macro AUC unaided"] == pytest.approx(metrics.roc_auc_ovr(*unaided, average="macro"))


def test_model_time_is_read_under_the_one_timing_key():
    assert model_seconds_per_case({"timings": {"inference_seconds_per_case": 0.25}}) == 0.25
    assert model_seconds_per_case({"timings": {"predict_seconds_per_case": 0.25}}) is None
    assert model_seconds_per_case({"timings": {"seconds_per_case": 0.25}}) is None
    assert model_seconds_per_case({"timings": None}) is None
    assert model_seconds_per_case(None) is None


def test_tidy_reads_from_a_reads_frame():
    frame = pd.DataFrame(
        {
            "read_id": [1, 2],
            "reader_id": [3, 4],
            "display_name": ["Dr A", "Dr B"],
            "reader_simulated": [0, 1],
            "case_id": ["K1", "K2"],
            "arm": ["unaided", "unaided"],
            "label": ["SCC", "AC"],
            "c_SCC": [0.8, None],
            "c_AC": [0.1, None],
            "c_ASC": [0.1, None],
            "duration_ms": [1500, None],
            "truth": ["SCC", "ASC"],
        }
    )
    tidy = tidy_reads(frame)
    assert tidy["reader"].tolist() == ["Dr A", "Dr B"]
    assert tidy["simulated"].tolist() == [False, True]
    assert tidy["seconds"].iloc[0] == 1.5 and np.isnan(tidy["seconds"].iloc[1])
    assert np.isnan(tidy.loc[1, "c_SCC"])
    empty = tidy_reads(frame.iloc[:0])
    assert empty.empty and list(empty.columns) == list(tidy.columns)


def test_mrmc_reads_keep_only_fully_crossed_cases(data):
    reads = data.reads[~((data.reads["reader"] == "B") & (data.reads["case_id"] == "K6"))]
    long = mrmc_reads(StudyData(data.study, reads, None), ["unaided"])
    assert sorted(set(long["case"])) == CASES[:5]
    assert len(long) == 2 * 5
    assert list(long.columns) == ["reader", "modality", "case", "truth", "label", *SCORE_COLUMNS]


@pytest.mark.parametrize(
    ("p", "text"),
    [(0.03124, "0.0312"), (1e-12, "< 0.0001"), (0.0001, "0.0001"), (float("nan"), ""), (None, "")],
    ids=["plain", "tiny", "at-floor", "nan", "none"],
)
def test_p_values_are_formatted_never_cut_off(p, text):
    from core.reader_study.analysis import format_p_value

    assert format_p_value(p) == text


def test_rater_headings_never_double_parentheses():
    from core.reader_study.analysis import rater_heading

    assert rater_heading("Expert 1 (simulated)", 641) == "Expert 1 (simulated, 641 cases)"
    assert rater_heading("Reader A", 6) == "Reader A (6 cases)"


def test_time_table_counts_only_the_studys_cases_for_the_model(data):
    """The run predicted the whole cohort; the study's time table is about its 6 cases."""
    extra = data.model.iloc[[0]].assign(case_id="not-in-study")
    data.model = pd.concat([data.model, extra], ignore_index=True)
    table = analysis.time_table(data).set_index("rater")
    assert table.loc[MODEL, "cases"] == 6


def test_display_table_leaves_undefined_cells_blank_and_formats_p_values():
    import numpy as np
    import pandas as pd

    from core.reader_study.analysis import display_table

    table = pd.DataFrame(
        {
            "row": ["aided", "aided - unaided", None],
            "estimate": [0.91234, -0.04, np.nan],
            "p_value": [np.nan, 3e-9, 0.0312],
        }
    )
    shown = display_table(table)
    assert shown.to_dict("list") == {
        "row": ["aided", "aided - unaided", ""],
        "estimate": ["0.912", "-0.040", ""],
        "p_value": ["", "< 0.0001", "0.0312"],
    }
