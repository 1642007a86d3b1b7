"""AppTest of the evaluation pages on a real database with two real CV runs (see conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import db
from core.data.labels import CLASS_INDEX
from core.statistics import metrics
from dashboard.auth import Identity
from tests.dashboard.gradcam_wait import settle_gradcam

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
PAGES = ("overview", "cv_results", "case_browser", "run_cv", "report")


def _app(identity: Identity | None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if identity is not None:
        at.session_state["auth"] = identity
    return at


def _open(page: str, identity=None) -> AppTest:
    at = _app(identity or Identity(role="admin", name="admin"))
    at.run()
    at.switch_page(f"../pages/{page}.py")
    at.run()
    return at


def _no_errors(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _frame(at: AppTest, columns, **equal) -> pd.DataFrame:
    """The one rendered dataframe holding ``columns`` (and ``column == value`` for ``equal``).

    AppTest does not expose dataframe keys, so tables are found by what they hold.
    """
    found = []
    for element in at.dataframe:
        value = element.value
        if set(columns) <= set(value.columns) | {value.index.name}:
            if all((value[c] == v).all() for c, v in equal.items()):
                found.append(value)
    assert len(found) == 1, f"{len(found)} dataframes with {columns} {equal}"
    return found[0]


def _oof(eval_db, run_id: str) -> pd.DataFrame:
    conn = db.connect(eval_db.path)
    try:
        return db.predictions_frame(conn, [run_id])
    finally:
        conn.close()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_for_admin(eval_env, page):
    at = _open(page)
    _no_errors(at)
    assert at.title[0].value


@pytest.mark.parametrize("role", [None, "reader"], ids=["nobody", "reader"])
@pytest.mark.parametrize("page", PAGES)
def test_pages_refused_without_admin(eval_env, page, role):
    identity = None if role is None else Identity(role="reader", name="r", reader_id=1, study_id=1)
    at = _app(identity)
    at.run()
    with pytest.raises(ValueError):
        at.switch_page(f"../pages/{page}.py")
        at.run()


def test_page_refuses_reader_even_when_reached(eval_env):
    """The role check inside the page, not only the navigation, stops a reader."""
    at = AppTest.from_file(str(ROOT / "pages" / "cv_results.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="reader", name="r", reader_id=1, study_id=1)
    at.run()
    assert "do not have access" in at.error[0].value
    assert not at.dataframe


def test_overview_counts_match_database(eval_env):
    at = _open("overview")
    conn = db.connect(eval_env.path)
    try:
        cases, images = db.cases_frame(conn), db.images_frame(conn)
    finally:
        conn.close()
    shown = {m.label: m.value for m in at.metric}
    assert shown["Patients (cases)"] == str(len(cases))
    assert shown["Images (slices)"] == str(len(images))
    counts = _frame(at, ["class", "patients", "images"]).set_index("class")
    assert counts.loc["SCC", "patients"] == (cases["label"] == "SCC").sum() > 0
    runs = _frame(at, ["run_id", "status", "duration_s"])
    assert set(runs["run_id"]) == set(eval_env.run_ids)
    assert (runs["status"] == "done").all()


def test_results_metrics_equal_core_metrics(eval_env):
    at = _open("cv_results")
    _no_errors(at)
    # Both runs of the comparison are chosen by default.
    assert sorted(at.multiselect(key="cv_runs").value) == sorted(eval_env.run_ids)
    table_one = _frame(at, ["auc", "f1", "accuracy"])
    assert sorted(table_one.index) == ["cnn (features)", "resnet18 (features)"]
    for run_id, name in zip(eval_env.run_ids, ["cnn", "resnet18"], strict=True):
        oof = _oof(eval_env, run_id)
        y_true = np.array([CLASS_INDEX[x] for x in oof["label"]])
        y_score = oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy()
        y_pred = y_score.argmax(axis=1)
        shown = _frame(at, ["scope", "ci_low"], model=f"{name} (features)").set_index(
            ["scope", "metric"]
        )
        # Independent of the page's code path: the metric functions, called directly.
        expected = {
            ("macro", "f1"): metrics.f1_score(y_true, y_pred, average="macro"),
            ("SCC", "sensitivity"): metrics.sensitivity_score(y_true, y_pred)[0],
            ("weighted", "precision"): metrics.precision_score(y_true, y_pred, average="weighted"),
            ("overall", "accuracy"): metrics.accuracy_score(y_true, y_pred),
            ("macro", "auc"): metrics.roc_auc_ovr(y_true, y_score, average="macro"),
        }
        for key, value in expected.items():
            assert shown.loc[key, "value"] == pytest.approx(value, nan_ok=True), key
        assert (shown["ci_low"] <= shown["value"] + 1e-12).all()
        # Table 1's macro cell for accuracy starts with the same overall accuracy.
        cell = table_one.loc[f"{name} (features)", "accuracy"]
        assert cell.startswith(f"{expected[('overall', 'accuracy')]:.3f}")
        # The per-fold summary's mean equals the mean of per-fold accuracies.
        folds = oof.groupby("fold")
        per_fold = [
            metrics.accuracy_score(
                np.array([CLASS_INDEX[x] for x in g["label"]]),
                g[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(axis=1),
            )
            for _, g in folds
        ]
        summary = _frame(at, ["mean", "sd", "n_folds"])
        row = summary[
            (summary["model"] == f"{name} (features)") & (summary["metric"] == "accuracy")
        ]
        assert row["mean"].iloc[0] == pytest.approx(np.mean(per_fold))
        assert row["sd"].iloc[0] == pytest.approx(np.std(per_fold, ddof=1))


def test_results_per_image_metrics_equal_core_metrics_on_image_predictions(eval_env):
    at = _open("cv_results")
    assert at.radio(key="cv_level").value == "case"  # per case by default
    at.radio(key="cv_level").set_value("image").run()
    _no_errors(at)
    table_one = _frame(at, ["auc", "f1", "accuracy"])
    assert sorted(table_one.index) == ["cnn (features)", "resnet18 (features)"]
    conn = db.connect(eval_env.path)
    try:
        images = db.image_predictions_frame(conn, list(eval_env.run_ids))
        n_images = len(db.images_frame(conn))
    finally:
        conn.close()
    for run_id, name in zip(eval_env.run_ids, ["cnn", "resnet18"], strict=True):
        rows = images[images["run_id"] == run_id]
        assert len(rows) == n_images and len(rows) > rows["case_id"].nunique()
        y_true = np.array([CLASS_INDEX[x] for x in rows["label"]])
        y_score = rows[["p_SCC", "p_AC", "p_ASC"]].to_numpy()
        y_pred = y_score.argmax(axis=1)
        shown = _frame(at, ["scope", "ci_low"], model=f"{name} (features)").set_index(
            ["scope", "metric"]
        )
        expected = {
            ("macro", "f1"): metrics.f1_score(y_true, y_pred, average="macro"),
            ("SCC", "sensitivity"): metrics.sensitivity_score(y_true, y_pred)[0],
            ("weighted", "precision"): metrics.precision_score(y_true, y_pred, average="weighted"),
            ("overall", "accuracy"): metrics.accuracy_score(y_true, y_pred),
            ("macro", "auc"): metrics.roc_auc_ovr(y_true, y_score, average="macro"),
        }
        for key, value in expected.items():
            assert shown.loc[key, "value"] == pytest.approx(value, nan_ok=True), key
        # The CIs come from a bootstrap over whole patients, not over images.
        table = metrics.classification_table(
            y_true, y_pred, y_score, n_boot=1000, groups=rows["case_id"].to_numpy()
        ).set_index(["scope", "metric"])
        np.testing.assert_allclose(
            shown.loc[table.index, ["value", "ci_low", "ci_high"]].to_numpy(dtype=float),
            table[["value", "ci_low", "ci_high"]].to_numpy(dtype=float),
        )
        cell = table_one.loc[f"{name} (features)", "accuracy"]
        assert cell.startswith(f"{expected[('overall', 'accuracy')]:.3f}")
    # Back to per case: the case-level numbers again.
    at.radio(key="cv_level").set_value("case").run()
    _no_errors(at)
    oof = _oof(eval_env, eval_env.run_ids[0])
    y_true = np.array([CLASS_INDEX[x] for x in oof["label"]])
    y_pred = oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(axis=1)
    shown = _frame(at, ["scope", "ci_low"], model="cnn (features)").set_index(["scope", "metric"])
    assert shown.loc[("overall", "accuracy"), "value"] == pytest.approx(
        metrics.accuracy_score(y_true, y_pred)
    )


def test_per_image_level_names_runs_made_before_image_predictions(eval_env, tmp_path, monkeypatch):
    import shutil
    import sqlite3

    path = tmp_path / "old.db"
    shutil.copy(eval_env.path, path)
    raw = sqlite3.connect(path)
    with raw:  # as if the cnn run had been made before schema v3
        raw.execute("DELETE FROM image_predictions WHERE run_id = ?", (eval_env.run_ids[0],))
    raw.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    # st.cache_data is process-wide and keyed on run ids, which this copy shares with eval_db.
    st.cache_data.clear()
    try:
        at = _open("cv_results")
        at.radio(key="cv_level").set_value("image").run()
    finally:
        st.cache_data.clear()
    assert not at.exception, [e.value for e in at.exception]
    assert [w.value for w in at.warning if w.value.startswith("No per-")] == [
        "No per-image predictions for cnn (features) (runs made before they were stored): "
        "run them again to see them here."
    ]
    assert list(_frame(at, ["auc", "f1", "accuracy"]).index) == ["resnet18 (features)"]


def test_results_confusion_click_lists_cases(eval_env):
    run_id = eval_env.run_ids[0]
    oof = _oof(eval_env, run_id)
    pred = np.array(["SCC", "AC", "ASC"])[oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(1)]
    true_name = "SCC"
    pred_name = pd.Series(pred[oof["label"] == true_name]).mode()[0]
    expected = set(oof.loc[(oof["label"] == true_name) & (pred == pred_name), "case_id"])
    at = _app(Identity(role="admin", name="admin"))
    at.run()
    at.switch_page("../pages/cv_results.py")
    at.session_state[f"cm_counts_{run_id}"] = {
        "selection": {
            "points": [{"customdata": [run_id, true_name, pred_name, len(expected)]}],
            "point_indices": [0],
            "box": [],
            "lasso": [],
        }
    }
    at.run()
    _no_errors(at)
    listed = _frame(at, ["case_id", "selected_by"])
    assert set(listed["case_id"]) == expected
    # One click from the case browser, which opens on the picked case of the picked run.
    picked_case, picked_run = at.selectbox(key="selected_case_pick").value
    at.button(key="open_selected_case").click().run()
    _no_errors(at)
    assert at.title[0].value == "Case browser"
    assert at.selectbox(key="browse_run_pick").value == picked_run
    assert at.selectbox(key="case_pick").value == picked_case


def test_case_browser_filters_and_shows_a_case(eval_env):
    at = settle_gradcam(_open("case_browser"))
    _no_errors(at)
    settle_gradcam(at.selectbox(key="f_outcome").set_value("wrong").run())
    _no_errors(at)
    table = _frame(at, ["case_id", "correct"])
    assert not table.empty and not table["correct"].any()
    case_id = at.selectbox(key="case_pick").value
    probs = _frame(at, ["run_id", "p_SCC", "model"])
    assert set(probs["run_id"]) == set(eval_env.run_ids)
    oof = pd.concat([_oof(eval_env, r) for r in eval_env.run_ids])
    mine = oof[oof["case_id"] == case_id].set_index("run_id")
    for row in probs.itertuples():
        assert row.p_SCC == pytest.approx(mine.loc[row.run_id, "p_SCC"])
    import json

    import db

    (viewer,) = [json.loads(e.proto.json) for e in at.get("bidi_component")]
    conn = db.connect()
    n_images = len(db.images_frame(conn, case_id))
    conn.close()
    assert len(viewer["slices"]) == n_images  # every slice of the case, in the shared viewer
    assert [pic["title"] for pic in viewer["side"]] == ["Lesion crop"]  # the crop beside it
    captions = [c for image in at.get("image") for c in image.proto.imgs[0:1] for c in [c.caption]]
    predicted = _frame(at, ["case_id", "correct"]).set_index("case_id").loc[case_id, "predicted"]
    assert f"Grad-CAM: {predicted} (fold model that never saw this case)" in captions


def test_case_browser_explains_missing_final_model(eval_env, tmp_path, monkeypatch):
    import shutil

    from core.learning import gradcam
    from core.project.home import cache_dir

    # a home without runs/<run_id>/: as if the run was trained elsewhere
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(tmp_path))
    gradcam._model.cache_clear()  # core keeps loaded models in memory; forget them
    shutil.rmtree(cache_dir("gradcam"), ignore_errors=True)  # and heat maps made earlier
    at = settle_gradcam(_open("case_browser"))
    assert not at.exception
    looked = str(tmp_path / "runs")
    assert any("there is no folder" in i.value and looked in i.value for i in at.info), (
        [i.value for i in at.info],
        [e.value for e in at.error],
        [c.caption for im in at.get("image") for c in im.proto.imgs],
    )


def test_run_page_refuses_missing_folder(eval_env):
    at = _open("run_cv")
    at.text_input[0].set_value("/no/such/folder")
    at.button[0].click().run()
    assert "/no/such/folder does not exist" in at.error[0].value


def test_results_roc_click_lists_positives_at_threshold(eval_env):
    run_id = eval_env.run_ids[1]
    oof = _oof(eval_env, run_id)
    threshold = float(np.median(oof["p_AC"]))
    expected = set(oof.loc[oof["p_AC"] >= threshold, "case_id"])
    at = _app(Identity(role="admin", name="admin"))
    at.run()
    at.switch_page("../pages/cv_results.py")
    at.session_state["roc_chart"] = {
        "selection": {
            "points": [{"customdata": [run_id, 1, threshold]}],
            "point_indices": [0],
            "box": [],
            "lasso": [],
        }
    }
    at.run()
    _no_errors(at)
    listed = _frame(at, ["case_id", "selected_by"])
    assert set(listed["case_id"]) == expected
    assert (listed["selected_by"] == f"AC score >= {threshold:.3f}").all()


def test_run_page_refuses_a_duplicate_of_a_queued_run(eval_env, tmp_path, monkeypatch):
    import shutil

    from core.learning.jobs import CvRequest

    path = tmp_path / "copy.db"
    shutil.copy(eval_env.path, path)  # the shared fixture database stays read-only
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    request = CvRequest(str(eval_env.data_dir), "cnn", "features", 4, 7, "smote")
    conn = db.connect(path)
    try:
        queued = db.create_run(
            conn, model="cnn", mode="features", config=request.config(), seed=7,
            data_hash=None, device=None, weights=None, code_version=None, packages=None,
        )  # fmt: skip
        at = _open("run_cv")
        at.text_input[0].set_value(str(eval_env.data_dir))
        at.selectbox(key="run_model").set_value("cnn")
        at.number_input[0].set_value(4)
        at.number_input[1].set_value(7)
        at.button[0].click().run()
        assert queued in at.error[0].value and "already" in at.error[0].value
        assert len(db.runs_frame(conn)) == len(eval_env.run_ids) + 1  # nothing new was queued
        # The progress panel follows the queued run.
        assert any(queued in p.proto.text for p in at.get("progress"))
    finally:
        conn.close()


@pytest.mark.parametrize("page", ["overview", "cv_results", "case_browser", "report"])
def test_empty_database_explains_how_to_start(tmp_path, monkeypatch, page):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(tmp_path / "empty.db"))
    at = _open(page)
    _no_errors(at)
    assert any("make demo" in i.value and "cervixscope cv" in i.value for i in at.info)


def test_runs_without_a_finished_one_say_so(tmp_path, monkeypatch):
    path = tmp_path / "queued.db"
    conn = db.connect(path)
    try:
        db.create_run(
            conn, model="cnn", mode="features", config={"model": "cnn"}, seed=0,
            data_hash=None, device=None, weights=None, code_version=None, packages=None,
        )  # fmt: skip
    finally:
        conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    at = _open("cv_results")
    _no_errors(at)
    assert "No finished run yet (1 queued)" in at.info[0].value


@pytest.mark.slow
def test_started_run_survives_a_reload_and_lands_in_results(eval_env, tmp_path, monkeypatch):
    """A real background CV process: a new session (a reload) sees it, cannot start it twice,
    and the results page lists it once it is done."""
    import shutil
    import time

    from core.learning import jobs

    path = tmp_path / "copy.db"
    shutil.copy(eval_env.path, path)
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.chdir(tmp_path)
    request = jobs.CvRequest(str(eval_env.data_dir), "cnn", "features", 3, 5, "none")
    conn = db.connect(path)
    try:
        run_id = jobs.start_cv(conn, request, workdir=tmp_path)
        with pytest.raises(ValueError, match=f"already queued or running: {run_id}"):
            jobs.start_cv(conn, request, workdir=tmp_path)
        at = _open("run_cv")  # a fresh session, as after a reload
        assert any(run_id in p.proto.text for p in at.get("progress"))
        deadline = time.monotonic() + 240
        while db.get_run(conn, run_id)["status"] in jobs.ACTIVE:
            assert time.monotonic() < deadline, (tmp_path / "runs" / run_id / "cv.log").read_text()
            time.sleep(1)
        run = db.get_run(conn, run_id)
        assert run["status"] == "done", run["message"]
        assert len(db.runs_frame(conn)) == len(eval_env.run_ids) + 1  # not duplicated
    finally:
        conn.close()
    at = _open("cv_results")
    options = at.multiselect(key="cv_runs").options
    assert any(run_id in o for o in options)


def test_cache_version_follows_only_the_chosen_runs():
    from dashboard.loaders import runs_version

    runs = pd.DataFrame(
        {"run_id": ["a", "b"], "status": ["done", "running"], "progress": [1.0, 0.2]}
    )
    moved = runs.assign(progress=[1.0, 0.6])  # run b progresses
    assert runs_version(runs, ["a"]) == runs_version(moved, ["a"])
    assert runs_version(runs) != runs_version(moved)
    assert runs_version(runs, ["a"]) != runs_version(
        runs.assign(status=["failed", "running"]), ["a"]
    )
