"""Prediction with a run's final model (see ``core.learning.final_model``) or the ensemble of its
fold models (``core.learning.fold_models``): a new DICOM lesion is cropped exactly as ingestion
crops it, then classified; the answer says which model made it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.data.labels import CLASSES
from core.learning.final_model import load_run_model


def predict_crops(model, crops: np.ndarray) -> np.ndarray:
    """(n, n_classes) probabilities of (n, h, w) crops in [0, 1]."""
    from core.learning.training import predict_proba

    return predict_proba(model, np.asarray(crops, dtype=np.float32), device=torch.device("cpu"))


PREDICT_MODELS = ("final", "ensemble")


@dataclass
class Prediction:
    """Class probabilities of one lesion and the model that made them, in words."""

    probabilities: dict[str, float]
    source: str


def predict_case(path: str | Path, roi, *, run_id: str, **options) -> dict[str, float]:
    """``classify_case(...).probabilities``: the class probabilities alone."""
    return classify_case(path, roi, run_id=run_id, **options).probabilities


def classify_case(
    path: str | Path,
    roi,
    *,
    run_id: str,
    conn=None,
    frame: int = 0,
    margin: float = 0.1,
    runs_dir: str | Path | None = None,
    model: str = "final",
) -> Prediction:
    """Class probabilities of one DICOM lesion from a run's final model or its fold ensemble.

    Parameters
    ----------
    path : path
        A DICOM file (T2 sagittal slice).
    roi : (x0, y0, x1, y1) or "x0,y0,x1,y1"
        Lesion box in pixel columns/rows of the image.
    run_id : str
    conn : sqlite_utils.Database, optional
        When given, the run must exist there (``db.RunNotFound`` otherwise).
    frame : int, default 0
    margin : float, default 0.1
        Context around the ROI, as in ``core.data.ingest.ingest_folder`` (keep them equal).
    runs_dir : path, optional
    model : {"final", "ensemble"}
        The final model (trained on every case once the folds were done), or the mean of the
        fold models' probabilities.

    Returns
    -------
    Prediction
        ``probabilities`` ``{"SCC": p, "AC": p, "ASC": p}`` summing to 1, and ``source``.
    """
    if model not in PREDICT_MODELS:
        raise ValueError(f"model={model!r}: expected one of {', '.join(PREDICT_MODELS)}")
    if conn is not None:
        import db

        db.get_run(conn, run_id)
    roi = parse_roi(roi)
    final, cfg = load_run_model(run_id, runs_dir=runs_dir)
    crop = crop_from_dicom(path, roi, frame=frame, crop_size=cfg.crop_size, margin=margin)
    if model == "final":
        proba = predict_crops(final, crop[None])[0]
        source = f"final model of run {run_id} (trained on all its cases)"
    else:
        from core.learning.fold_models import load_fold_ensemble

        members = load_fold_ensemble(run_id, runs_dir=runs_dir)
        if not members:
            raise FileNotFoundError(
                f"run {run_id} kept no fold models: use --model final, or run it again"
            )
        proba = np.mean([predict_crops(m, crop[None])[0] for m in members], axis=0)
        source = f"ensemble of the {len(members)} fold models of run {run_id} (mean probability)"
    probs = {name: float(p) for name, p in zip(CLASSES, proba, strict=True)}
    return Prediction(probs, source)


def crop_from_dicom(path, roi, *, frame: int = 0, crop_size: int = 100, margin: float = 0.1):
    """The (crop_size, crop_size) crop of a DICOM file, made exactly as ingestion makes it."""
    from core.data.dicom_io import read_pixels
    from core.data.transforms import box_inside, lesion_crop

    image = read_pixels(path, frame)
    if not box_inside(roi, image.rows, image.cols):
        text = ",".join(str(v) for v in roi)
        raise ValueError(f"{path}: ROI {text} lies outside the {image.cols}x{image.rows} image")
    return lesion_crop(crop_size=crop_size, margin=margin)(image.array, roi)


def parse_roi(roi) -> tuple[int, int, int, int]:
    """``"x0,y0,x1,y1"`` or a 4-sequence -> ints, with x1 > x0 and y1 > y0."""
    parts = roi.split(",") if isinstance(roi, str) else list(roi)
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in parts)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"ROI {roi!r}: expected four numbers x0,y0,x1,y1") from exc
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"ROI {roi!r}: needs x1 > x0 and y1 > y0")
    return x0, y0, x1, y1
