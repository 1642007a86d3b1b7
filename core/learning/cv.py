"""Leakage-free k-fold cross-validation, grouped by patient, recorded in the database.

Guards, each tested in tests/core/learning/test_leakage.py:
- folds are assigned to cases (patients), never to images: all slices of a patient share a fold;
- everything fitted (scaler, SMOTE, classifier head, fine-tuned weights, early-stopping split)
  sees the training fold only; the test fold is only ever predicted;
- every case gets exactly one out-of-fold prediction: the mean of its images' probabilities;
  each image's own out-of-fold probabilities are stored too, for per-image metrics.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from core.data.dataset import CropSet, mean_by_case
from core.labels import CLASSES
from core.learning.config import RunConfig
from db.clock import now_iso

RUNS_DIR = Path("runs")
Progress = Callable[[int, int, str], None]  # (done, total, message)


def make_folds(case_ids, labels, *, n_splits: int, seed: int) -> np.ndarray:
    """Assign each entry to one of ``n_splits`` folds, stratified by class, grouped by case.

    Parameters
    ----------
    case_ids : array-like of str, shape (n,)
        Case (patient) of each entry; entries may repeat a case (e.g. one per image).
    labels : array-like of int, shape (n,)
        Class index of each entry; constant within a case.
    n_splits : int
    seed : int
        The split depends only on the set of cases, their labels and the seed, not on input
        order, so every model of a comparison gets identical folds.

    Returns
    -------
    ndarray of int, shape (n,)
        Fold number of each entry, in ``0..n_splits-1``.

    Raises
    ------
    ValueError
        If the smallest class has fewer cases than ``n_splits`` (some test fold would lack it).
    """
    case_ids = np.asarray(case_ids).astype(str)
    labels = np.asarray(labels, dtype=np.int64)
    if len(case_ids) != len(labels):
        raise ValueError(f"case_ids has {len(case_ids)} entries but labels has {len(labels)}")
    cases, first, inverse = np.unique(case_ids, return_index=True, return_inverse=True)
    case_labels = labels[first]
    if not np.array_equal(case_labels[inverse], labels):
        raise ValueError("labels must be constant within each case")
    counts = np.bincount(case_labels, minlength=len(CLASSES))
    present = [(CLASSES[c], int(n)) for c, n in enumerate(counts) if n > 0]
    name, smallest = min(present, key=lambda item: item[1])
    if n_splits < 2:
        raise ValueError(f"n_splits={n_splits}: need at least 2 folds")
    if smallest < n_splits:
        raise ValueError(
            f"n_splits={n_splits} but class {name} has only {smallest} cases: every test fold "
            f"needs at least one case of each class; use --folds <= {smallest}"
        )
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    case_fold = np.empty(len(cases), dtype=np.int64)
    # One row per case (sorted ids), so images per case do not weigh the stratification.
    for fold, (_, test) in enumerate(splitter.split(cases, case_labels, groups=cases)):
        case_fold[test] = fold
    return case_fold[inverse]


def smote_k_neighbors(y: np.ndarray, k: int) -> int | None:
    """SMOTE's k for this training fold: at most (smallest class count - 1); None if < 1."""
    smallest = int(np.bincount(y)[np.unique(y)].min())
    k = min(k, smallest - 1)
    return k if k >= 1 else None


