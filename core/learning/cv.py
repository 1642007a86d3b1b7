"""Leakage-free k-fold cross-validation, grouped by patient, recorded in the database.

Guards, each tested in tests/core/learning/test_leakage.py:
- folds are assigned to cases (patients), never to images: all slices of a patient share a fold
  (``core.learning.folds``);
- everything fitted (scaler, SMOTE, classifier head, fine-tuned weights, early-stopping split)
  sees the training fold only; the test fold is only ever predicted (``core.learning.fold_fit``);
- every case gets exactly one out-of-fold prediction: the mean of its images' probabilities;
  each image's own out-of-fold probabilities are stored too, for per-image metrics.

``run_cv`` is the orchestration: prepare the job, register the run, embed (features mode), fit and
record each fold, finish (results, final model, timings). The run's status goes through the db's
lifecycle API: queued -> running -> done | partial | failed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import db
from core.data.dataset import CropSet
from core.learning.artifacts import run_dir
from core.learning.config import PER_JOB_FIELDS, RunConfig
from core.learning.executors import FoldData, FoldOutcome, FoldTask, LocalExecutor
from core.learning.fold_fit import FoldRecords
from core.learning.folds import assign_folds
from core.learning.liveness import Heartbeat
from core.learning.provenance import code_version, package_versions
from core.learning.summary import run_summary

Progress = Callable[[int, int, str], None]  # (done, total, message)


@dataclass
class _Job:
    """What one job of a run works with, fixed before its first fold."""

    crops: CropSet
    cfg: RunConfig
    fold_of: np.ndarray  # the outer fold of each image
    data_hash: str
    device: object  # torch.device
    model: object  # core.learning.models.Net, built with the run's seed
    config: dict  # cfg plus the model's info, as recorded with the run
    build_warnings: list[str]
    existing: dict | None  # the run this job adds its folds to (db.get_run), if any
    tell: Progress
    out: Path | None = None  # the run's folder: fold models are kept there
    report: Callable[[float, str], None] = lambda fraction, text: None  # the run's row

    @property
    def total_steps(self) -> int:
        """Embedding (features mode), each fold, and the final model or the job's end."""
        return (self.cfg.mode == "features") + len(self.cfg.fold_list()) + 1

    @property
    def first_fold_step(self) -> int:
        return int(self.cfg.mode == "features")  # the embedding is step 0

    def step(self, done: int, text: str) -> None:
        """Start a step: the CLI's bar and the run's row say which, the fraction below 1 until
        the run ends. Raises ``db.RunCancelled`` when the run was cancelled meanwhile."""
        self.tell(done, self.total_steps, f"{self.cfg.model}: {text}")
        self.report(done / self.total_steps, text)


@dataclass
class CvRun:
    """One run of a batch (``run_cvs``): its config, and the groups it belongs to."""

    cfg: RunConfig
    run_id: str | None = None  # continue (or create with this id) a run
    comparison_id: str | None = None  # models compared on identical folds
    repeat_group: str | None = None  # the repeats of one repeated cross-validation
    repeat_index: int | None = None  # 0, 1, ...: this run's repeat (its fold seed is cfg.seed)


