"""The results page shows internal CV and external validation side by side (issue 19), on a
copy of the real evaluation database with a real validation of a real run."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score
from streamlit.testing.v1 import AppTest

import db
from core.data.demo_data import generate_external_cohort
from core.learning.validation import validate_folder
from dashboard.auth import Identity

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def validated_db(eval_db, tmp_path_factory):
    """The eval database copied, with the first run validated on a second-scanner cohort."""
    work = tmp_path_factory.mktemp("external_page")
    path = work / "cervixscope.db"
    shutil.copy(eval_db.path, path)
    generate_external_cohort(work / "external", counts=(6, 5, 4))
    conn = db.connect(path)
    try:
        result, _ = validate_folder(
            eval_db.run_ids[0], work / "external", conn=conn, runs_dir=eval_db.workdir / "runs"
        )
    finally:
        conn.close()
    return path, work, result


@pytest.fixture
def page_env(eval_db, validated_db, monkeypatch):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(validated_db[0]))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(eval_db.workdir))
    return validated_db


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/cv_results.py")
    at.run()
    return at


def _frames(at, columns) -> list[pd.DataFrame]:
    return [e.value for e in at.dataframe if set(columns) <= set(e.value.columns)]


def test_side_by_side_metrics_equal_independent_metrics(page_env, eval_db):
    at = _open()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ext_run").value == eval_db.run_ids[0]
    path, _, result = page_env
    conn = db.connect(path)
    try:
        external = db.validation_predictions(conn, result.validation_id)
        internal = db.predictions_frame(conn, [eval_db.run_ids[0]])
    finally:
        conn.close()
    side = [f for f in _frames(at, ["auc", "accuracy"]) if "external: external" in f.index]
    assert len(side) == 1 and list(side[0].index) == [
        "internal CV (out-of-fold)",
        "external: external",
    ]
    score = external[["p_scc", "p_ac", "p_asc"]].to_numpy()
    acc = accuracy_score(external["label"], score.argmax(1))
    auc = roc_auc_score(external["label"], score, multi_class="ovr", average="macro")
    assert side[0].loc["external: external", "accuracy"].startswith(f"{acc:.3f} (")
    assert side[0].loc["external: external", "auc"].startswith(f"{auc:.3f} (")
    y = internal["label"].map({"SCC": 0, "AC": 1, "ASC": 2})
    oof_acc = accuracy_score(y, internal[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(1))
    assert side[0].loc["internal CV (out-of-fold)", "accuracy"].startswith(f"{oof_acc:.3f} (")
    sites = _frames(at, ["site", "cases", "macro AUC"])[0]
    assert sorted(sites["site"]) == ["B-north", "B-south"] and sites["cases"].sum() == 15
    shift = _frames(at, ["check", "differs", "detail"])[0]
    assert shift.set_index("check").loc["series description", "differs"] == "yes"
    calibration = [f for f in _frames(at, ["ece macro"]) if "external: external" in f.index]
    assert len(calibration) == 1 and len(calibration[0]) == 2
    assert any("differs in" in w.value for w in at.warning)


def test_the_button_runs_a_validation_and_refuses_a_bad_folder(page_env, tmp_path):
    path, work, _ = page_env
    at = _open()
    at.text_input(key="ext_folder").set_value(str(tmp_path / "missing")).run()
    at.button(key="ext_validate").click().run()
    assert len(at.error) == 1 and "not found" in at.error[0].value
    generate_external_cohort(tmp_path / "second", seed=9, counts=(3, 3, 3))
    at.text_input(key="ext_folder").set_value(str(tmp_path / "second"))
    at.text_input(key="ext_cohort").set_value("hospital-c").run()
    at.button(key="ext_validate").click().run()
    assert not at.error, [e.value for e in at.error]
    assert "hospital-c" in at.success[0].value
    conn = db.connect(path)
    try:
        assert "hospital-c" in set(db.validations_frame(conn)["cohort"])
    finally:
        conn.close()
    assert np.isfinite(len(at.selectbox(key="ext_validation").options))


def test_the_report_includes_the_external_validation(page_env, eval_db):
    import io

    from dashboard import external
    from dashboard.report import build_report

    path, _, _ = page_env
    run_id = eval_db.run_ids[0]
    conn = db.connect(path)
    try:
        predictions = db.predictions_frame(conn, [run_id])
        runs = db.runs_frame(conn)
    finally:
        conn.close()
    validations = external.latest_validations([run_id])
    report = build_report(
        predictions, runs[runs["run_id"] == run_id], n_boot=50, validations=validations
    )
    newest = validations[0]  # the newest validation of the run (the button may have added one)
    assert [v["run_id"] for v in validations] == [run_id]
    assert f"External validation: run {run_id} on cohort {newest['cohort']}" in report.html
    assert "B-north" in report.html and "series description" in report.html
    rows = pd.read_csv(io.StringIO(report.csvs["external_predictions.csv"]))
    assert sorted(rows["case_id"]) == sorted(newest["predictions"]["case_id"])
    assert len(rows) == len(set(rows["case_id"])) == newest["predictions"]["case_id"].nunique()
    assert report.html.count("window.PlotlyConfig") == 1  # plotly.js still inlined once


def test_overview_lists_patients_per_cohort_and_site(page_env):
    path, _, _ = page_env
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/overview.py")
    at.run()
    assert not at.exception and not at.error
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)
    finally:
        conn.close()
    shown = _frames(at, ["cohort", "site", "patients"])[0]
    by_key = shown.set_index(["cohort", "site"])["patients"]
    expected = cases.fillna({"site": "-"}).groupby(["cohort", "site"])["case_id"].count()
    assert by_key.sort_index().to_dict() == expected.sort_index().to_dict()
    assert {"internal", "external"} <= set(shown["cohort"])
    assert {"B-north", "B-south"} <= set(shown["site"])  # the external cohort's sites