class LinearHead:
    """Standardise -> (SMOTE) -> multinomial logistic regression, fitted on one training fold."""

    def __init__(self, cfg: RunConfig, *, seed: int):
        self.cfg = cfg
        self.seed = seed
        self.scaler = StandardScaler()
        self.clf = LogisticRegression(
            C=cfg.head_c,
            max_iter=3000,
            # Newton-CG converges in ~12 iterations here vs ~140 for lbfgs: 10x faster, same fit.
            solver="newton-cg",
            class_weight="balanced" if cfg.balance == "weights" else None,
        )
        self.notes: list[str] = []

    def fit(self, x: np.ndarray, y: np.ndarray) -> LinearHead:
        xs = self.scaler.fit_transform(x)
        if self.cfg.balance == "smote":
            xs, y = self._smote(xs, y)
        # One BLAS thread: these matrices are small, and multi-threaded OpenBLAS on a busy 2-core
        # machine made one fit 40x slower (9.5 s vs 0.23 s, measured).
        with warnings.catch_warnings(), threadpool_limits(1, user_api="blas"):
            warnings.simplefilter("ignore", category=UserWarning)
            self.clf.fit(xs, y)
        return self

    def _smote(self, xs: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from imblearn.over_sampling import SMOTE

        k = smote_k_neighbors(y, self.cfg.smote_k)
        if k is None:
            self.notes.append("SMOTE skipped: a class has a single training sample")
            return xs, y
        if k < self.cfg.smote_k:
            self.notes.append(f"SMOTE k_neighbors reduced to {k} (few minority samples)")
        return SMOTE(k_neighbors=k, random_state=self.seed).fit_resample(xs, y)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        with threadpool_limits(1, user_api="blas"):
            proba = self.clf.predict_proba(self.scaler.transform(x))
        full = np.zeros((len(x), len(CLASSES)))
        full[:, self.clf.classes_] = proba  # a class absent from training gets probability 0
        return full

    def as_linear(self) -> tuple[np.ndarray, np.ndarray]:
        """Weight (n_classes, d) and bias folding the scaler in: logits = W @ x + b."""
        scale = np.where(self.scaler.scale_ > 0, self.scaler.scale_, 1.0)
        w = np.zeros((len(CLASSES), self.clf.coef_.shape[1]))
        b = np.full(len(CLASSES), -1e4)  # absent classes never win
        w[self.clf.classes_] = self.clf.coef_ / scale
        b[self.clf.classes_] = self.clf.intercept_ - (
            self.clf.coef_ * self.scaler.mean_ / scale
        ).sum(1)
        return w, b


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Per-fold summary numbers (case level) stored with each fold."""
    from core.statistics import metrics

    y_pred = proba.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aucs = metrics.roc_auc_ovr(y_true, proba)
        out = {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "auc_macro": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
            "sensitivity_macro": float(metrics.sensitivity_score(y_true, y_pred, average="macro")),
        }
    for c, name in enumerate(CLASSES):
        out[f"auc_{name}"] = float(aucs[c])
    return out


def _case_rows(case_ids: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray, list]:
    cases, mean = mean_by_case(case_ids, proba)
    rows = [
        {"case_id": str(c), **{f"p_{name}": float(p[i]) for i, name in enumerate(CLASSES)}}
        for c, p in zip(cases, mean, strict=True)
    ]
    return cases, mean, rows


def _image_rows(image_ids: np.ndarray, case_ids: np.ndarray, proba: np.ndarray) -> list[dict]:
    return [
        {
            "image_id": str(image),
            "case_id": str(case),
            **{f"p_{name}": float(p[i]) for i, name in enumerate(CLASSES)},
        }
        for image, case, p in zip(image_ids, case_ids, proba, strict=True)
    ]


def code_version() -> str:
    """The git commit of the working tree, else the installed package version."""
    import subprocess

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
        if out.returncode == 0:
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "cervixscope " + version("cervixscope")
    except PackageNotFoundError:
        return "unknown"


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "torchvision", "numpy", "scikit-learn", "imbalanced-learn", "pydicom"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def _check_resume(existing: dict, cfg: RunConfig, data_hash: str) -> None:
    old = existing.get("config") or {}
    if isinstance(old, str):
        old = json.loads(old)
    ignore = {"folds", "device", "compile", "extra"}
    diff = sorted(k for k, v in cfg.to_dict().items() if k not in ignore and old.get(k, v) != v)
    if diff:
        raise ValueError(
            f"run {existing.get('run_id')} was made with other settings ({', '.join(diff)}): "
            "merge only folds of the same configuration, or start a new run"
        )
    if existing.get("data_hash") not in (None, data_hash):
        raise ValueError(
            f"run {existing.get('run_id')} used data {existing.get('data_hash')}, "
            f"this data is {data_hash}: merge folds only on the same data"
        )


def run_cv(
    crops: CropSet,
    cfg: RunConfig,
    *,
    conn,
    run_id: str | None = None,
    progress: Progress | None = None,
    comparison_id: str | None = None,
    runs_dir: str | Path | None = None,
    cache_dir=None,
    final_model: bool = True,
) -> str:
    """Cross-validate ``cfg.model`` on ``crops``; record the run and its predictions in ``conn``.

    Parameters
    ----------
    crops : CropSet
    cfg : RunConfig
        ``cfg.folds`` restricts the run to some folds; run the rest later with the same
        ``run_id`` (on this or another machine) and the database holds the merged run.
    conn : sqlite_utils.Database
        From ``db.connect()``.
    run_id : str, optional
        Continue (or create with this id) a run; default a new id.
    progress : callable(done, total, message), optional
    comparison_id : str, optional
        Shared by the runs of one ``core.learning.compare.run_comparison``.
    runs_dir : path, optional
        Artifacts go to ``runs_dir/<run_id>/`` (default ``./runs``).
    cache_dir : path or False, optional
        Embedding cache (features mode), see ``core.learning.features.embed_cropset``.
    final_model : bool, default True
        Once every fold is done, train the model on all data and save it for ``predict``.

    Returns
    -------
    str
        The run id. The run's status is ``done`` when all folds are in, ``partial`` otherwise,
        ``failed`` (with the message) if anything raised.
    """
    import db
    from core.learning.models import build_model
    from core.learning.training import resolve_device, seed_everything

    existing = None
    if run_id is not None:
        try:
            existing = db.get_run(conn, run_id)
        except db.RunNotFound:
            existing = None
    queued = existing is not None and existing.get("status") == "queued"
    try:
        folds_all = make_folds(crops.case_ids, crops.labels, n_splits=cfg.n_folds, seed=cfg.seed)
        data_hash = crops.data_hash()
        device = resolve_device(cfg.device)
        # Built first so what the model really is (weights used, channel policy) goes in the record.
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        model, build_warnings = build_model(cfg)
        config = cfg.to_dict()
        config["extra"] = {**config["extra"], "model_info": model.info}
        if existing is not None:
            _check_resume(existing, cfg, data_hash)
    except BaseException as exc:
        # A run queued by the dashboard must not stay "queued" (and block retries) forever;
        # an existing partial or done run keeps its status when a merge is refused.
        if queued:
            db.update_run(
                conn,
                run_id,
                status="failed",
                ended_at=now_iso(timespec="seconds"),
                message=f"{exc}",
            )
        raise
    if existing is not None:
        if queued:  # queued by the dashboard: record what runs it
            db.update_run(
                conn,
                run_id,
                config=config,
                data_hash=data_hash,
                device=str(device),
                weights=cfg.weights,
                code_version=code_version(),
                packages=package_versions(),
            )
    else:
        run_id = db.create_run(
            conn,
            model=cfg.model,
            mode=cfg.mode,
            config=config,
            seed=cfg.seed,
            data_hash=data_hash,
            device=str(device),
            weights=cfg.weights,
            code_version=code_version(),
            packages=package_versions(),
            comparison_id=comparison_id,
            run_id=run_id,
        )
    run_dir = Path(runs_dir or RUNS_DIR) / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2))
    timings: dict[str, float] = {}
    t_run = time.perf_counter()
    db.update_run(
        conn, run_id, status="running", started_at=now_iso(timespec="seconds"), message=None
    )
    folds = cfg.fold_list()
    total_steps = len(folds) + 1
    tell = progress or (lambda done, total, message: None)
    try:
        warned = set(_existing_warnings(existing))
        for text in build_warnings:
            if text not in warned:
                db.add_run_warning(conn, run_id, text)
        embeddings = None
        embed_seconds = inference_seconds = 0.0
        if cfg.mode == "features":
            from core.learning.features import embed_cropset

            t0 = time.perf_counter()
            tell(0, total_steps, f"{cfg.model}: embedding {crops.n_images} crops")
            embeddings, cached = embed_cropset(crops, model, cfg, cache_dir=cache_dir)
            embed_seconds = time.perf_counter() - t0
            timings["embed_cached" if cached else "embed"] = embed_seconds
            if cached:  # the model's time per case must still include the backbone
                embed_seconds = _backbone_seconds(model, crops, cfg, device)
                timings["embed_estimate"] = embed_seconds
        t_folds = time.perf_counter()
        for i, fold in enumerate(folds):
            t0 = time.perf_counter()
            tell(i, total_steps, f"{cfg.model}: fold {fold}")
            test = folds_all == fold
            if cfg.mode == "features":
                head = LinearHead(cfg, seed=cfg.seed * 1000 + fold)
                head.fit(embeddings[~test], crops.labels[~test])
                t_predict = time.perf_counter()
                proba = head.predict_proba(embeddings[test])
                # A test image's inference = its share of the embedding pass + the head.
                inference_seconds += time.perf_counter() - t_predict
                inference_seconds += embed_seconds * test.sum() / crops.n_images
                notes = head.notes
            else:
                proba, fit = _finetune_fold(crops, ~test, test, cfg, fold, device)
                inference_seconds += fit.predict_seconds
                notes = []
            cases, mean, rows = _case_rows(crops.case_ids[test], proba)
            case_labels = crops.labels[test][np.unique(crops.case_ids[test], return_index=True)[1]]
            metrics = fold_metrics(case_labels, mean)
            if cfg.mode == "finetune":
                metrics.update(epochs_run=fit.epochs_run, best_epoch=fit.best_epoch)
            # Images first: the dashboard refreshes when the case predictions count changes.
            db.save_image_predictions(
                conn, run_id, fold, _image_rows(crops.image_ids[test], crops.case_ids[test], proba)
            )
            db.save_predictions(conn, run_id, fold, rows)
            db.save_fold(
                conn,
                run_id,
                fold,
                n_train=int(len(np.unique(crops.case_ids[~test]))),
                n_test=int(len(cases)),
                seconds=time.perf_counter() - t0,
                metrics=metrics,
            )
            for note in dict.fromkeys(notes):
                db.add_run_warning(conn, run_id, f"fold {fold}: {note}")
            db.update_run(
                conn,
                run_id,
                progress=(i + 1) / len(folds),
                message=f"fold {fold} done ({i + 1} of {len(folds)} folds in this job)",
            )
        timings["folds"] = time.perf_counter() - t_folds
        timings["inference_seconds"] = inference_seconds
        timings["inference_cases"] = len(np.unique(crops.case_ids[np.isin(folds_all, folds)]))

        oof = db.predictions_frame(conn, [run_id])
        complete = set(oof["case_id"]) >= set(crops.case_ids.tolist())
        status = "done" if complete else "partial"
        if complete:
            oof.to_csv(run_dir / "oof_predictions.csv", index=False)
            summary = run_summary(oof, seed=cfg.seed)
            summary.to_csv(run_dir / "summary.csv", index=False)
            if final_model:
                from core.learning.predict import train_final_model

                t0 = time.perf_counter()
                tell(len(folds), total_steps, f"{cfg.model}: final model on all data")
                train_final_model(crops, cfg, run_dir=run_dir, embeddings=embeddings)
                timings["final_model"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - t_run
        old_timings = (existing or {}).get("timings") or {}
        if isinstance(old_timings, str):
            old_timings = json.loads(old_timings)
        merged = {k: old_timings.get(k, 0.0) + v for k, v in timings.items()}
        merged.update({k: v for k, v in old_timings.items() if k not in timings})
        merged["inference_seconds_per_case"] = merged["inference_seconds"] / max(
            merged["inference_cases"], 1
        )
        done_folds = sorted(set(oof["fold"].astype(int))) if "fold" in oof else folds
        db.update_run(
            conn,
            run_id,
            status=status,
            progress=len(done_folds) / cfg.n_folds,
            ended_at=now_iso(timespec="seconds"),
            timings=merged,
            message=None if complete else f"folds done: {done_folds} of {cfg.n_folds}",
        )
        (run_dir / "timings.json").write_text(json.dumps(merged, indent=2))
        tell(total_steps, total_steps, f"{cfg.model}: {status}")
    except BaseException as exc:
        db.update_run(
            conn, run_id, status="failed", ended_at=now_iso(timespec="seconds"), message=f"{exc}"
        )
        raise
    return run_id


def _existing_warnings(existing: dict | None) -> list[str]:
    if not existing:
        return []
    found = existing.get("warnings") or []
    if isinstance(found, str):
        found = json.loads(found)
    return [w if isinstance(w, str) else w.get("text", "") for w in found]


def inner_split(case_ids: np.ndarray, labels: np.ndarray, *, fraction: float, seed: int):
    """Boolean mask of the early-stopping validation images: whole patients, stratified."""
    n_splits = max(2, round(1 / fraction))
    cases, first = np.unique(case_ids, return_index=True)
    smallest = np.bincount(labels[first])[np.unique(labels[first])].min()
    if smallest < n_splits:
        from sklearn.model_selection import GroupKFold

        splitter = GroupKFold(n_splits=min(n_splits, len(cases)), shuffle=True, random_state=seed)
        _, val = next(splitter.split(case_ids, labels, groups=case_ids))
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        _, val = next(splitter.split(case_ids, labels, groups=case_ids))
    mask = np.zeros(len(case_ids), dtype=bool)
    mask[val] = True
    return mask


def _backbone_seconds(model, crops: CropSet, cfg: RunConfig, device, sample: int = 64) -> float:
    """Time to embed every image, extrapolated from embedding a sample of them."""
    from core.learning.features import embed_array

    n = min(sample, crops.n_images)
    t0 = time.perf_counter()
    embed_array(model, crops.crops[:n], device=device, batch_size=cfg.embed_batch_size)
    return (time.perf_counter() - t0) * crops.n_images / n


def _finetune_fold(crops: CropSet, train, test, cfg: RunConfig, fold: int, device):
    from core.learning.models import build_model
    from core.learning.training import finetune, predict_proba, seed_everything

    seed_everything(cfg.seed * 1000 + fold, deterministic=cfg.deterministic)
    model, _ = build_model(cfg)
    idx = np.flatnonzero(train)
    val = inner_split(
        crops.case_ids[idx], crops.labels[idx], fraction=cfg.val_fraction, seed=cfg.seed + fold
    )
    fold_cfg = cfg.replace(seed=cfg.seed * 1000 + fold)
    fit = finetune(
        model,
        crops.crops[idx[~val]],
        crops.labels[idx[~val]],
        fold_cfg,
        x_val=crops.crops[idx[val]],
        y_val=crops.labels[idx[val]],
        device=device,
    )
    t0 = time.perf_counter()
    proba = predict_proba(model, crops.crops[test], device=device)
    fit.predict_seconds = time.perf_counter() - t0
    return proba, fit


def run_summary(oof: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """Case-level metrics table of out-of-fold predictions (``core.statistics.metrics.classification_table``).

    ``oof`` has columns ``label`` (class name) and ``p_SCC, p_AC, p_ASC``.
    """
    from core.labels import CLASS_INDEX
    from core.statistics import metrics

    y_true = oof["label"].map(CLASS_INDEX).to_numpy(dtype=np.int64)
    score = oof[[f"p_{c}" for c in CLASSES]].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return metrics.classification_table(
            y_true, score.argmax(1), score, ci=True, n_boot=n_boot, seed=seed
        )