@dataclass
class _Active:
    """A started run of a batch while its folds come in."""

    job: _Job
    run_id: str
    out: Path
    t_run: float
    timings: dict = field(default_factory=dict)
    embeddings: np.ndarray | None = None
    embed_seconds: float = 0.0
    folds_done: int = 0
    inference_seconds: float = 0.0
    finished: bool = False


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
    executor=None,
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
        Artifacts go to ``runs_dir/<run_id>/`` (default ``<project home>/runs``, ``core.project.home``).
    cache_dir : path or False, optional
        Embedding cache (features mode), see ``core.learning.features.embed_cropset``.
    final_model : bool, default True
        Once every fold is done, train the model on all data and save it for ``predict``.
    executor : LocalExecutor or RayExecutor, optional
        Where the folds are computed (``core.learning.executors``); default here, in order.

    Returns
    -------
    str
        The run id. The run's status is ``done`` when all folds are in, ``partial`` otherwise,
        ``failed`` (with the message) if anything raised.
    """
    spec = CvRun(cfg, run_id=run_id, comparison_id=comparison_id)
    return run_cvs(
        crops, [spec], conn=conn, progress=progress, runs_dir=runs_dir, cache_dir=cache_dir,
        final_model=final_model, executor=executor,
    )[0]  # fmt: skip


def run_cvs(
    crops: CropSet,
    runs: list[CvRun],
    *,
    conn,
    progress: Progress | None = None,
    runs_dir: str | Path | None = None,
    cache_dir=None,
    final_model: bool = True,
    executor=None,
) -> list[str]:
    """Cross-validate several runs on ``crops`` (models, repeats); this process stores them all.

    With a concurrent executor (Ray) every fold of every run is submitted at once and stored as it
    comes back; with the local executor the runs go one after the other, exactly as ``run_cv``.
    Whatever executor computes the folds, only this process writes ``conn``.

    Parameters
    ----------
    crops : CropSet
    runs : list of CvRun
    conn, progress, runs_dir, cache_dir, final_model, executor
        As in :func:`run_cv`.

    Returns
    -------
    list of str
        The run ids, in the order of ``runs``.
    """
    executor = executor or LocalExecutor()
    batches = [list(runs)] if executor.concurrent else [[spec] for spec in runs]
    run_ids: list[str] = []
    for batch in batches:
        run_ids += _run_batch(
            crops, batch, conn, executor, progress=progress, runs_dir=runs_dir,
            cache_dir=cache_dir, final_model=final_model,
        )  # fmt: skip
    return run_ids


def _run_batch(
    crops, batch, conn, executor, *, progress, runs_dir, cache_dir, final_model
) -> list[str]:
    """Start every run of the batch, compute and store their folds, finish them; on any error,
    every started run that has not finished is marked failed."""
    active: list[_Active] = []
    try:
        with ExitStack() as alive:
            for spec in batch:
                active.append(_start(crops, spec, conn, progress, runs_dir))
                # Other processes can tell a slow run from a dead one (db.reap_stale_runs).
                alive.enter_context(Heartbeat(conn, active[-1].run_id))
                _add_new_warnings(conn, active[-1].run_id, active[-1].job)
                active[-1].embeddings, active[-1].embed_seconds = _embed(
                    active[-1].job, cache_dir, active[-1].timings
                )
            _run_folds(conn, active, executor)
            for a in active:
                _finish(
                    conn, a.run_id, a.job, a.out, a.timings,
                    t_run=a.t_run, final_model=final_model, embeddings=a.embeddings,
                )  # fmt: skip
                a.finished = True
    except BaseException as exc:
        for a in active:
            if not a.finished:
                _stopped(conn, a.run_id, exc)
        raise
    return [a.run_id for a in active]


def _stopped(conn, run_id: str, exc: BaseException) -> None:
    """A job that raised: ``cancelled`` (SIGTERM, Ctrl-C, or cancelled elsewhere) or ``failed``."""
    if isinstance(exc, (db.RunCancelled, KeyboardInterrupt)):
        try:
            db.cancel_run(conn, run_id, str(exc) or "interrupted")
        except ValueError:  # cancelled already, by whoever stopped it
            pass
    else:
        db.fail_run(conn, run_id, f"{exc}")


def _start(crops: CropSet, spec: CvRun, conn, progress, runs_dir) -> _Active:
    """Prepare and register one run, write its config file and mark it running."""
    job = _prepare(crops, spec.cfg, conn, spec.run_id, progress)
    run_id = _register(conn, job, spec)
    out = run_dir(run_id, runs_dir)
    out.mkdir(parents=True, exist_ok=True)
    job.out = out
    (out / "config.json").write_text(json.dumps(job.config, indent=2))
    t_run = time.perf_counter()
    db.start_run(conn, run_id)
    job.report = lambda fraction, text: db.report_progress(conn, run_id, fraction, text)
    return _Active(job, run_id, out, t_run)


def _prepare(crops: CropSet, cfg: RunConfig, conn, run_id, progress) -> _Job:
    """Folds, data hash, device and model of this job, checked against the run it continues.

    Whatever fails here fails a run queued by the dashboard, which must not stay queued (and block
    retries) forever; an existing partial or done run keeps its status when a merge is refused.
    """
    from core.learning.models import build_model
    from core.learning.training import resolve_device, seed_everything

    try:
        fold_of = assign_folds(crops.case_ids, crops.labels, cfg)  # by patient, or by site
        data_hash = crops.data_hash()
        device = resolve_device(cfg.device)
        # Built first so what the model really is (weights used, channel policy) goes in the record.
        seed_everything(cfg.seed, deterministic=cfg.deterministic)
        model, build_warnings = build_model(cfg)
        config = cfg.to_dict()
        config["extra"] = {**config["extra"], "model_info": model.info}
        existing = None
        if run_id is not None:
            existing = db.check_run_merge(
                conn, run_id, config=cfg.to_dict(), data_hash=data_hash, per_job=PER_JOB_FIELDS
            )
    except BaseException as exc:
        if run_id is not None:
            db.fail_queued_run(conn, run_id, f"{exc}")
        raise
    tell = progress or (lambda done, total, message: None)
    return _Job(
        crops, cfg, fold_of, data_hash, device, model, config, build_warnings, existing, tell
    )


def _register(conn, job: _Job, spec: CvRun) -> str:
    """Create the run, or record what runs a run the dashboard queued; a merge changes neither."""
    run_id = spec.run_id
    if job.existing is not None and job.existing["status"] != "queued":
        return run_id
    provenance = {
        "config": job.config,
        "data_hash": job.data_hash,
        "device": str(job.device),
        "weights": job.cfg.weights,
        "code_version": code_version(),
        "packages": package_versions(),
    }
    if job.existing is not None:
        db.record_provenance(conn, run_id, **provenance)
        return run_id
    cfg = job.cfg
    return db.create_run(
        conn, model=cfg.model, mode=cfg.mode, seed=cfg.seed, comparison_id=spec.comparison_id,
        run_id=run_id, repeat_group=spec.repeat_group, repeat_index=spec.repeat_index,
        **provenance,
    )  # fmt: skip


def _add_new_warnings(conn, run_id: str, job: _Job) -> None:
    """The model's build warnings, each once per run (an earlier job may have stored them)."""
    known = set(job.existing["warnings"]) if job.existing else set()
    for text in job.build_warnings:
        if text not in known:
            db.add_run_warning(conn, run_id, text)


