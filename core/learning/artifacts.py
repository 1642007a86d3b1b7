"""Where a run's files live: ``<project home>/runs/<run_id>/`` holds its config, out-of-fold
predictions, summary, timings and models (``model.pt``). The home is ``core.project.home``'s: the
database's folder or ``$CERVIXSCOPE_HOME``, so the CLI, a background job and the dashboard agree
whatever their working directory."""

from __future__ import annotations

from pathlib import Path

from core.project import home

MODEL_FILE = "model.pt"


def runs_root(runs_dir: str | Path | None = None) -> Path:
    """``runs_dir`` if given, else ``<project home>/runs``."""
    return Path(runs_dir) if runs_dir is not None else home.runs_dir()


def run_dir(run_id: str, runs_dir: str | Path | None = None) -> Path:
    """The folder of run ``run_id`` (not created here)."""
    return runs_root(runs_dir) / str(run_id)


def model_path(run_id: str, runs_dir: str | Path | None = None) -> Path:
    """The final model file of run ``run_id``."""
    return run_dir(run_id, runs_dir) / MODEL_FILE
