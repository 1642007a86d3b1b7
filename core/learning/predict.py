"""Prediction with a run's final model (see ``core.learning.final_model``): a new DICOM lesion
is cropped exactly as ingestion crops it, then classified."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from core.labels import CLASSES
from core.learning.final_model import load_run_model


def predict_crops(model, crops: np.ndarray) -> np.ndarray:
    """(n, n_classes) probabilities of (n, h, w) crops in [0, 1]."""
    from core.learning.training import predict_proba

    return predict_proba(model, np.asarray(crops, dtype=np.float32), device=torch.device("cpu"))


def predict_case(
    path: str | Path,
    roi,
    *,
    run_id: str,
    conn=None,
    frame: int = 0,
    margin: float = 0.1,
    runs_dir: str | Path | None = None,
) -> dict[str, float]:
    """Class probabilities of one DICOM lesion from a run's final model.

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

    Returns
    -------
    dict
        ``{"SCC": p, "AC": p, "ASC": p}``, summing to 1.
    """
    if conn is not None:
        import db

        db.get_run(conn, run_id)
    roi = parse_roi(roi)
    model, cfg = load_run_model(run_id, runs_dir=runs_dir)
    crop = crop_from_dicom(path, roi, frame=frame, crop_size=cfg.crop_size, margin=margin)
    proba = predict_crops(model, crop[None])[0]
    return {name: float(p) for name, p in zip(CLASSES, proba, strict=True)}


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
