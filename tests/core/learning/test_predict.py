"""Final model of a run, `predict_case` on a real DICOM file, and Grad-CAM overlays."""

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
from core.learning.gradcam import gradcam_map, gradcam_overlay
from core.learning.predict import parse_roi, predict_case, predict_crops

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def finished_run(small_cohort_dir, tmp_path_factory):
    """A features-mode run on the small ingested cohort, with its final model saved."""
    root = tmp_path_factory.mktemp("predict")
    conn = db.connect(root / "t.db")
    crops = ingest_folder(small_cohort_dir, conn=conn, progress=False).crops
    cfg = RunConfig(weights="none", n_folds=3, embed_batch_size=32)
    run_id = run_cv(crops, cfg, conn=conn, runs_dir=root / "runs", cache_dir=root / "cache")
    return conn, run_id, root / "runs", crops


def test_predict_case_crops_the_dicom_like_ingestion_and_uses_the_final_model(
    finished_run, small_cohort_dir
):
    conn, run_id, runs_dir, crops = finished_run
    row = pd.read_csv(small_cohort_dir / "manifest.csv").iloc[4]
    roi = f"{row.x0},{row.y0},{row.x1},{row.y1}"
    probs = predict_case(
        small_cohort_dir / row.path, roi, run_id=run_id, conn=conn, runs_dir=runs_dir
    )
    assert list(probs) == list(CLASSES)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
    # Same numbers as the final model on the crop ingestion made of that image.
    index = crops.image_ids.tolist().index(f"internal/{row.patient_id}:{row.path}#{row.frame}")
    model, cfg = load_run_model(run_id, runs_dir=runs_dir)
    expected = predict_crops(model, crops.crops[index : index + 1])[0]
    np.testing.assert_allclose([probs[c] for c in CLASSES], expected, atol=1e-5)
    assert cfg.model == "resnet18"


def test_final_model_in_features_mode_reproduces_the_logistic_head(finished_run):
    """The saved Net (backbone + nn.Linear from the head) equals embed -> scaler -> LR."""
    from core.learning.features import embed_cropset
    from core.learning.heads import LinearHead
    from core.learning.models import build_model
    from core.learning.training import seed_everything

    _, run_id, runs_dir, crops = finished_run
    model, cfg = load_run_model(run_id, runs_dir=runs_dir)
    seed_everything(cfg.seed)
    fresh, _ = build_model(cfg)
    emb, _ = embed_cropset(crops, fresh, cfg, cache_dir=False)
    head = LinearHead(cfg, seed=cfg.seed).fit(emb, crops.labels)
    np.testing.assert_allclose(
        predict_crops(model, crops.crops[:10]), head.predict_proba(emb[:10]), atol=1e-4
    )


def test_predict_errors_name_the_problem(finished_run, small_cohort_dir):
    conn, run_id, runs_dir, _ = finished_run
    path = small_cohort_dir / "DEMO-0001" / "IM0001.dcm"
    with pytest.raises(ValueError, match=r"ROI '5,5,2,9': needs x1 > x0"):
        parse_roi("5,5,2,9")
    with pytest.raises(ValueError, match=r"lies outside the \d+x\d+ image"):
        predict_case(path, "0,0,5000,40", run_id=run_id, conn=conn, runs_dir=runs_dir)
    with pytest.raises(db.RunNotFound):
        predict_case(path, "50,50,80,80", run_id="nope", conn=conn, runs_dir=runs_dir)
    with pytest.raises(FileNotFoundError, match="has no final model"):
        predict_case(path, "50,50,80,80", run_id="nope", runs_dir=runs_dir)


def test_gradcam_overlay_is_an_rgb_image_of_the_crop(finished_run):
    _, run_id, runs_dir, crops = finished_run
    crop = crops.crops[0]
    image = gradcam_overlay(run_id, crop, 2, runs_dir=runs_dir)
    assert image.shape == (*crop.shape, 3) and image.dtype == np.uint8
    model, _ = load_run_model(run_id, runs_dir=runs_dir)
    heat = gradcam_map(model, crop, 2)
    assert heat.shape == crop.shape and 0 <= heat.min() and heat.max() <= 1
    assert heat.std() > 0  # a map, not a constant
    with pytest.raises(ValueError, match="class_index=3"):
        gradcam_map(model, crop, 3)
