"""`cervixscope bench`: every part in one call, one flat dict of numbers and settings."""

from __future__ import annotations

import torch

from core.bench import pages, scaling
from core.bench.children import run_child
from core.bench.features_cv import bench_features_cv
from core.bench.training_loop import bench_training_loop
from core.data.dataset import CropSet
from core.learning.config import RunConfig


def run_bench(
    crops: CropSet,
    *,
    model: str = "resnet18",
    n_folds: int = 10,
    device: str = "auto",
    steps: int = 20,
    batch_size: int = 64,
    skip: str | None = None,
    weights: str = "auto",
    db_path=None,
    page_scales=(1, 10),
) -> dict:
    """Both parts of the benchmark on ``crops``; a flat dict of numbers and settings.

    Parameters
    ----------
    crops : CropSet
    model, n_folds, device, weights : as in ``RunConfig``
    steps : int
        Training steps timed in part (a).
    batch_size : int
    skip : str, optional
        Letters of the parts to skip, e.g. ``"b"`` or ``"b,c,p"``: a (training loop), b (features
        CV against the obvious way), c (scaling), m (the bootstrap's memory), p (page renders;
        only with ``db_path``).
    db_path : path, optional
        The database whose pages part (p) renders (the demo's after ``cervixscope demo``).
    page_scales : tuple of int
        Part (p) renders every page on copies of that database with its cohort this many times
        as large (default 1x and 10x), each with a 20-reader study over every case.

    Returns
    -------
    dict
        ``machine, device, model, n_images, train_loop_images_per_s, bare_loop_images_per_s,
        loop_efficiency, cv_seconds_ours, cv_seconds_obvious, cv_speedup, auc_ours,
        auc_obvious, cv_speedup_ceiling``, ``scaling`` (rows of part c), ``table_*`` (m),
        ``page_scales`` (p: per scale, the cases, the page renders and the reader analysis); parts
        skipped are absent.
    """
    from core.bench.machine import machine_line
    from core.learning.training import resolve_device

    dev = resolve_device(device)
    out: dict = {
        "machine": machine_line(),
        "device": str(dev)
        + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "torch_threads": torch.get_num_threads(),
        "model": model,
        "n_images": crops.n_images,
        "crop_size": crops.crop_size,
    }
    base = RunConfig(model=model, weights=weights, device=device, crop_size=crops.crop_size)
    skipped = set((skip or "").replace(",", ""))
    if skipped - set("abcmp"):
        raise ValueError(f"--skip {skip!r}: expected letters of the parts a, b, c, m, p")
    if "a" not in skipped:
        cfg = base.replace(mode="finetune", batch_size=batch_size)
        out.update(bench_training_loop(crops, cfg, steps=steps, device=dev))
        out["batch_size"] = batch_size
    if "b" not in skipped:
        out.update(bench_features_cv(crops, base.replace(n_folds=n_folds), dev))
    out.update(_limit_parts(skipped, model, weights, device, n_folds, db_path, page_scales))
    return out


def _limit_parts(skipped: set, model, weights, device, n_folds, db_path, scales=(1, 10)) -> dict:
    """Parts c, m and p, each in child processes."""
    out: dict = {}
    if "c" not in skipped:
        rows = scaling.scaling(model=model, weights=weights, device=device, n_folds=n_folds)
        out["scaling"] = rows
        out.update({f"cv_over_embed_{r['scale']}x": r["limit_ratio"] for r in rows})
    if "m" not in skipped:
        out.update(run_child(["core.bench.memory"]))
    if "p" not in skipped and db_path is not None:
        out["page_scales"] = pages.at_scales(db_path, scales)
    return out
