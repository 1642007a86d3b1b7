"""The Ray executor against the local one on a features-mode comparison (``--ray``)."""

from __future__ import annotations

import time

import numpy as np

from core.data.dataset import CropSet
from core.learning.config import RunConfig


def bench_executors(
    crops: CropSet, *, models=("cnn", "resnet18"), n_folds: int = 10, weights: str = "auto"
) -> dict:
    """The Ray executor against the local one on a features-mode comparison.

    Both run the same comparison (``models``, features mode, ``n_folds``) into a scratch
    database with the embeddings already cached, so the figures are the fold tasks, the driver's
    storing and the final models. A local Ray instance is started on this machine's CPUs (its
    start-up is reported apart). The overhead per task is a fold task's round trip through Ray,
    one at a time, less the same fold computed in this process.

    Returns
    -------
    dict
        ``executor_tasks, ray_start_s, local_comparison_s, ray_comparison_s, ray_speedup,
        ray_overhead_per_task_s, ray_equals_local``.
    """
    import tempfile
    from pathlib import Path

    import db
    from core.data.labels import CLASSES
    from core.learning.compare import run_comparison
    from core.learning.executors import make_executor

    base = RunConfig(mode="features", weights=weights, n_folds=n_folds, crop_size=crops.crop_size)
    out: dict = {"executor_tasks": len(models) * n_folds}
    with tempfile.TemporaryDirectory(prefix="cervixscope-bench-") as tmp:
        tmp = Path(tmp)
        cases, labels = crops.cases()
        rows = [
            {"case_id": str(c), "label": CLASSES[int(y)]}
            for c, y in zip(cases, labels, strict=True)
        ]

        def compare(name, executor):
            conn = db.connect(tmp / f"{name}.db")
            db.upsert_cases(conn, rows)
            start = time.perf_counter()
            ids = run_comparison(
                crops, models, base, conn=conn, runs_dir=tmp / name, cache_dir=tmp / "cache",
                executor=executor,
            )  # fmt: skip
            seconds = time.perf_counter() - start
            oof = db.predictions_frame(conn, ids).sort_values(["model", "case_id"])
            return seconds, oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy()

        compare("warm-up", None)  # fills the embedding cache for both
        out["local_comparison_s"], local = compare("local", None)
        t0 = time.perf_counter()
        ray_executor = make_executor("ray")
        out["ray_start_s"] = time.perf_counter() - t0
        try:
            out["ray_comparison_s"], on_ray = compare("ray", ray_executor)
            out["ray_overhead_per_task_s"] = _ray_overhead(crops, base, ray_executor, tmp)
        finally:
            ray_executor.close()
    out["ray_speedup"] = out["local_comparison_s"] / out["ray_comparison_s"]
    out["ray_equals_local"] = bool(np.array_equal(local, on_ray))
    return out


def _ray_overhead(crops: CropSet, cfg: RunConfig, executor, tmp) -> float:
    """Mean seconds a fold task spends in Ray (submit, schedule, ship, return), one at a time."""
    from core.learning.executors import FoldData, FoldTask, compute_fold
    from core.learning.features import embed_cropset
    from core.learning.folds import make_folds
    from core.learning.models import build_model
    from core.learning.training import seed_everything

    cfg = cfg.replace(model="resnet18")
    seed_everything(cfg.seed)
    model, _ = build_model(cfg)
    embeddings, _ = embed_cropset(crops, model, cfg, cache_dir=tmp / "cache")
    fold_of = make_folds(crops.case_ids, crops.labels, n_splits=cfg.n_folds, seed=cfg.seed)
    data = FoldData(crops, embeddings, fold_of, 0.0)
    shared = executor.share(data)
    extra = []
    for fold in range(cfg.n_folds):
        t0 = time.perf_counter()
        compute_fold(data, cfg, fold)
        local = time.perf_counter() - t0
        t0 = time.perf_counter()
        list(executor.map([FoldTask(0, shared, cfg, fold)]))
        extra.append(time.perf_counter() - t0 - local)
    return float(np.mean(extra))
