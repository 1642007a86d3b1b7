"""Where a run's files live: ``runs/<run_id>/`` holds its config, out-of-fold predictions, summary,
timings and final model (``model.pt``)."""

from __future__ import annotations

from pathlib import Path

RUNS_DIR = Path("runs")  # relative: the CLI and the dashboard's job run from the repository
MODEL_FILE = "model.pt"


def run_dir(run_id: str, runs_dir: str | Path | None = None) -> Path:
    """The folder of run ``run_id`` under ``runs_dir`` (default ``./runs``); not created here."""
    return Path(runs_dir or RUNS_DIR) / str(run_id)


def model_path(run_id: str, runs_dir: str | Path | None = None) -> Path:
    """The final model file of run ``run_id``."""
    return run_dir(run_id, runs_dir) / MODEL_FILE
