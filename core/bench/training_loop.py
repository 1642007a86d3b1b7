"""Part (a): images/s of ``core.learning.training.finetune`` (indexing, per-sample augmentation,
schedule) against a bare forward/backward/step loop on one random batch of the same shape. The
ratio is the loop's efficiency (target >= 0.8 on a GPU)."""

from __future__ import annotations

import torch

from core.data.dataset import CropSet
from core.learning.config import RunConfig


def bench_training_loop(
    crops: CropSet, cfg: RunConfig, *, steps: int = 20, device=None
) -> dict[str, float]:
    """Part (a): images/s of the fine-tuning loop and of the bare loop, and their ratio."""
    from core.learning.models import build_model
    from core.learning.training import bare_loop_images_per_second, finetune, resolve_device

    device = device or resolve_device(cfg.device)
    n = min(crops.n_images, steps * cfg.batch_size)
    x, y = crops.crops[:n], crops.labels[:n]
    torch.manual_seed(cfg.seed)
    model, _ = build_model(cfg)
    warm = cfg.replace(epochs=1)
    finetune(model, x[: cfg.batch_size], y[: cfg.batch_size], warm, device=device)  # warm-up
    epochs = max(1, round(steps * cfg.batch_size / n))
    fit = finetune(model, x, y, cfg.replace(epochs=epochs), device=device)
    model, _ = build_model(cfg)
    bare = bare_loop_images_per_second(
        model,
        size=crops.crop_size,
        batch_size=cfg.batch_size,
        steps=steps,
        device=device,
        amp=cfg.amp,
    )
    return {
        "train_loop_images_per_s": fit.images_per_second,
        "bare_loop_images_per_s": bare,
        "loop_efficiency": fit.images_per_second / bare,
    }
