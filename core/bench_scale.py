"""`cervixscope bench` parts (c) and (m): features-mode CV against its limit, how it scales, and
the memory of the bootstrap.

(c) One embedding pass over every image is the least a features-mode CV can cost on a CPU: the
    ratio (CV total time) / (embedding time) is 1.0 at the limit (target <= 1.3). Measured at 1x,
    2x and 4x the demo cohort (641, 1,282, 2,564 patients), each in a fresh interpreter so its peak
    resident memory is its own; the scaling table reads "linear" when seconds and the memory above
    the interpreter's baseline grow in proportion to the images.
(m) ``classification_table`` on 10,000 cases with 1,000 resamples: its traced peak allocation and
    the process's peak resident memory (target < 300 MB).

Usage (what ``run_bench`` spawns): python -m core.bench_scale cv DIR MODEL WEIGHTS DEVICE FOLDS
| python -m core.bench_scale table. Each prints one line ``BENCH {json}``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from core.data.dataset import CropSet, mean_by_case
from core.learning.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def peak_mb() -> float:
    """This process's peak resident memory, MB.

    Linux's ``VmHWM`` when there is one: ``ru_maxrss`` survives ``execve``, so a child started
    from a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(args: list[str], env: dict | None = None) -> dict:
    """Run ``python -m <args>`` from the repository root; its ``BENCH`` line as a dict."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"benchmark step {' '.join(args)} failed: {tail[0]}")
    return json.loads(lines[-1].removeprefix("BENCH "))


def _case_auc(crops: CropSet, proba: np.ndarray) -> float:
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
        "auc": _case_auc(crops, proba),
        "peak_mb": peak_mb(),
    }


def table_memory(n: int = 10_000, n_boot: int = 1000) -> dict:
    """Part (m): the bootstrap's traced peak and this process's peak resident memory."""
    import tracemalloc

    from core.statistics.metrics import classification_table

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    score = rng.dirichlet([1, 1, 1], n)
    baseline = peak_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    classification_table(y, score.argmax(1), score, n_boot=n_boot, seed=0)
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "table_cases": n,
        "table_resamples": n_boot,
        "table_seconds": seconds,
        "table_traced_peak_mb": traced,
        "table_process_peak_mb": peak_mb(),
        "table_process_baseline_mb": baseline,
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
            args = ["core.bench_scale", "cv", str(folder), model, weights, device, str(n_folds)]
            rows.append({"scale": scale, **_child(args, env)})
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
    if sys.argv[1] == "cv":
        folder, model, weights, device, folds = sys.argv[2:7]
        result = cv_at_scale(folder, model, weights, device, int(folds))
    else:
        result = table_memory()
    print("BENCH " + json.dumps(result))
