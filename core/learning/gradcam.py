"""Grad-CAM heat maps of a run's models, with the maintained ``grad-cam`` package.

Given a case, the map comes from the fold model that predicted that case and never trained on it
(``core.learning.fold_models``), the same model whose out-of-fold probabilities the reader sees;
without one, from the run's final model (trained on every case: for new images only).

The target layer is ``Net.info["cam_layer"]``: ResNet ``layer3`` (7x7 at 100x100 input; ``layer4``
is only 4x4), VGG16-BN's last conv block (6x6), the small CNN's third block (12x12). The package
upsamples the map to the crop size. In features mode the final model is the frozen backbone plus
an ``nn.Linear`` holding the logistic head (scaler folded in), so it is differentiable end to end.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch


@lru_cache(maxsize=4)
def _model(run_id: str, runs_dir: str | None, stamp: float, fold: int | None = None):
    # ``stamp`` (the file's mtime) keys the cache, so a re-saved model is reloaded.
    if fold is None:
        from core.learning.final_model import load_run_model

        return load_run_model(run_id, runs_dir=runs_dir)[0]
    from core.learning.fold_models import load_fold_model

    return load_fold_model(run_id, fold, runs_dir=runs_dir)[0]


def explaining_model(run_id: str, case_id: str | None = None, *, runs_dir: str | None = None):
    """The model a case's heat map comes from: ``(Net, fold)``; fold None means the final model.

    Raises
    ------
    FileNotFoundError
        For a case the run kept no fold model of (the final model saw it: no map is better).
    """
    from core.learning.artifacts import model_path

    fold = None
    path = model_path(run_id, runs_dir)
    if case_id is not None:
        from core.learning.fold_models import fold_model_dir, fold_of_case

        fold = fold_of_case(run_id, case_id, runs_dir)
        path = fold_model_dir(run_id, runs_dir) / f"fold_{fold}.pt"
    stamp = path.stat().st_mtime if path.exists() else -1.0
    runs = None if runs_dir is None else str(runs_dir)
    return _model(str(run_id), runs, stamp, fold), fold


def gradcam_map(model, crop: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM of ``class_index`` for one (h, w) crop: an (h, w) float array in [0, 1]."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from core.data.labels import CLASSES

    if not 0 <= int(class_index) < len(CLASSES):
        raise ValueError(f"class_index={class_index}: expected 0..{len(CLASSES) - 1} ({CLASSES})")
    crop = np.asarray(crop, dtype=np.float32)
    if crop.ndim != 2:
        raise ValueError(f"crop must be one (h, w) image, got shape {crop.shape}")
    layer = model.get_submodule(model.info["cam_layer"])
    x = torch.from_numpy(crop)[None, None]
    model.eval()
    with torch.enable_grad(), GradCAM(model=model, target_layers=[layer]) as cam:
        heat = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(class_index))])[0]
    return np.nan_to_num(heat.astype(np.float32))


def overlay(crop: np.ndarray, heat: np.ndarray, *, alpha: float = 0.4) -> np.ndarray:
    """The grey crop with the heat map blended on top: (h, w, 3) uint8 RGB."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    grey = np.clip(np.asarray(crop, dtype=np.float32), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    return show_cam_on_image(rgb, heat, use_rgb=True, image_weight=1 - alpha)


def gradcam_overlay(
    run_id: str,
    crop: np.ndarray,
    class_index: int,
    *,
    case_id: str | None = None,
    runs_dir: str | None = None,
) -> np.ndarray:
    """Grad-CAM overlay of one crop for one class, from the model of ``run_id`` that never saw
    ``case_id`` (its fold model), or from the final model when no case is given.

    Parameters
    ----------
    run_id : str
        A finished run (its ``runs/<run_id>/model.pt`` exists).
    crop : (h, w) float array in [0, 1]
        A lesion crop as ingestion makes it.
    class_index : int
        Index into ``core.data.labels.CLASSES``.
    case_id : str, optional
        The case the crop belongs to, when it is one of the run's cases (the reader's aided arm).
    runs_dir : str, optional

    Returns
    -------
    (h, w, 3) uint8 RGB array.

    Raises
    ------
    FileNotFoundError
        When the run kept no fold model for ``case_id``, or has no final model.
    """
    model, _ = explaining_model(run_id, case_id, runs_dir=runs_dir)
    return overlay(crop, gradcam_map(model, crop, class_index))
