"""Executors: the Ray executor gives the local executor's out-of-fold predictions, computed in Ray
workers that never see the database; the driver alone writes it. A real local Ray (2 CPUs)."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

import db
from core.cli import main
from core.learning.config import RunConfig
from core.learning.executors import LocalExecutor, fold_resources, make_executor
from tests.core.cropsets import database_with_cases

PROBS = ["p_SCC", "p_AC", "p_ASC"]


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray instance of 2 CPUs for this module, shut down at its end."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _compare(tmp_path: Path, cohort: Path, name: str, *executor: str) -> Path:
    path = tmp_path / f"{name}.db"
    argv = [
        "--db", str(path), "--home", str(tmp_path / f"home-{name}"), "--quiet", "compare",
        "--data", str(cohort), "--models", "cnn,resnet18", "--preset", "none",
        "--weights", "none", "--folds", "3", "--seed", "2", *executor,
    ]  # fmt: skip
    assert main(argv) == 0
    return path


def _frames(path: Path):
    conn = db.connect(path)
    runs = db.runs_frame(conn).sort_values("model")
    ids = list(runs["run_id"])
    cases = db.predictions_frame(conn, ids).sort_values(["model", "case_id"])
    images = db.image_predictions_frame(conn, ids).sort_values(["model", "image_id"])
    folds = (
        db.folds_frame(conn, ids).merge(runs[["run_id", "model"]]).sort_values(["model", "fold"])
    )
    return runs, cases, images, folds


def test_compare_on_ray_gives_the_local_out_of_fold_predictions(
    tmp_path, small_cohort_dir, ray_local
):
    local = _frames(_compare(tmp_path, small_cohort_dir, "local"))
    on_ray = _frames(_compare(tmp_path, small_cohort_dir, "ray", "--executor", "ray"))

    for before, after in zip(local[1:], on_ray[1:], strict=True):
        keys = [c for c in ("model", "case_id", "image_id", "fold") if c in before]
        assert before[keys].to_numpy().tolist() == after[keys].to_numpy().tolist()
    for level in (1, 2):  # per case and per image: equal, not merely close
        assert np.array_equal(local[level][PROBS].to_numpy(), on_ray[level][PROBS].to_numpy())
    assert local[3]["metrics"].tolist() == on_ray[3]["metrics"].tolist()
    assert list(on_ray[0]["status"]) == ["done", "done"]
    assert list(on_ray[0]["progress"]) == [1.0, 1.0]
    assert ray_local.is_initialized()  # the CLI used this Ray and left it running


class RecordingRayExecutor:
    """The real RayExecutor, keeping what it shipped to the workers and what came back."""

    def __init__(self):
        self.inner = make_executor("ray")
        self.name, self.concurrent = self.inner.name, self.inner.concurrent
        self.tasks, self.outcomes = [], []

    def share(self, data):
        return self.inner.share(data)

    def map(self, tasks, *, started=None):
        self.tasks += list(tasks)
        for task, outcome in self.inner.map(tasks, started=started):
            self.outcomes.append(outcome)
            yield task, outcome

    def close(self):
        self.inner.close()


def test_ray_tasks_get_no_database_and_the_driver_writes_it(tmp_path, small_crops, ray_local):
    from core.learning.compare import run_comparison

    path = tmp_path / "driver.db"
    conn = database_with_cases(path, small_crops)
    executor = RecordingRayExecutor()
    messages = []
    run_ids = run_comparison(
        small_crops, ("cnn", "resnet18"), RunConfig(n_folds=3, weights="none"), conn=conn,
        executor=executor, runs_dir=tmp_path / "runs", cache_dir=False,
        progress=lambda done, total, message: messages.append((done, total, message)),
    )  # fmt: skip

    assert len(executor.tasks) == 6  # one task per (model, fold)
    shipped = pickle.dumps([(t.cfg, t.fold, ray_local.get(t.data)) for t in executor.tasks])
    assert str(path).encode() not in shipped and b"sqlite" not in shipped
    workers = {o.worker for o in executor.outcomes}
    assert all(w.split(":")[1] != str(os.getpid()) for w in workers)  # computed elsewhere
    for worker in workers:  # ... by processes that hold no handle on the database file
        fds = Path(f"/proc/{worker.split(':')[1]}/fd")
        if fds.exists():
            held = {os.path.realpath(fds / fd) for fd in os.listdir(fds)}
            assert not any(h.startswith(str(path)) for h in held)
    for run_id in run_ids:  # the driver is the process that owns (and wrote) the runs
        run = db.get_run(conn, run_id)
        assert run["status"] == "done" and run["pid"] == os.getpid()
    # one progress bar for the batch, counting every task
    assert [(d, t) for d, t, m in messages if m.startswith("ray:")] == [(i, 6) for i in range(1, 7)]


def test_resources_declared_per_fold_task():
    assert fold_resources(RunConfig(mode="finetune"), 4) == {"num_cpus": 1, "num_gpus": 1}
    assert fold_resources(RunConfig(mode="finetune"), 0) == {"num_cpus": 1, "num_gpus": 0}
    assert fold_resources(RunConfig(mode="features"), 4) == {"num_cpus": 1, "num_gpus": 0}


def test_ray_is_imported_only_when_chosen(tmp_path):
    import subprocess

    code = (
        "import sys; from core.learning.executors import make_executor; "
        "from core.learning.cv import run_cv; import core.cli; "
        "make_executor('local'); print('ray' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert isinstance(make_executor("local"), LocalExecutor)
    with pytest.raises(ValueError, match="executor 'dask': expected one of local, ray"):
        make_executor("dask")
    with pytest.raises(ValueError, match="--ray-address needs --executor ray"):
        make_executor("local", address="auto")


def test_bench_reports_ray_overhead_and_speedup(ray_local):
    from core.bench.executors import bench_executors
    from tests.core.cropsets import synthetic_crops

    crops = synthetic_crops((12, 8, 6), images_per_case=2, size=32)
    out = bench_executors(crops, n_folds=3, weights="none")
    assert out["executor_tasks"] == 6
    assert out["ray_equals_local"] is True  # the figures compare equal work
    for key in ("local_comparison_s", "ray_comparison_s", "ray_speedup", "ray_start_s"):
        assert out[key] > 0, key
    assert np.isfinite(out["ray_overhead_per_task_s"])
    assert ray_local.is_initialized()  # a Ray it did not start is left running


def test_local_heads_on_threads_equal_heads_one_after_the_other(tmp_path, monkeypatch):
    """Features-mode folds fitted at once on several threads give bit-identical predictions."""
    from core.learning import executors
    from core.learning.cv import run_cv
    from tests.core.cropsets import synthetic_crops

    crops = synthetic_crops((12, 8, 6), images_per_case=2, size=32)
    cfg = RunConfig(weights="none", n_folds=3, crop_size=32, balance="smote")
    frames = []
    for threads in (1, 3):
        monkeypatch.setattr(executors, "MAX_HEAD_THREADS", threads)
        monkeypatch.setattr(executors.os, "cpu_count", lambda: 4)
        conn = database_with_cases(tmp_path / f"t{threads}.db", crops)
        run_id = run_cv(
            crops, cfg, conn=conn, runs_dir=tmp_path / f"runs{threads}", cache_dir=False
        )
        frames.append(  # display IDs are random per database
            db.image_predictions_frame(conn, [run_id]).drop(columns=["run_id", "display_id"])
        )
        conn.close()
    one, many = (f.sort_values("image_id").reset_index(drop=True) for f in frames)
    assert one.equals(many)
