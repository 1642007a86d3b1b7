"""Grad-CAM overlays for the AI-aided arm, made in a worker process and cached on disk.

torch must never be imported into the dashboard's server process: once loaded there, every later
script run of every session pays for it (the issue measured 2.7x the server CPU per read). So the
overlay is computed by ``python -m core.reader_study.heatmaps`` in a child process and written to
``<home>/cache/gradcam/``; the server only reads the finished PNG-ready array. Given its case, the
map comes from the fold model that never trained on it (``core.learning.gradcam``); saved models
never change, so (run, case, class, crop bytes) is a sufficient cache key.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.project import home
from core.project.home import cache_dir

ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 300  # a cold torch import and model load on 2 busy cores
RETRY_AFTER_S = 300  # after a failed worker, the same run is not tried again for this long
# Keyed by project home and run id: the same run id under another home is another model.
_FAILED: dict[str, tuple[float, str]] = {}  # run -> (when, why) of the last failure
_BATCHES: dict[str, subprocess.Popen] = {}  # run -> its background worker, if one was started
_LOGS: dict[str, Path] = {}  # run -> where its background worker writes its errors


def _run_key(run_id: str) -> str:
    return f"{home.runs_dir()}|{run_id}"


def _cache_path(run_id: str, crop: np.ndarray, class_index: int, case_id=None) -> Path:
    digest = hashlib.sha256(np.ascontiguousarray(crop, dtype=np.float32).tobytes()).hexdigest()
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in f"{run_id}-{case_id or ''}")
    return cache_dir("gradcam") / f"{safe}-{int(class_index)}-{digest[:24]}.npy"


def cached_overlay(run_id: str, crop: np.ndarray, class_index: int, case_id=None):
    """The overlay if a worker has already made it, else None (never starts a worker)."""
    path = _cache_path(run_id, crop, class_index, case_id)
    try:
        return np.load(path)
    except (OSError, ValueError):
        return None


def gradcam_overlay(run_id: str, crop: np.ndarray, class_index: int, case_id=None) -> np.ndarray:
    """Grad-CAM overlay (h, w, 3) uint8 of one crop for one class: from the fold model of
    ``run_id`` that never saw ``case_id``, or its final model when no case is given.

    Made by a worker process on first use, then read from the disk cache. A run whose worker
    failed is not retried for ``RETRY_AFTER_S`` (every case would fail the same way, slowly).

    Parameters
    ----------
    run_id : str
        A finished run with a saved final model.
    crop : ndarray, shape (h, w)
        The lesion crop in [0, 1].
    class_index : int
        Index into ``core.data.labels.CLASSES``.

    Raises
    ------
    RuntimeError
        With the worker's own last line, when it could not make the overlay (no model, ...).
    """
    found = cached_overlay(run_id, crop, class_index, case_id)
    if found is not None:
        return found
    failed = _FAILED.get(_run_key(run_id))
    if failed and time.monotonic() - failed[0] < RETRY_AFTER_S:
        raise RuntimeError(failed[1])
    target = _cache_path(run_id, crop, class_index, case_id)
    batch = _BATCHES.get(_run_key(run_id))
    while batch is not None and batch.poll() is None and not target.exists():
        time.sleep(0.05)  # a batch worker is making it: one torch process at a time, not two
    if target.exists():
        return np.load(target)
    try:
        make_overlays(run_id, [(crop, class_index, case_id)])
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        _FAILED[_run_key(run_id)] = (time.monotonic(), str(exc))
        raise RuntimeError(str(exc)) from exc
    return np.load(target)


def overlay_status(run_id: str, crop: np.ndarray, class_index: int, case_id=None):
    """``("ready", overlay)``, ``("making", None)`` or ``("failed", reason)``, without waiting:
    when no worker is making it, one is started in the background (pages poll this instead of
    holding a script run for the seconds a cold torch import takes)."""
    found = cached_overlay(run_id, crop, class_index, case_id)
    if found is not None:
        return "ready", found
    key = _run_key(run_id)
    failed = _FAILED.get(key)
    if failed and time.monotonic() - failed[0] < RETRY_AFTER_S:
        return "failed", failed[1]
    batch = _BATCHES.get(key)
    if batch is not None and batch.poll() is None:
        return "making", None
    if batch is not None and batch.returncode != 0:  # it ended without this overlay
        reason = _last_line(_LOGS.get(key)) or f"worker exited with {batch.returncode}"
        _FAILED[key] = (time.monotonic(), reason)
        _BATCHES.pop(key, None)
        return "failed", reason
    make_overlays(run_id, [(crop, class_index, case_id)], wait=False)
    return "making", None


def _last_line(path: Path | None) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except (OSError, AttributeError):
        return ""
    return lines[-1] if lines else ""


def make_overlays(run_id: str, jobs: list[tuple[np.ndarray, int]], *, wait: bool = True):
    """Make the overlays of many crops in one worker process (the model loads once).

    Parameters
    ----------
    run_id : str
        The run.
    jobs : list of (crop, class_index) or (crop, class_index, case_id)
        Those already cached are skipped.
    wait : bool
        Wait for the worker (raising RuntimeError on its failure); False starts it in the
        background and returns its ``Popen`` (or None when there was nothing to do).
    """
    jobs = [(c, k, *rest, None)[:3] for c, k, *rest in jobs]
    todo = [(c, k, case) for c, k, case in jobs if not _cache_path(run_id, c, k, case).exists()]
    running = _BATCHES.get(_run_key(run_id))
    if not todo or (not wait and running is not None and running.poll() is None):
        return None
    folder = Path(tempfile.mkdtemp(prefix="gradcam-"))
    lines = []
    for i, (crop, class_index, case_id) in enumerate(todo):
        np.save(folder / f"{i}.npy", np.asarray(crop, dtype=np.float32))
        target = _cache_path(run_id, crop, class_index, case_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        lines.append(f"{folder / f'{i}.npy'}\t{int(class_index)}\t{target}\t{case_id or ''}")
    (folder / "jobs.tsv").write_text("\n".join(lines), encoding="utf-8")
    args = [str(run_id), str(folder / "jobs.tsv")]
    if not wait:
        _LOGS[_run_key(run_id)] = folder / "worker.log"
        _BATCHES[_run_key(run_id)] = _start_worker(args, folder / "worker.log")
        return _BATCHES[_run_key(run_id)]
    try:
        _run_worker(args)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return None


def _worker_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def _start_worker(args: list[str], log: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "core.reader_study.heatmaps", *args]
    with log.open("w", encoding="utf-8") as err:  # the child keeps its own copy of the handle
        return subprocess.Popen(
            command,
            env=_worker_env(),
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,  # not tied to the page's session: it finishes on its own
        )


def _run_worker(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core.reader_study.heatmaps", *args],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        env=_worker_env(),
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"worker exited with {done.returncode}")


def _worker_main(argv: list[str]) -> int:
    """In the worker process: compute each job's overlay and write it atomically to the cache."""
    run_id, jobs_file = argv
    from core.learning.gradcam import gradcam_overlay as compute  # torch: here only

    for line in Path(jobs_file).read_text(encoding="utf-8").splitlines():
        crop_file, class_index, target, case_id = line.split("\t")
        if Path(target).exists():  # another worker made it meanwhile
            continue
        overlay = compute(run_id, np.load(crop_file), int(class_index), case_id=case_id or None)
        partial = Path(target).with_suffix(f".{os.getpid()}.partial.npy")
        np.save(partial, np.asarray(overlay, dtype=np.uint8))
        os.replace(partial, target)  # readers never see half a file
    shutil.rmtree(Path(jobs_file).parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
