"""Every number says how it was made: the Overview, the results page's header, report.html,
runs.csv and predictions.csv spell out the weights really used, the run's warnings and synthetic
data, on a copy of the real evaluation database (see conftest.py)."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import db
from dashboard.auth import Identity
from dashboard.report import build_report

ROOT = Path(__file__).resolve().parents[2]
OFFLINE = "ImageNet weights unavailable (offline): resnet18 uses random initialisation"


@pytest.fixture
def warned_env(eval_db, tmp_path, monkeypatch):
    """The evaluation database and run summaries copied, with the offline-fallback warning on
    the resnet18 run (as an offline ``--weights auto`` run records it)."""
    work = tmp_path / "work"
    shutil.copytree(eval_db.workdir, work, ignore=shutil.ignore_patterns("*.pt"))
    conn = db.connect(work / "cervixscope.db")
    try:
        runs = db.runs_frame(conn)
        resnet = str(runs.loc[runs["model"] == "resnet18", "run_id"].iloc[0])
        db.add_run_warning(conn, resnet, OFFLINE)
        n_cases = len(db.cases_frame(conn))
        assert db.cases_frame(conn)["synthetic"].all()  # the demo cohort is synthetic
    finally:
        conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(work / "cervixscope.db"))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(work))  # where the run summaries are
    monkeypatch.chdir(work)
    return work, resnet, n_cases


def _open(page: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_overview_spells_out_weights_warnings_auc_and_synthetic_data(warned_env):
    _, resnet, n_cases = warned_env
    at = _open("overview")
    table = next(d.value for d in at.dataframe if "weights_used" in d.value.columns)
    row = table.set_index("run_id").loc[resnet]
    assert row["weights_used"] == "random initialisation"  # requested "none", used random
    assert OFFLINE in row["warnings"].split("; ")  # beside the folds' SMOTE notes
    assert row["data"] == f"synthetic (all {n_cases} cases)"
    assert row["auc_macro_95ci"].count("(") == 1 and "–" in row["auc_macro_95ci"]
    summary = pd.read_csv(Path("runs") / resnet / "summary.csv")
    auc = summary[(summary["scope"] == "macro") & (summary["metric"] == "auc")].iloc[0]
    assert row["auc_macro_95ci"].startswith(f"{auc['value']:.3f} ({auc['ci_low']:.3f}")
    assert not (table == "None").any().any() and not table["message"].isna().any()


def test_results_header_shows_the_warnings_of_the_chosen_runs(warned_env):
    at = _open("cv_results")
    warnings = [w.value for w in at.warning]
    assert any(OFFLINE in w for w in warnings)
    assert any("randomly initialised" in w for w in warnings)
    assert any("backbone weights: random initialisation" in c.value for c in at.caption)


def test_report_html_runs_csv_and_predictions_csv_carry_the_provenance(warned_env):
    _, resnet, n_cases = warned_env
    conn = db.connect("cervixscope.db")
    try:
        runs = db.runs_frame(conn)
        predictions = db.predictions_frame(conn, list(runs["run_id"]))
        cases = db.cases_frame(conn)
    finally:
        conn.close()
    report = build_report(predictions, runs, cases=cases, n_boot=20)
    assert OFFLINE in report.html
    assert "Synthetic data:" in report.html and f"synthetic (all {n_cases} cases)" in report.html
    assert "randomly initialised" in report.html
    table = pd.read_csv(io.StringIO(report.csvs["runs.csv"])).set_index("run_id")
    assert table.loc[resnet, "weights_used"] == "random initialisation"
    assert OFFLINE in table.loc[resnet, "warnings"].split("; ")
    assert table.loc[resnet, "data"] == f"synthetic (all {n_cases} cases)"
    rows = pd.read_csv(io.StringIO(report.csvs["predictions.csv"]))
    assert rows["synthetic"].all()
    assert (
        rows.loc[rows["run_id"] == resnet, "run_warnings"].str.contains(OFFLINE, regex=False).all()
    )
    assert (rows.loc[rows["run_id"] == resnet, "weights_used"] == "random initialisation").all()
    assert set(rows["weights_used"]) == {"random initialisation", "none (trained from scratch)"}
