"""The HTML + CSV report of a run comparison, built from a real database's predictions."""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

import db
from dashboard.report import build_report

CLASSES = ("SCC", "AC", "ASC")


@pytest.fixture(scope="module")
def frames(eval_db):
    conn = db.connect(eval_db.path)
    try:
        runs = db.runs_frame(conn)
        runs = runs[runs["run_id"].isin(eval_db.run_ids)]
        predictions = db.predictions_frame(conn, list(eval_db.run_ids))
    finally:
        conn.close()
    return runs, predictions


@pytest.fixture(scope="module")
def report(frames):
    runs, predictions = frames
    return build_report(predictions, runs, n_boot=50)


def test_zip_holds_html_and_csvs(report, frames):
    archive = zipfile.ZipFile(io.BytesIO(report.to_zip()))
    names = set(archive.namelist())
    assert {"report.html", "predictions.csv", "metrics.csv", "confusion.csv", "runs.csv"} <= names
    back = pd.read_csv(archive.open("predictions.csv"))
    assert len(back) == len(frames[1])
    assert archive.read("report.html").decode() == report.html


def test_html_is_self_contained_and_interactive(report):
    page = report.html
    # plotly.js inlined exactly once, no script fetched from elsewhere
    assert page.count("window.PlotlyConfig") == 1  # the plotly.js bundle, once
    assert len(page) > 1_000_000
    assert not re.search(r"<script[^>]+src=", page)
    # ROC, 2 runs x 2 confusion matrices, folds, reliability
    assert page.count('class="plotly-graph-div"') == 1 + 2 * 2 + 1 + 1
    assert "Table 1 (macro average)" in page and "Table 1 (weighted average)" in page


def test_confusion_csv_matches_sklearn(report, frames):
    _, predictions = frames
    cm_csv = pd.read_csv(io.StringIO(report.csvs["confusion.csv"]))
    for run_id, rows in predictions.groupby("run_id"):
        y_true = [CLASSES.index(x) for x in rows["label"]]
        y_pred = rows[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(axis=1)
        expected = confusion_matrix(y_true, y_pred, labels=[0, 1, 2])
        mine = cm_csv[cm_csv["run_id"] == run_id]
        got = mine.pivot(index="true", columns="predicted", values="count").loc[CLASSES, CLASSES]
        np.testing.assert_array_equal(got.to_numpy(), expected)


def test_metrics_csv_auc_matches_sklearn(report, frames):
    _, predictions = frames
    table = pd.read_csv(io.StringIO(report.csvs["metrics.csv"]))
    for run_id, rows in predictions.groupby("run_id"):
        y_true = [CLASSES.index(x) for x in rows["label"]]
        score = rows[["p_SCC", "p_AC", "p_ASC"]].to_numpy()
        expected = roc_auc_score(y_true, score, multi_class="ovr", average="macro")
        got = table[(table.run_id == run_id) & (table.scope == "macro") & (table.metric == "auc")]
        assert got["value"].iloc[0] == pytest.approx(expected)


def test_refuses_runs_without_predictions(frames):
    runs, predictions = frames
    with pytest.raises(ValueError, match="have no predictions yet"):
        build_report(predictions.iloc[0:0], runs)
    with pytest.raises(ValueError, match="no runs chosen"):
        build_report(predictions, runs.iloc[0:0])


def test_report_shows_calibration_equal_to_core(eval_env):
    from core.statistics.calibration import calibration_summary

    with db.connect(eval_env.path) as conn:
        runs = db.runs_frame(conn)
        runs = runs[runs["run_id"].isin(eval_env.run_ids)]
        predictions = db.predictions_frame(conn, list(eval_env.run_ids))
    report = build_report(predictions, runs, n_boot=200)
    assert "<h2>Calibration</h2>" in report.html and "Reliability" in report.html
    table = pd.read_csv(io.StringIO(report.csvs["calibration.csv"]))
    run_id = eval_env.run_ids[0]
    mine = predictions[predictions["run_id"] == run_id]
    expected = calibration_summary(
        mine["label"].map({"SCC": 0, "AC": 1, "ASC": 2}).to_numpy(),
        mine[["p_SCC", "p_AC", "p_ASC"]].to_numpy(),
        groups=mine["case_id"].to_numpy(),
        n_boot=200,
    )
    name = runs.set_index("run_id").loc[run_id, "model"]
    got = table[table["model"].str.startswith(name)]
    assert list(got["scope"]) == list(expected["scope"])
    np.testing.assert_allclose(got["value"].to_numpy(), expected["value"].to_numpy(), atol=1e-12)
