"""Grad-CAM heat maps of a run's final model, with the maintained ``grad-cam`` package.

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
def _model(run_id: str, runs_dir: str | None, stamp: float):
    # ``stamp`` (the file's mtime) keys the cache, so a re-saved final model is reloaded.
    from core.learning.final_model import load_run_model

    model, _ = load_run_model(run_id, runs_dir=runs_dir)
    return model


def gradcam_map(model, crop: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM of ``class_index`` for one (h, w) crop: an (h, w) float array in [0, 1]."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from core.labels import CLASSES

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
    run_id: str, crop: np.ndarray, class_index: int, *, runs_dir: str | None = None
) -> np.ndarray:
    """Grad-CAM overlay of one crop for one class, from the final model of ``run_id``.

    Parameters
    ----------
    run_id : str
        A finished run (its ``runs/<run_id>/model.pt`` exists).
    crop : (h, w) float array in [0, 1]
        A lesion crop as ingestion makes it.
    class_index : int
        Index into ``core.labels.CLASSES``.
    runs_dir : str, optional

    Returns
    -------
    (h, w, 3) uint8 RGB array.
    """
    from core.learning.artifacts import model_path

    path = model_path(run_id, runs_dir)
    stamp = path.stat().st_mtime if path.exists() else -1.0
    model = _model(str(run_id), None if runs_dir is None else str(runs_dir), stamp)
    return overlay(crop, gradcam_map(model, crop, class_index))
