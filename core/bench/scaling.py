"""Part (c): features-mode CV against its limit, and how it scales.

One embedding pass over every image is the least a features-mode CV can cost on a CPU: the
ratio (CV total time) / (embedding time) is 1.0 at the limit (target <= 1.3). Measured at 1x, 2x
and 4x the demo cohort (641, 1,282, 2,564 patients), each in a fresh interpreter so its peak
resident memory is its own; the scaling table reads "linear" when seconds and the memory above
the interpreter's baseline grow in proportion to the images.

Child usage (what :func:`scaling` spawns): python -m core.bench.scaling DIR MODEL WEIGHTS DEVICE
FOLDS; it prints one line ``BENCH {json}``.
"""

from __future__ import annotations

import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from core.bench.children import peak_mb, print_result, run_child
from core.data.dataset import CropSet, mean_by_case
from core.learning.config import RunConfig


def case_auc(crops: CropSet, proba: np.ndarray) -> float:
    from core.statistics import metrics

    cases, mean = mean_by_case(crops.case_ids, proba)
    _, labels = crops.cases()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metrics.roc_auc_ovr(labels, mean, average="macro"))


def features_cv_ours(
    crops: CropSet, cfg: RunConfig, *, device=None, timings: dict | None = None
) -> tuple[np.ndarray, float]:
    """Features-mode CV as ``core.learning.cv`` does it, without the database: embed once, then a
    head per fold through the local executor.

    Returns the image-level out-of-fold probabilities and the wall time (no embedding cache);
    ``timings``, when given, receives ``embed_seconds`` and ``heads_seconds``.
    """
    from core.learning.executors import FoldData, FoldTask, LocalExecutor
    from core.learning.features import embed_array
    from core.learning.folds import make_folds
    from core.learning.models import build_model
    from core.learning.training import resolve_device, seed_everything

    device = device or resolve_device(cfg.device)
    start = time.perf_counter()
    seed_everything(cfg.seed)
    model, _ = build_model(cfg)
    t_embed = time.perf_counter()
    emb = embed_array(model, crops.crops, device=device, batch_size=cfg.embed_batch_size)
    t_heads = time.perf_counter()
    folds = make_folds(crops.case_ids, crops.labels, n_splits=cfg.n_folds, seed=cfg.seed)
    proba = np.zeros((crops.n_images, 3))
    # the heads through the executor `run_cv` uses (several threads where the cores allow)
    data = FoldData(crops=crops, embeddings=emb, fold_of=folds, embed_seconds=0.0)
    tasks = [FoldTask(tag=0, data=data, cfg=cfg, fold=fold) for fold in range(cfg.n_folds)]
    for task, outcome in LocalExecutor().map(tasks):
        proba[folds == task.fold] = outcome.fit.proba
    end = time.perf_counter()
    if timings is not None:
        timings.update(embed_seconds=t_heads - t_embed, heads_seconds=end - t_heads)
    return proba, end - start


def cv_at_scale(data_dir: str, model: str, weights: str, device: str, n_folds: int) -> dict:
    """In this process: ingest ``data_dir`` (no database) and time features CV, embedding apart."""
    from core.data.ingest import ingest_folder

    crops = ingest_folder(data_dir, progress=False).crops
    cfg = RunConfig(model=model, weights=weights, device=device, n_folds=n_folds)
    timings: dict = {}
    cpu = time.process_time()
    proba, total = features_cv_ours(crops, cfg, timings=timings)
    return {
        "cpu_seconds": time.process_time() - cpu,  # all threads: less sensitive to a busy machine
        "patients": len(set(crops.case_ids.tolist())),
        "images": crops.n_images,
        "cv_seconds": total,
        **timings,
        "limit_ratio": total / timings["embed_seconds"],
        "auc": case_auc(crops, proba),
        "peak_mb": peak_mb(),
    }


def scaling(
    scales=(1, 2, 4), *, model="resnet18", weights="auto", device="auto", n_folds=10
) -> list[dict]:
    """Part (c) at each scale of the demo cohort, each CV in a fresh interpreter."""
    from core.data.demo_data import PAPER_COUNTS, generate_demo_cohort

    rows = []
    with tempfile.TemporaryDirectory(prefix="cervixscope-bench-") as tmp:
        env = {"CERVIXSCOPE_HOME": tmp}  # the crop cache of these cohorts goes away with them
        for scale in scales:
            folder = Path(tmp) / f"demo-x{scale}"
            generate_demo_cohort(folder, seed=0, counts=tuple(c * scale for c in PAPER_COUNTS))
            args = ["core.bench.scaling", str(folder), model, weights, device, str(n_folds)]
            rows.append({"scale": scale, **run_child(args, env)})
    return rows


def scaling_table(rows: list[dict]) -> str:
    """The scaling rows as a Markdown table, with each scale's cost per image against 1x."""
    head = (
        "| scale | patients | images | CV s | embed s | heads s | CV/embed | "
        "CPU s per 1k images (vs 1x) | peak MB |"
    )
    lines = [head, "|" + "---|" * 9]
    base = rows[0]["cpu_seconds"] / rows[0]["images"]
    for r in rows:
        per = r["cpu_seconds"] / r["images"]
        lines.append(
            f"| {r['scale']}x | {r['patients']} | {r['images']} | {r['cv_seconds']:.1f} | "
            f"{r['embed_seconds']:.1f} | {r['heads_seconds']:.2f} | {r['limit_ratio']:.2f} | "
            f"{1000 * per:.2f} ({per / base:.2f}) | {r['peak_mb']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    folder, model, weights, device, folds = sys.argv[1:6]
    print_result(cv_at_scale(folder, model, weights, device, int(folds)))
