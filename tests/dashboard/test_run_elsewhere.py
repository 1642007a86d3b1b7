"""A run made by `cervixscope cv` from any working directory is found by the dashboard opened on
the same database: its model and Grad-CAM in the case browser. A model that is really missing is
explained truthfully, naming the path looked at."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import db
from dashboard.auth import Identity
from tests.dashboard.gradcam_wait import settle_gradcam

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run_elsewhere(small_cohort_dir, tmp_path_factory):
    """`cervixscope cv` run with the working directory in one folder, the database in another,
    and no CERVIXSCOPE_HOME: the project home is the database's folder."""
    data_home = tmp_path_factory.mktemp("project")
    somewhere = tmp_path_factory.mktemp("somewhere_else")
    env = {k: v for k, v in os.environ.items() if k != "CERVIXSCOPE_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    argv = [
        sys.executable, "-m", "core.cli", "--db", str(data_home / "cervixscope.db"), "--quiet",
        "cv", "--data", str(small_cohort_dir), "--model", "cnn", "--folds", "3",
        "--weights", "none", "--run-id", "elsewhere",
    ]  # fmt: skip
    done = subprocess.run(argv, cwd=somewhere, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not (somewhere / "runs").exists() and not (somewhere / "cache").exists()
    assert (data_home / "runs" / "elsewhere" / "model.pt").is_file()
    return data_home


def _case_browser(db_path: Path, monkeypatch, cwd: Path) -> AppTest:
    monkeypatch.setenv("CERVIXSCOPE_DB", str(db_path))
    monkeypatch.chdir(cwd)
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=300)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/case_browser.py")
    settle_gradcam(at.run())
    assert not at.exception, [e.value for e in at.exception]
    return at


def _captions(at: AppTest) -> list[str]:
    return [c.caption for image in at.get("image") for c in image.proto.imgs]


def test_the_dashboard_finds_the_model_and_grad_cam_of_a_run_made_elsewhere(
    run_elsewhere, monkeypatch, tmp_path
):
    monkeypatch.delenv("CERVIXSCOPE_HOME")
    at = _case_browser(run_elsewhere / "cervixscope.db", monkeypatch, cwd=tmp_path)
    assert at.selectbox(key="browse_run_pick").value == "elsewhere"
    assert any(c.startswith("Grad-CAM: ") for c in _captions(at)), [i.value for i in at.info]
    assert not [i.value for i in at.info if "No Grad-CAM" in i.value]


def test_a_missing_model_names_the_path_and_the_true_reason(run_elsewhere, monkeypatch, tmp_path):
    from core.reader_study import heatmaps

    other_home = tmp_path / "other_home"
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(other_home))  # as if started with another --home
    heatmaps._FAILED.clear()
    at = _case_browser(run_elsewhere / "cervixscope.db", monkeypatch, cwd=tmp_path)
    (said,) = [i.value for i in at.info if "No Grad-CAM" in i.value]
    assert str(other_home / "runs" / "elsewhere") in said
    assert "there is no folder" in said and "another project home" in said
    assert "saved when all folds are done" not in said
    conn = db.connect(run_elsewhere / "cervixscope.db")
    assert db.get_run(conn, "elsewhere")["status"] == "done"  # the run itself is fine
    conn.close()
