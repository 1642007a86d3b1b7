"""`cervixscope bench`: is the training loop near the hardware's limit, and how much does the
features-mode design (embed once, fit a head per fold) save over the obvious implementation?

(a) images/s of ``core.learning.training.finetune`` (indexing, per-sample augmentation, schedule) against a
    bare forward/backward/step loop on one random batch of the same shape: the ratio is the
    loop's efficiency (target >= 0.8 on a GPU).
(b) wall time of features-mode k-fold CV end to end (embed every crop once, then per fold a
    standardised logistic head) against the obvious way: a torch DataLoader with PIL transforms
    that re-extracts every image's features inside every fold. Same folds, same head, same
    backbone and seed, so the AUCs should agree (+-0.01 AUC). The speed-up has a ceiling by
    construction: with E one embedding pass and H the ten heads, the obvious way costs about
    10E + H against our E + H, so at most (10E + H) / (E + H) (reported as ``cv_speedup_ceiling``:
    ~9x with the heads at a tenth of E; the old 10x target was out of reach).
(c), (m) and the page timings: ``core.bench_scale`` and ``core.bench_pages``.
Parts (a) and (b) run in one process, one after the other, on the same device.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from core.bench_scale import _case_auc, features_cv_ours
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


def features_cv_obvious(
    crops: CropSet, cfg: RunConfig, *, device=None, batch_size: int = 32
) -> tuple[np.ndarray, float]:
    """The obvious implementation (for comparison only): per fold, a DataLoader of PIL images
    through torchvision transforms re-extracts features of the training and the test images."""
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms

    from core.learning.folds import make_folds
    from core.learning.heads import LinearHead
    from core.learning.models import build_model
    from core.learning.training import resolve_device, seed_everything

    class Crops(Dataset):
        def __init__(self, index):
            self.index = index
            self.tf = transforms.Compose([transforms.ToTensor()])

        def __len__(self):
            return len(self.index)

        def __getitem__(self, i):
            image = Image.fromarray(crops.crops[self.index[i]])  # mode "F": no precision lost
            return self.tf(image), int(crops.labels[self.index[i]])

    def extract(model, index):
        feats = []
        with torch.no_grad():
            for xb, _ in DataLoader(Crops(index), batch_size=batch_size, shuffle=False):
                feats.append(model.embed(xb.to(device)).cpu().numpy())
        return np.concatenate(feats)

    device = device or resolve_device(cfg.device)
    start = time.perf_counter()
    seed_everything(cfg.seed)
    model, _ = build_model(cfg)
    model = model.to(device).eval()
    folds = make_folds(crops.case_ids, crops.labels, n_splits=cfg.n_folds, seed=cfg.seed)
    proba = np.zeros((crops.n_images, 3))
    for fold in range(cfg.n_folds):
        train, test = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
        head = LinearHead(cfg, seed=cfg.seed * 1000 + fold)
        head.fit(extract(model, train), crops.labels[train])
        proba[test] = head.predict_proba(extract(model, test))
    return proba, time.perf_counter() - start


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
        Letters of the parts to skip, e.g. ``"b"`` or ``"b,c,p"``: a, b (this module), c (the
        scaling runs of ``core.bench_scale``), m (the bootstrap's memory), p (page renders; only
        with ``db_path``).
    db_path : path, optional
        The database whose pages part (p) renders (the demo's after ``cervixscope demo``).

    Returns
    -------
    dict
        ``device, model, n_images, train_loop_images_per_s, bare_loop_images_per_s,
        loop_efficiency, cv_seconds_ours, cv_seconds_obvious, cv_speedup, auc_ours,
        auc_obvious, cv_speedup_ceiling``, ``scaling`` (rows of part c), ``table_*`` (m),
        ``pages`` and ``reader_analysis`` (p); parts skipped are absent.
    """
    from core.learning.training import resolve_device

    dev = resolve_device(device)
    out: dict = {
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
        out.update(_bench_features_cv(crops, base.replace(n_folds=n_folds), dev))
    out.update(_limit_parts(skipped, model, weights, device, n_folds, db_path))
    return out


def _limit_parts(skipped: set, model, weights, device, n_folds, db_path) -> dict:
    """Parts c, m and p, each in child processes (see ``core.bench_scale``, ``core.bench_pages``)."""
    from core import bench_pages, bench_scale

    out: dict = {}
    if "c" not in skipped:
        rows = bench_scale.scaling(model=model, weights=weights, device=device, n_folds=n_folds)
        out["scaling"] = rows
        out.update({f"cv_over_embed_{r['scale']}x": r["limit_ratio"] for r in rows})
    if "m" not in skipped:
        out.update(bench_scale._child(["core.bench_scale", "table"]))
    if "p" not in skipped and db_path is not None:
        out["pages"] = bench_pages.page_renders(db_path)
        out["reader_analysis"] = bench_pages.reader_analysis(db_path)
    return out


def _bench_features_cv(crops: CropSet, cfg: RunConfig, device) -> dict:
    """Part (b): wall time and case-level AUC of our features CV and of the obvious one."""
    timings: dict = {}
    p_ours, t_ours = features_cv_ours(crops, cfg, device=device, timings=timings)
    p_obv, t_obv = features_cv_obvious(crops, cfg, device=device)
    embed, heads = timings["embed_seconds"], timings["heads_seconds"]
    return {
        "n_folds": cfg.n_folds,
        "cv_seconds_ours": t_ours,
        "cv_seconds_obvious": t_obv,
        "cv_speedup": t_obv / t_ours,
        "cv_speedup_ceiling": (cfg.n_folds * embed + heads) / (embed + heads),
        "auc_ours": _case_auc(crops, p_ours),
        "auc_obvious": _case_auc(crops, p_obv),
    }


def format_table(results: dict) -> str:
    """The bench results as an aligned two-column table, then the scaling and page tables."""
    labels = {
        "train_loop_images_per_s": "(a) training loop, images/s",
        "bare_loop_images_per_s": "(a) bare fwd/bwd loop, images/s",
        "loop_efficiency": "(a) ratio loop / bare",
        "cv_seconds_ours": "(b) features CV, ours, s",
        "cv_seconds_obvious": "(b) features CV, obvious, s",
        "cv_speedup": "(b) speed-up obvious / ours",
        "cv_speedup_ceiling": "(b) ceiling (10E + H) / (E + H)",
        "auc_ours": "(b) macro AUC, ours",
        "auc_obvious": "(b) macro AUC, obvious",
        "cv_over_embed_1x": "(c) CV / one embedding pass, 1x (limit 1.0)",
        "cv_over_embed_4x": "(c) CV / one embedding pass, 4x (limit 1.0)",
        "table_traced_peak_mb": "(m) classification_table traced peak, MB",
        "table_process_peak_mb": "(m) classification_table process peak, MB",
    }
    rows = []
    for key, value in results.items():
        if isinstance(value, list | dict):
            continue
        text = f"{value:.3f}" if isinstance(value, float) else str(value)
        rows.append((labels.get(key, key), text))
    width = max(len(name) for name, _ in rows)
    parts = ["\n".join(f"{name:<{width}}  {text}" for name, text in rows)]
    if results.get("scaling"):
        from core.bench_scale import scaling_table

        parts.append("(c) scaling, features CV:\n" + scaling_table(results["scaling"]))
    if results.get("pages"):
        parts.append(_pages_table(results["pages"], results.get("reader_analysis")))
    return "\n\n".join(parts)


def _pages_table(pages: list[dict], analysis: dict | None) -> str:
    lines = ["(p) first render, s | peak MB | torch loaded"]
    for p in pages:
        errors = f"  ERRORS: {p['errors']}" if p["errors"] else ""
        lines.append(
            f"  {p['page']:<16} {p['seconds']:6.2f} {p['peak_mb']:7.0f} {p['torch']}{errors}"
        )
    if analysis:
        lines.append(
            f"(p) reader analysis, {analysis['readers']} readers x {analysis['reads']} reads: "
            f"first {analysis['first_seconds']:.2f} s, rerun with no new read "
            f"{analysis['rerun_seconds']:.2f} s"
        )
    return "\n".join(lines)


def bench_executors(
    crops: CropSet, *, models=("cnn", "resnet18"), n_folds: int = 10, weights: str = "auto"
) -> dict:
    """Part (c): the Ray executor against the local one on a features-mode comparison.

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
    from core.labels import CLASSES
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
