"""Fold models kept with a run: the AI-aided arm explains a case with the model that never saw it,
and ``predict`` can use the ensemble of the fold models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import db
from core.data.ingest import ingest_folder
from core.data.labels import CLASSES
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.learning.final_model import load_run_model
from core.learning.fold_models import fold_cases, fold_of_case, load_fold_model
from core.learning.gradcam import gradcam_map, overlay
from core.learning.predict import classify_case, predict_crops

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run_in_home(small_cohort_dir, tmp_path_factory):
    """A finished features-mode run whose files live under a project home, as the dashboard's."""
    home = tmp_path_factory.mktemp("home")
    patch = pytest.MonkeyPatch()
    patch.setenv("CERVIXSCOPE_HOME", str(home))  # the heat-map worker process inherits it
    conn = db.connect(home / "t.db")
    crops = ingest_folder(small_cohort_dir, conn=conn, progress=False).crops
    cfg = RunConfig(model="cnn", weights="none", n_folds=3, embed_batch_size=32)
    run_id = run_cv(crops, cfg, conn=conn, cache_dir=home / "cache")
    yield conn, run_id, crops
    patch.undo()


def test_every_case_has_one_fold_model_that_never_trained_on_it(run_in_home):
    conn, run_id, crops = run_in_home
    folds = fold_cases(run_id)
    assert sorted(folds) == [0, 1, 2]
    oof = db.predictions_frame(conn, run_id)
    for fold, record in folds.items():
        assert not set(record["train_cases"]) & set(record["test_cases"])
        assert set(record["test_cases"]) == set(oof.loc[oof["fold"] == fold, "case_id"])
    assert set().union(*(r["test_cases"] for r in folds.values())) == set(crops.case_ids)


def test_aided_arm_heat_map_and_probabilities_come_from_the_fold_model_that_never_saw_the_case(
    run_in_home,
):
    from core.reader_study.viewing import case_crop, model_view

    conn, run_id, crops = run_in_home
    case_id = str(crops.case_ids[0])
    fold = fold_of_case(run_id, case_id)
    assert case_id not in fold_cases(run_id)[fold]["train_cases"]  # independent of the lookup
    assert case_id in fold_cases(run_id)[fold]["test_cases"]

    crop = case_crop(conn, case_id)
    shown = model_view(conn, run_id, case_id, crop, True)  # what the aided arm receives
    assert "gradcam" in shown, shown.get("gradcam_problem")

    fold_model, _ = load_fold_model(run_id, fold)
    # Probabilities: the fold model on the case's own slices, averaged as the run does.
    expected = predict_crops(fold_model, crops.crops[crops.case_ids == case_id]).mean(0)
    got = [shown["model_probabilities"][c] for c in CLASSES]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Heat map: the fold model's Grad-CAM of the top class, not the final model's.
    top = int(np.argmax(got))
    fold_map = overlay(crop, gradcam_map(fold_model, crop, top))
    final_model, _ = load_run_model(run_id)
    final_map = overlay(crop, gradcam_map(final_model, crop, top))
    assert np.abs(shown["gradcam"].astype(int) - fold_map.astype(int)).max() <= 1
    assert np.abs(shown["gradcam"].astype(int) - final_map.astype(int)).max() > 1


def test_predict_says_which_model_and_the_ensemble_is_the_mean_of_the_fold_models(
    run_in_home, small_cohort_dir
):
    conn, run_id, crops = run_in_home
    row = pd.read_csv(small_cohort_dir / "manifest.csv").iloc[3]
    roi = f"{row.x0},{row.y0},{row.x1},{row.y1}"
    path = small_cohort_dir / row.path
    final = classify_case(path, roi, run_id=run_id, conn=conn)
    ensemble = classify_case(path, roi, run_id=run_id, conn=conn, model="ensemble")
    assert "final model" in final.source
    assert "ensemble of the 3 fold models" in ensemble.source
    index = crops.image_ids.tolist().index(f"internal/{row.patient_id}:{row.path}#{row.frame}")
    members = [load_fold_model(run_id, f)[0] for f in range(3)]
    expected = np.mean([predict_crops(m, crops.crops[index : index + 1])[0] for m in members], 0)
    np.testing.assert_allclose([ensemble.probabilities[c] for c in CLASSES], expected, atol=1e-5)
    with pytest.raises(ValueError, match="model='best': expected one of final, ensemble"):
        classify_case(path, roi, run_id=run_id, model="best")
