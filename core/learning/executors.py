"""Where the folds of a cross-validation are computed: here, one after the other, or on Ray.

Each (model, fold, seed) is one :class:`FoldTask`. :func:`compute_fold` turns it into a
:class:`FoldOutcome` (the fold's rows and metrics) and never touches the database: tasks get no
connection and no database path, and return their results to the driver, which is the one
process that writes the study database (``core.learning.cv``). So the database never has to sit
on a shared filesystem, where SQLite's WAL mode does not work.

- :class:`LocalExecutor` computes the tasks in order, in this process: today's behaviour.
- :class:`RayExecutor` submits every task at once as a Ray task with its resources declared (one
  GPU each for fine-tuning where the cluster has GPUs; one CPU otherwise) and hands the outcomes
  back as they complete. Ray is an optional extra (``pip install cervixscope[ray]``) and is
  imported only when this executor is built.

Each fold seeds everything it fits from the run's seed and its number (``fold_seed``), and the
heads run single-threaded BLAS, so the outcome of a task does not depend on where or in which
order it runs: the executors' out-of-fold predictions are equal.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from core.data.dataset import CropSet
from core.learning.config import RunConfig
from core.learning.fold_fit import FoldFit, FoldRecords, finetune_fold, fit_head_fold, fold_records

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class FoldData:
    """What every fold of one job reads: shared once per job (Ray's object store), not per task."""

    crops: CropSet
    embeddings: np.ndarray | None  # features mode: every image's embedding
    fold_of: np.ndarray  # the outer fold of each image
    embed_seconds: float  # the backbone's time for every image (each fold's inference share)


@dataclass(frozen=True)
class FoldTask:
    """One (model, fold, seed) of a batch of runs; ``tag`` says which run of the batch."""

    tag: int
    data: object  # FoldData, or the handle that LocalExecutor/RayExecutor.share returned
    cfg: RunConfig
    fold: int
    device: object = None  # torch.device for the local executor; each Ray task picks its own


@dataclass
class FoldOutcome:
    """What a fold task returns to the driver: everything the database gets for that fold."""

    fold: int
    records: FoldRecords
    fit: FoldFit  # the fitted fold (probabilities, and its model for the run's folder)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0  # fitting and predicting the fold, where it ran
    inference_seconds: float = 0.0
    worker: str = ""  # host:pid of the process that computed it


def compute_fold(data: FoldData, cfg: RunConfig, fold: int, device=None) -> FoldOutcome:
    """Fit and predict one outer fold; return its rows. Touches no database and no file.

    Parameters
    ----------
    data : FoldData
    cfg : RunConfig
    fold : int
    device : torch.device or str, optional
        Finetune mode's device; default ``cfg.device`` resolved where the task runs.

    Returns
    -------
    FoldOutcome
    """
    t0 = time.perf_counter()
    test = data.fold_of == fold
    if cfg.mode == "features":
        labels = data.crops.labels
        fit = fit_head_fold(
            data.embeddings, labels, test, cfg, fold, embed_seconds=data.embed_seconds
        )
    else:
        from core.learning.training import resolve_device

        device = resolve_device(device if device is not None else cfg.device)
        fit = finetune_fold(data.crops, test, cfg, fold, device)
    records = fold_records(data.crops, test, fit)
    return FoldOutcome(
        fold=fold,
        records=records,
        fit=fit,
        notes=list(fit.notes),
        seconds=time.perf_counter() - t0,
        inference_seconds=fit.inference_seconds,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )


Started = Callable[[FoldTask], None]


MAX_HEAD_THREADS = 4  # features-mode heads fitted at once on this machine's cores


class LocalExecutor:
    """The tasks in this process, results in the order given (the default).

    Features-mode folds (a head on frozen embeddings) are fitted on a few threads at once when
    the machine has the cores: each fit is single-threaded BLAS under one process-wide limit, so
    the results are those of fitting them one after the other. Fine-tuning folds run one at a
    time (each already uses every core, or the GPU).
    """

    name = "local"
    concurrent = False  # a batch of runs is run one run at a time

    def share(self, data: FoldData) -> FoldData:
        return data

    def map(
        self, tasks: Sequence[FoldTask], *, started: Started | None = None
    ) -> Iterator[tuple[FoldTask, FoldOutcome]]:
        """Yield ``(task, outcome)`` per task, in order; ``started(task)`` before each is yielded."""
        workers = min(os.cpu_count() or 1, MAX_HEAD_THREADS, len(tasks))
        if workers < 2 or any(task.cfg.mode != "features" for task in tasks):
            for task in tasks:
                if started is not None:
                    started(task)
                yield task, compute_fold(task.data, task.cfg, task.fold, task.device)
            return
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
            futures = [pool.submit(compute_fold, t.data, t.cfg, t.fold, t.device) for t in tasks]
            for task, future in zip(tasks, futures, strict=True):
                if started is not None:
                    started(task)
                yield task, future.result()

    def close(self) -> None:
        """Nothing to release."""


def fold_resources(cfg: RunConfig, cluster_gpus: float) -> dict[str, float]:
    """The resources one fold task declares to Ray.

    A fine-tuning fold takes one GPU where the cluster has any (and one CPU to feed it); a
    features-mode fold fits a logistic head with scikit-learn, which uses no GPU, so it takes one
    CPU and leaves the GPUs to fine-tuning.
    """
    gpu = cfg.mode == "finetune" and cluster_gpus >= 1
    return {"num_cpus": 1, "num_gpus": 1 if gpu else 0}


def _ray_fold(data: FoldData, cfg: RunConfig, fold: int) -> FoldOutcome:
    """A fold as a Ray task: on the GPU Ray assigned it (``CUDA_VISIBLE_DEVICES``), else the CPU."""
    import ray

    gpu = bool(ray.get_gpu_ids())
    return compute_fold(data, cfg, fold, "cuda" if gpu else "cpu")


class RayExecutor:
    """Each fold task is one Ray task; outcomes come back to the driver as they complete.

    Parameters
    ----------
    address : str, optional
        An existing cluster (``ray://host:10001`` or ``auto``); default the running Ray of this
        process if any, else a new local instance that :meth:`close` shuts down again.
    """

    name = "ray"
    concurrent = True  # every fold of every run of a batch is submitted at once

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError as exc:
            raise ImportError(
                "--executor ray needs Ray: pip install 'cervixscope[ray]' "
                "(or pip install -r requirements-ray.txt)"
            ) from exc
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
            self._owns = address is None
        self._remote = ray.remote(_ray_fold)
        self.cluster_gpus = float(ray.cluster_resources().get("GPU", 0))

    def share(self, data: FoldData):
        """Put a job's data in the object store once; its tasks read it without a copy."""
        return self._ray.put(data)

    def map(
        self, tasks: Sequence[FoldTask], *, started: Started | None = None
    ) -> Iterator[tuple[FoldTask, FoldOutcome]]:
        """Submit every task now; yield ``(task, outcome)`` in the order they complete.

        ``started(task)`` is called as each is submitted. If the caller stops early (an error
        while storing a result), the tasks still pending are cancelled.
        """
        ray = self._ray
        pending = {}
        for task in tasks:
            options = fold_resources(task.cfg, self.cluster_gpus)
            ref = self._remote.options(**options).remote(task.data, task.cfg, task.fold)
            pending[ref] = task
            if started is not None:
                started(task)
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        """Shut down the local Ray instance this executor started (a cluster stays up)."""
        if self._owns:
            self._ray.shutdown()
            self._owns = False


def make_executor(name: str = "local", *, address: str | None = None):
    """The executor called ``name`` (``local`` or ``ray``), as ``--executor`` chooses it.

    Raises
    ------
    ValueError
        On an unknown name, or an address given to the local executor.
    ImportError
        For ``ray`` when Ray is not installed, saying how to install it.
    """
    if name not in EXECUTORS:
        raise ValueError(f"executor {name!r}: expected one of {', '.join(EXECUTORS)}")
    if name == "local":
        if address:
            raise ValueError("--ray-address needs --executor ray")
        return LocalExecutor()
    return RayExecutor(address)
