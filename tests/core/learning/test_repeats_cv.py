"""Repeated cross-validation: --repeats 3 stores three runs of one repeat group (fold seeds seed,
seed+1, seed+2), and the results page shows each repeat's pooled metrics with their spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from streamlit.testing.v1 import AppTest

import db
from core.cli import main
from core.data.labels import CLASSES
from dashboard.auth import Identity

ROOT = Path(__file__).resolve().parents[3]
PROBS = [f"p_{c}" for c in CLASSES]


@pytest.fixture(scope="module")
def repeated(tmp_path_factory, small_cohort_dir) -> Path:
    tmp = tmp_path_factory.mktemp("repeats")
    path = tmp / "r.db"
    argv = [
        "--db", str(path), "--home", str(tmp / "home"), "--quiet", "cv",
        "--data", str(small_cohort_dir), "--model", "resnet18", "--weights", "none",
        "--folds", "3", "--seed", "5", "--repeats", "3",
    ]  # fmt: skip
    assert main(argv) == 0
    return path


def _macro_auc(part: pd.DataFrame) -> float:
    y = part["label"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy()
    return roc_auc_score(y, part[PROBS].to_numpy(), multi_class="ovr", average="macro")


def test_three_repeats_are_stored_as_one_group_with_consecutive_fold_seeds(repeated):
    conn = db.connect(repeated)
    runs = db.runs_frame(conn).sort_values("repeat_index")
    assert len(runs) == 3 and runs["repeat_group"].nunique() == 1
    assert runs["repeat_index"].tolist() == [0, 1, 2]
    assert runs["seed"].tolist() == [5, 6, 7]
    assert (runs["status"] == "done").all()
    oof = db.predictions_frame(conn, list(runs["run_id"]))
    folds = oof.pivot(index="case_id", columns="run_id", values="fold")
    assert folds.notna().all().all()  # every repeat predicts every case once
    assert not (folds.nunique(axis=1) == 1).all()  # ... on other splits


def test_results_page_shows_each_repeat_and_the_spread(repeated, monkeypatch):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(repeated))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/cv_results.py")
    at.run()
    assert not at.exception and not at.error
    assert any("spread across repeats" in h.value for h in at.subheader)
    shown = next(d.value for d in at.dataframe if "repeat" in d.value.columns)

    conn = db.connect(repeated)
    runs = db.runs_frame(conn).sort_values("repeat_index")
    oof = db.predictions_frame(conn, list(runs["run_id"]))
    truth = [_macro_auc(oof[oof["run_id"] == r]) for r in runs["run_id"]]  # independent: sklearn
    assert shown["repeat"].tolist() == ["1", "2", "3", "mean", "SD", "min", "max"]
    np.testing.assert_allclose(shown["auc"].iloc[:3].astype(float), truth, rtol=1e-9)
    stats = shown.set_index("repeat")["auc"].astype(float)
    np.testing.assert_allclose(stats["mean"], np.mean(truth), rtol=1e-9)
    np.testing.assert_allclose(stats["SD"], np.std(truth, ddof=1), rtol=1e-9)
    assert stats["min"] == min(truth) and stats["max"] == max(truth)


def test_report_shows_the_spread_across_repeats(repeated):
    from dashboard.report import build_report

    conn = db.connect(repeated)
    runs = db.runs_frame(conn)
    predictions = db.predictions_frame(conn, list(runs["run_id"]))
    page = build_report(predictions, runs, n_boot=50).html
    assert "Repeated cross-validation: spread across repeats" in page
    section = page.split("spread across repeats")[1].split("<h2>")[0]
    for row in ("mean", "SD", "min", "max"):
        assert f"<td>{row}</td>" in section
