"""Start a cross-validation as a detached background process that the dashboard only watches.

The run row is created first (status ``queued``) so the page can show it at once and refuse a
duplicate; the process (``python -m core.cli --db DB cv ... --run-id ID``) then owns it. It runs in
its own session, so leaving or reloading the page, or the Streamlit session ending, never kills it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import db

ROOT = Path(__file__).resolve().parents[2]  # the repository: `python -m core.cli` runs from here
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class CvRequest:
    """What the Run page asks for; the CLI fills in every other ``RunConfig`` default."""

    data_dir: str
    model: str = "resnet18"
    mode: str = "features"
    n_folds: int = 10
    seed: int = 0
    balance: str = "smote"

    def config(self) -> dict:
        return {
            "model": self.model,
            "mode": self.mode,
            "n_folds": int(self.n_folds),
            "seed": int(self.seed),
            "balance": self.balance,
            "data_dir": str(Path(self.data_dir).resolve()),
        }


def _same_request(config: dict | None, request: CvRequest) -> bool:
    config = config or {}
    return all(config.get(k) == v for k, v in request.config().items())


def active_duplicate(runs: pd.DataFrame, request: CvRequest) -> str | None:
    """The id of a queued or running run with the same request, if any.

    Parameters
    ----------
    runs : pandas.DataFrame
        As :func:`db.runs_frame` returns it (``config`` decoded).
    request : CvRequest

    Returns
    -------
    str or None
    """
    if runs.empty:
        return None
    active = runs[runs["status"].isin(ACTIVE)]
    for row in active.itertuples():
        if _same_request(getattr(row, "config", None), request):
            return str(row.run_id)
    return None


def cv_command(db_path: str | Path, request: CvRequest, run_id: str) -> list[str]:
    """The CLI command line that runs ``request`` into the existing run row ``run_id``."""
    return [
        sys.executable, "-m", "core.cli", "--db", str(db_path), "cv",
        "--data", str(Path(request.data_dir).resolve()),
        "--model", request.model, "--mode", request.mode,
        "--folds", str(int(request.n_folds)), "--seed", str(int(request.seed)),
        "--balance", request.balance, "--run-id", run_id,
    ]  # fmt: skip


def start_cv(
    conn,
    request: CvRequest,
    *,
    workdir: str | Path = ROOT,
) -> str:
    """Queue a run row and launch its process detached; return the run id.

    The process runs in ``workdir`` (its ``runs/<run_id>/`` gets the artifacts and ``cv.log``).

    Raises
    ------
    ValueError
        If the data folder does not exist or has no ``manifest.csv``, or the same run is already
        queued or running.
    """
    data = Path(request.data_dir)
    if not data.is_dir():
        raise ValueError(f"data folder {data} does not exist: give a folder with DICOM files")
    if not (data / "manifest.csv").is_file():  # the CLI would fail at once: refuse before queuing
        raise ValueError(
            f"data folder {data} has no manifest.csv: it lists each image's patient, label and "
            "lesion box (see `cervixscope ingest --help`)"
        )
    duplicate = active_duplicate(
        db.runs_frame(conn), request
    )  # fresh: another tab may have started it
    if duplicate:
        raise ValueError(f"the same run is already {ACTIVE[0]} or {ACTIVE[1]}: {duplicate}")
    run_id = db.create_run(
        conn, model=request.model, mode=request.mode, config=request.config(),
        seed=int(request.seed), message="queued from the dashboard; starting the process",
    )  # fmt: skip
    log_path = Path(workdir) / "runs" / run_id / "cv.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    db_path = Path(conn.conn.execute("PRAGMA database_list").fetchone()[2])
    with open(log_path, "ab") as log:
        try:
            subprocess.Popen(  # noqa: S603 - a fixed argv of our own CLI, no shell
                cv_command(db_path, request, run_id),
                cwd=workdir,
                env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *python_path])},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the page, the session and a server reload
            )
        except OSError as exc:
            db.fail_run(conn, run_id, f"could not start: {exc}")
            raise
    return run_id
