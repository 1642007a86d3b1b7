"""The final model of a run (trained on all data once its folds are done) and prediction with it.

``runs/<run_id>/model.pt`` holds one ``core.learning.models.Net`` state dict whose linear head is the
fitted classifier (in features mode the logistic head with its scaler folded in), plus the run's
``RunConfig``; ``load_run_model`` rebuilds it without any network access.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from core.data.dataset import CropSet
from core.labels import CLASSES
from core.learning.config import RunConfig

MODEL_FILE = "model.pt"


def train_final_model(
    crops: CropSet, cfg: RunConfig, *, run_dir: str | Path, embeddings: np.ndarray | None = None
) -> Path:
    """Fit ``cfg``'s model on every image of ``crops`` and save it as ``run_dir/model.pt``.

    Parameters
    ----------
    crops : CropSet
    cfg : RunConfig
    run_dir : path
    embeddings : array, optional
        Features mode: the embeddings of ``crops`` already computed by the run.

    Returns
    -------
    Path of the saved file.
    """
    from core.learning.cv import LinearHead, inner_split
    from core.learning.models import build_model
    from core.learning.training import finetune, resolve_device, seed_everything

    seed_everything(cfg.seed, deterministic=cfg.deterministic)
    model, _ = build_model(cfg)  # same seed as the run: random-init backbones match its embeddings
    if cfg.mode == "features":
        if embeddings is None:
            from core.learning.features import embed_cropset

            embeddings, _ = embed_cropset(crops, model, cfg)
        head = LinearHead(cfg, seed=cfg.seed).fit(embeddings, crops.labels)
        w, b = head.as_linear()
        with torch.no_grad():
            model.head.weight.copy_(torch.from_numpy(w).float())
            model.head.bias.copy_(torch.from_numpy(b).float())
    else:
        val = inner_split(crops.case_ids, crops.labels, fraction=cfg.val_fraction, seed=cfg.seed)
        finetune(
            model,
            crops.crops[~val],
            crops.labels[~val],
            cfg,
            x_val=crops.crops[val],
            y_val=crops.labels[val],
            device=resolve_device(cfg.device),
        )
    path = Path(run_dir) / MODEL_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"config": cfg.to_dict(), "info": model.info, "state": model.cpu().state_dict()}, path
    )
    return path


def load_run_model(run_id: str, *, runs_dir: str | Path | None = None):
    """The final ``Net`` of a run (eval mode, CPU) and its ``RunConfig``.

    Raises
    ------
    FileNotFoundError
        If the run has no saved final model (not finished, or trained elsewhere).
    """
    from core.learning.cv import RUNS_DIR
    from core.learning.models import build_model

    path = Path(runs_dir or RUNS_DIR) / str(run_id) / MODEL_FILE
    if not path.exists():
        raise FileNotFoundError(
            f"run {run_id} has no final model at {path}: it is saved when all folds are done"
        )
    saved = torch.load(path, map_location="cpu", weights_only=True)
    cfg = RunConfig.from_dict(saved["config"]).replace(weights="none")  # the state has them
    model, _ = build_model(cfg)
    model.load_state_dict(saved["state"])
    model.info = saved.get("info", model.info)
    return model.eval(), cfg


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


def run_config(run_dir: str | Path) -> RunConfig:
    return RunConfig.from_dict(json.loads((Path(run_dir) / "config.json").read_text()))