def _embed(job: _Job, cache_dir, timings: dict) -> tuple[np.ndarray | None, float]:
    """Features mode: every image's embedding (cached on disk) and the backbone's seconds."""
    if job.cfg.mode != "features":
        return None, 0.0
    from core.learning.features import backbone_seconds, embed_cropset

    t0 = time.perf_counter()
    job.step(0, f"embedding {job.crops.n_images} crops")
    embeddings, cached = embed_cropset(job.crops, job.model, job.cfg, cache_dir=cache_dir)
    seconds = time.perf_counter() - t0
    timings["embed_cached" if cached else "embed"] = seconds
    if cached:  # the model's time per case must still include the backbone
        seconds = backbone_seconds(job.model, job.crops, job.cfg, job.device)
        timings["embed_estimate"] = seconds
    return embeddings, seconds


def _run_folds(conn, active: list[_Active], executor) -> None:
    """Every fold of the batch's runs through ``executor``; each outcome is stored here, by the
    driver, as it comes back. Times the folds and the test images' inference per run."""
    tasks = []
    for tag, a in enumerate(active):
        data = executor.share(FoldData(a.job.crops, a.embeddings, a.job.fold_of, a.embed_seconds))
        tasks += [FoldTask(tag, data, a.job.cfg, f, a.job.device) for f in a.job.cfg.fold_list()]
    t_folds = time.perf_counter()

    def started(task: FoldTask) -> None:
        if not executor.concurrent:  # one run at a time: a bar per model, as ever
            a = active[task.tag]
            folds = a.job.cfg.fold_list()
            a.job.step(a.job.first_fold_step + a.folds_done, fold_text(a.folds_done, folds, a.job))

    for n, (task, outcome) in enumerate(executor.map(tasks, started=started), 1):
        a = active[task.tag]
        _store_fold(conn, a, outcome, t_folds)
        if executor.concurrent:  # one bar for the whole batch's tasks
            message = f"{executor.name}: {a.job.cfg.model} fold {task.fold} done"
            a.job.tell(n, len(tasks), message)


