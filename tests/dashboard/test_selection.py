"""Selection event -> case list, checked by hand and against scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_curve

from dashboard import selection
from dashboard.figures import confusion_figure, roc_curves_for_run, roc_figure

CLASSES = ("SCC", "AC", "ASC")


def _frame(labels, probs, run_id="r1"):
    probs = np.asarray(probs, dtype=float)
    return pd.DataFrame(
        {
            "run_id": run_id,
            "case_id": [f"P{i:03d}" for i in range(len(labels))],
            "fold": [i % 3 for i in range(len(labels))],
            "label": labels,
            "p_SCC": probs[:, 0],
            "p_AC": probs[:, 1],
            "p_ASC": probs[:, 2],
        }
    )


@pytest.fixture
def small():
    # Hand-made: P000 SCC->SCC, P001 SCC->AC, P002 AC->AC, P003 ASC->SCC, P004 ASC->ASC
    return _frame(
        ["SCC", "SCC", "AC", "ASC", "ASC"],
        [
            [0.7, 0.2, 0.1],
            [0.3, 0.6, 0.1],
            [0.1, 0.8, 0.1],
            [0.5, 0.1, 0.4],
            [0.2, 0.2, 0.6],
        ],
    )


def _random(n=60, seed=3, run_id="r1"):
    rng = np.random.default_rng(seed)
    labels = rng.choice(CLASSES, size=n, p=[0.6, 0.3, 0.1])
    probs = rng.dirichlet([1, 1, 1], size=n)
    return _frame(list(labels), probs, run_id=run_id)


def test_confusion_cell_by_hand(small):
    cell = selection.cases_for_confusion_cell(small, "ASC", "SCC")
    assert cell["case_id"].tolist() == ["P003"]
    assert cell["confidence"].tolist() == [0.5]
    assert not cell["correct"].any()
    by_index = selection.cases_for_confusion_cell(small, 0, 1)
    assert by_index["case_id"].tolist() == ["P001"]
    assert selection.cases_for_confusion_cell(small, "AC", "ASC").empty


def test_confusion_cells_match_sklearn_counts():
    frame = _random()
    probs = frame[["p_SCC", "p_AC", "p_ASC"]].to_numpy()
    y_true = [CLASSES.index(x) for x in frame["label"]]
    expected = confusion_matrix(y_true, probs.argmax(axis=1), labels=[0, 1, 2])
    for t, true_name in enumerate(CLASSES):
        for p, pred_name in enumerate(CLASSES):
            cell = selection.cases_for_confusion_cell(frame, true_name, pred_name)
            assert len(cell) == expected[t, p], (true_name, pred_name)


@pytest.mark.parametrize("class_index", [0, 1, 2], ids=CLASSES)
def test_roc_point_cases_reproduce_sklearn_rates(class_index):
    frame = _random(seed=class_index + 10)
    name = CLASSES[class_index]
    y = (frame["label"] == name).to_numpy()
    fpr, tpr, thresholds = roc_curve(y, frame[f"p_{name}"], drop_intermediate=False)
    for f, t, thr in list(zip(fpr, tpr, thresholds, strict=True))[1:]:
        cases = selection.cases_for_roc_point(frame, class_index, thr)
        tp = (cases["outcome"] == "true positive").sum()
        fp = (cases["outcome"] == "false positive").sum()
        assert tp == pytest.approx(t * y.sum())
        assert fp == pytest.approx(f * (~y).sum())


def test_run_filter_and_unknown_run(small):
    both = pd.concat([small, small.assign(run_id="r2", p_SCC=0.0)], ignore_index=True)
    assert len(selection.cases_for_confusion_cell(both, "SCC", "SCC", run_id="r1")) == 1
    assert len(selection.cases_for_confusion_cell(both, "SCC", "SCC", run_id="r2")) == 0
    with pytest.raises(ValueError, match="run 'nope' has no predictions.*r1, r2"):
        selection.cases_for_confusion_cell(both, "SCC", "SCC", run_id="nope")


def test_bad_class_names_the_value(small):
    with pytest.raises(ValueError, match="unknown class 'XYZ'.*SCC, AC, ASC"):
        selection.cases_for_confusion_cell(small, "XYZ", "SCC")
    with pytest.raises(ValueError, match="class index 5"):
        selection.cases_for_roc_point(small, 5, 0.5)


def test_event_from_confusion_figure_customdata(small):
    """The customdata the figure carries is what the event parser reads back."""
    y_true = [CLASSES.index(x) for x in small["label"]]
    y_pred = small[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(axis=1)
    fig = confusion_figure(confusion_matrix(y_true, y_pred), run_id="r1", title="t")
    trace = fig.data[0]
    # Find the marker for (ASC, SCC) the way Plotly would report a click on it.
    idx = [i for i, d in enumerate(trace.customdata) if d[1] == "ASC" and d[2] == "SCC"][0]
    event = {
        "selection": {
            "points": [{"point_index": idx, "customdata": list(trace.customdata[idx])}],
            "point_indices": [idx],
            "box": [],
            "lasso": [],
        }
    }
    assert selection.confusion_cells(event) == [("r1", "ASC", "SCC")]
    found = selection.cases_for_event(small, confusion_event=event)
    assert found["case_id"].tolist() == ["P003"]
    assert found["selected_by"].tolist() == ["true ASC, predicted SCC"]


def test_event_from_roc_figure_customdata():
    frame = _random(seed=7)
    curves = roc_curves_for_run(frame, run_id="r1", name="resnet18")
    fig = roc_figure(curves)
    trace = next(t for t in fig.data if t.customdata is not None and t.customdata[0][1] == 2)
    point = trace.customdata[3]
    event = {"selection": {"points": [{"customdata": list(point)}]}}
    ((run_id, class_index, threshold),) = selection.roc_points(event)
    assert (run_id, class_index) == ("r1", 2)
    found = selection.cases_for_event(frame, roc_event=event)
    expected = (frame["p_ASC"] >= threshold).sum()
    assert len(found) == expected > 0


def test_empty_events_give_empty_list(small):
    assert selection.selected_points(None) == []
    assert selection.selected_points({"selection": {"points": []}}) == []
    assert selection.cases_for_event(small).empty


def test_filter_cases_by_hand(small):
    ids = lambda frame: frame["case_id"].tolist()  # noqa: E731
    assert ids(selection.filter_cases(small)) == ["P000", "P001", "P002", "P003", "P004"]
    assert ids(selection.filter_cases(small, correct=False)) == ["P001", "P003"]
    assert ids(selection.filter_cases(small, true_classes=["ASC"], correct=True)) == ["P004"]
    assert ids(selection.filter_cases(small, predicted_classes=["SCC"])) == ["P000", "P003"]
    # confidence is the top probability: P003 0.5, P001/P004 0.6, P000 0.7, P002 0.8
    assert ids(selection.filter_cases(small, confidence=(0.5, 0.6))) == ["P001", "P003", "P004"]
    assert ids(selection.filter_cases(small, folds=[0])) == ["P000", "P003"]
    with pytest.raises(ValueError, match="unknown class 'scc'"):
        selection.filter_cases(small, true_classes=["scc"])


def _cases(n):
    import pandas as pd

    return pd.DataFrame(
        {"case_id": [f"internal/P{i:05d}" for i in range(n)],
         "confidence": [((i * 37) % 101) / 100 for i in range(n)], "fold": [i % 10 for i in range(n)]}
    )  # fmt: skip


def test_the_case_list_pages_searches_and_sorts_on_the_server():
    from dashboard import selection

    rows = _cases(6410)
    assert selection.n_pages(len(rows)) == 65 and selection.n_pages(0) == 1
    assert selection.page_of(rows, 1)["case_id"].iloc[0] == "internal/P00000"
    last = selection.page_of(rows, 65)
    assert len(last) == 10 and last["case_id"].iloc[-1] == "internal/P06409"
    assert selection.page_of(rows, 99).equals(last)  # clamped to the last page
    assert selection.page_holding(rows, "internal/P00250") == 3
    assert selection.page_holding(rows, "nowhere") is None
    found = selection.search_cases(rows, "p0640")
    assert found["case_id"].tolist() == [f"internal/P0640{i}" for i in range(10)]
    assert selection.search_cases(rows, " ").equals(rows)
    assert selection.search_cases(rows, ".*").empty  # literal text, not a pattern
    high = selection.sort_cases(rows, "confidence, highest first")
    assert high["confidence"].is_monotonic_decreasing
    ties = high[high["confidence"] == high["confidence"].iloc[0]]["case_id"]
    assert ties.is_monotonic_increasing  # ties in case order: the same order every run
