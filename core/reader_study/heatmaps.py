"""Grad-CAM overlays for the AI-aided arm, made in a worker process and cached on disk.

torch must never be imported into the dashboard's server process: once loaded there, every later
script run of every session pays for it (the issue measured 2.7x the server CPU per read). So the
overlay is computed by ``python -m core.reader_study.heatmaps`` in a child process and written to
``<home>/cache/gradcam/``; the server only reads the finished PNG-ready array. A run's final model
never changes once saved, so (run, class, crop bytes) is a sufficient cache key.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from core.home import cache_dir

ROOT = Path(__file__).resolve().parents[2]
WORKER_TIMEOUT_S = 300  # a cold torch import and model load on 2 busy cores


def _cache_path(run_id: str, crop: np.ndarray, class_index: int) -> Path:
    digest = hashlib.sha256(np.ascontiguousarray(crop, dtype=np.float32).tobytes()).hexdigest()
    safe_run = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in str(run_id))
    return cache_dir("gradcam") / f"{safe_run}-{int(class_index)}-{digest[:24]}.npy"


def cached_overlay(run_id: str, crop: np.ndarray, class_index: int) -> np.ndarray | None:
    """The overlay if a worker has already made it, else None (never starts a worker)."""
    path = _cache_path(run_id, crop, class_index)
    try:
        return np.load(path)
    except (OSError, ValueError):
        return None


def gradcam_overlay(run_id: str, crop: np.ndarray, class_index: int) -> np.ndarray:
    """Grad-CAM overlay (h, w, 3) uint8 of one crop for one class of ``run_id``'s final model.

    Made by a worker process on first use, then read from the disk cache.

    Parameters
    ----------
    run_id : str
        A finished run with a saved final model.
    crop : ndarray, shape (h, w)
        The lesion crop in [0, 1].
    class_index : int
        Index into ``core.labels.CLASSES``.

    Raises
    ------
    RuntimeError
        With the worker's own last line, when it could not make the overlay (no model, ...).
    """
    found = cached_overlay(run_id, crop, class_index)
    if found is not None:
        return found
    target = _cache_path(run_id, crop, class_index)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        crop_file = Path(tmp) / "crop.npy"
        np.save(crop_file, np.asarray(crop, dtype=np.float32))
        _run_worker([str(run_id), str(crop_file), str(int(class_index)), str(target)])
    return np.load(target)


def _run_worker(args: list[str]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "core.reader_study.heatmaps", *args],
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(lines[-1] if lines else f"worker exited with {done.returncode}")


def _worker_main(argv: list[str]) -> int:
    """In the worker process: compute one overlay and write it atomically to the cache."""
    run_id, crop_file, class_index, target = argv
    from core.learning.gradcam import gradcam_overlay as compute  # torch: here only

    overlay = compute(run_id, np.load(crop_file), int(class_index))
    partial = Path(target).with_suffix(".partial.npy")
    np.save(partial, np.asarray(overlay, dtype=np.uint8))
    os.replace(partial, target)  # readers never see half a file
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