def _store_fold(conn, a: _Active, outcome: FoldOutcome, t_folds: float) -> None:
    """One fold's outcome into the database and the run's folder; the run's progress."""
    job, fold = a.job, outcome.fold
    folds = job.cfg.fold_list()
    a.inference_seconds += outcome.inference_seconds
    _keep_fold_model(job, fold, job.fold_of == fold, outcome.fit)
    _save_fold(conn, a.run_id, fold, outcome.records, outcome.notes, outcome.seconds)
    a.folds_done += 1
    message = f"{fold_text(a.folds_done - 1, folds, job)} done"
    db.report_progress(
        conn, a.run_id, (job.first_fold_step + a.folds_done) / job.total_steps, message
    )
    if a.folds_done == len(folds):
        a.timings["folds"] = time.perf_counter() - t_folds
        a.timings["inference_seconds"] = a.inference_seconds
        in_job = np.isin(job.fold_of, folds)
        a.timings["inference_cases"] = len(np.unique(job.crops.case_ids[in_job]))


def fold_text(i: int, folds: list[int], job: _Job) -> str:
    """``fold 3 of 10`` for the i-th fold of a job, counted from 1; a job of some of the run's
    folds also names which (``--only-folds`` numbers them from 0)."""
    n_folds = job.cfg.n_folds
    if len(folds) == n_folds:
        return f"fold {i + 1} of {n_folds}"
    return f"fold {i + 1} of {len(folds)} in this job (fold {folds[i]} of 0-{n_folds - 1})"


def _keep_fold_model(job: _Job, fold: int, test: np.ndarray, fit) -> None:
    """The fold's model under the run's folder, so a case is explained by a model that never saw it."""
    from core.learning.fold_models import save_fold_model

    save_fold_model(
        job.out, fold, config=job.config, info=job.model.info,
        train_cases=job.crops.case_ids[~test], test_cases=job.crops.case_ids[test], fit=fit,
    )  # fmt: skip


def _save_fold(conn, run_id: str, fold: int, records: FoldRecords, notes, seconds: float) -> None:
    # Images first: the dashboard refreshes when the case predictions count changes.
    db.save_image_predictions(conn, run_id, fold, records.image_rows)
    db.save_predictions(conn, run_id, fold, records.case_rows)
    db.save_fold(
        conn, run_id, fold, n_train=records.n_train, n_test=records.n_test,
        seconds=seconds, metrics=records.metrics,
    )  # fmt: skip
    for note in dict.fromkeys(notes):
        db.add_run_warning(conn, run_id, f"fold {fold}: {note}")


def _finish(
    conn, run_id: str, job: _Job, out: Path, timings: dict, *, t_run, final_model, embeddings
) -> None:
    """Results and the final model once every case has its prediction; the run's end either way."""
    cfg = job.cfg
    oof = db.predictions_frame(conn, [run_id])
    complete = set(oof["case_id"].unique()) >= set(job.crops.case_ids.tolist())
    if complete:
        oof.to_csv(out / "oof_predictions.csv", index=False)
        run_summary(oof, seed=cfg.seed).to_csv(out / "summary.csv", index=False)
        if final_model:
            from core.learning.final_model import train_final_model

            t0 = time.perf_counter()
            job.step(job.total_steps - 1, "final model on all data")
            train_final_model(job.crops, cfg, run_dir=out, embeddings=embeddings)
            timings["final_model"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - t_run
    merged = merge_timings((job.existing or {}).get("timings"), timings)
    done_folds = sorted(set(oof["fold"].astype(int)))
    status = "done" if complete else "partial"
    db.finish_run(
        conn, run_id, status=status, progress=len(done_folds) / cfg.n_folds, timings=merged,
        message=None if complete else f"folds done: {done_folds} of {cfg.n_folds}",
    )  # fmt: skip
    (out / "timings.json").write_text(json.dumps(merged, indent=2))
    job.tell(job.total_steps, job.total_steps, f"{cfg.model}: {status}")


def merge_timings(old: dict | None, new: dict[str, float]) -> dict[str, float]:
    """A run's timings after one more job: seconds and case counts add up over the jobs.

    Parameters
    ----------
    old : dict or None
        The run's timings so far (``db.get_run(...)["timings"]``).
    new : dict
        This job's seconds per step, ``inference_seconds`` and ``inference_cases``.

    Returns
    -------
    dict
        Every key of both, summed where both have it, and ``inference_seconds_per_case``: the
        model's inference time per case over all jobs.
    """
    old = old or {}
    merged = {k: old.get(k, 0.0) + v for k, v in new.items()}
    merged.update({k: v for k, v in old.items() if k not in new})
    merged["inference_seconds_per_case"] = merged["inference_seconds"] / max(
        merged["inference_cases"], 1
    )
    return merged
