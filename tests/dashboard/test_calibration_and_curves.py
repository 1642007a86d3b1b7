"""The results page's calibration section (Brier, ECE with patient-bootstrap CIs, reliability) and
training curves (per-epoch losses stored per fold of a real fine-tuning run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

import db
from core.data.labels import CLASS_INDEX
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.statistics.calibration import calibration_summary
from dashboard.auth import Identity

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def finetuned(eval_db, small_crops, tmp_path_factory):
    """The evaluation database copied, plus a short real fine-tuning run."""
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("curves")
    shutil.copytree(eval_db.workdir, work / "w", ignore=shutil.ignore_patterns("*.pt"))
    work = work / "w"
    conn = db.connect(work / "cervixscope.db")
    cfg = RunConfig(
        model="cnn", mode="finetune", weights="none", n_folds=3, epochs=3, patience=5,
        batch_size=32, augment=False, device="cpu",
    )  # fmt: skip
    run_id = run_cv(small_crops, cfg, conn=conn, runs_dir=work / "runs", final_model=False)
    folds = db.folds_frame(conn, run_id)
    predictions = db.predictions_frame(conn, run_id)
    conn.close()
    return work, run_id, folds, predictions


def _open(work: Path, monkeypatch) -> AppTest:
    monkeypatch.setenv("CERVIXSCOPE_DB", str(work / "cervixscope.db"))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(work))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/cv_results.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_each_fold_stores_its_per_epoch_losses(finetuned):
    _, _, folds, _ = finetuned
    for metrics in folds["metrics"]:
        history = metrics["history"]
        assert [h["epoch"] for h in history] == list(range(metrics["epochs_run"]))
        assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in history)


def test_results_page_shows_calibration_and_training_curves(finetuned, monkeypatch):
    work, run_id, folds, predictions = finetuned
    at = _open(work, monkeypatch)
    # the page opens on the newest complete comparison; choose the fine-tuning run
    at.multiselect(key="cv_runs").set_value([run_id]).run()
    assert not at.exception, [e.value for e in at.exception]
    table = next(d.value for d in at.dataframe if "brier macro" in d.value.columns)
    y_true = predictions["label"].map(CLASS_INDEX).to_numpy()
    y_score = predictions[["p_SCC", "p_AC", "p_ASC"]].to_numpy()
    truth = calibration_summary(y_true, y_score, n_boot=1000).set_index(["metric", "scope"])
    for metric in ("brier", "ece"):
        row = truth.loc[(metric, "macro")]
        expected = f"{row['value']:.3f} ({row['ci_low']:.3f}–{row['ci_high']:.3f})"
        assert table[f"{metric} macro"].iloc[0] == expected
    captions = [c.value for c in at.caption]
    assert any("95% CIs from 1000 bootstrap resamples of patients" in c for c in captions)
    assert any("training loss (solid) and inner-validation loss (dashed)" in c for c in captions)
    assert not any("No training curves" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) >= 5  # ROC, 2 confusions, folds, reliability, curves
    side = next(d.value for d in at.dataframe if "per-fold mean ± SD" in d.value.columns)
    auc = side.set_index("metric").loc["auc"]
    assert auc["per-fold mean ± SD"].startswith(f"{np.nanmean(folds['auc_macro']):.3f} ± ")
    assert any("can therefore differ" in c for c in captions)


def test_a_features_run_says_it_has_no_training_curves(finetuned, monkeypatch):
    work, run_id, _, _ = finetuned
    at = _open(work, monkeypatch)
    others = [r for r in at.multiselect(key="cv_runs").options if run_id not in r]
    assert others
    conn = db.connect(work / "cervixscope.db")
    features = db.runs_frame(conn).query("mode == 'features'")["run_id"].iloc[0]
    conn.close()
    at.multiselect(key="cv_runs").set_value([features]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No training curves" in i.value for i in at.info)
    assert any("brier macro" in d.value.columns for d in at.dataframe)
