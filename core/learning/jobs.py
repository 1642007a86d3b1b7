"""Start a cross-validation as a detached background process that the dashboard only watches.

The run row is created first (status ``queued``, with the full configuration the process will
record) so the page can show it at once and refuse a duplicate; the process
(``python -m core.cli --db DB cv ... --run-id ID``) then owns it. It runs in its own session, so
leaving or reloading the page, or the Streamlit session ending, never kills it; a thread of the
starting process waits for it, so it never lingers as a zombie. ``cancel_cv`` marks the run
cancelled and asks its process to stop (SIGTERM, which the process turns into a cancelled run).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

import db
from core.learning.artifacts import run_dir
from core.learning.config import RunConfig

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
        """The full configuration ``cervixscope cv`` records for this request (the data folder
        in ``extra``), so a queued run and the same run once started compare equal."""
        cfg = RunConfig(
            model=self.model, mode=self.mode, n_folds=int(self.n_folds), seed=int(self.seed),
            balance=self.balance, extra={"data_dir": str(Path(self.data_dir).resolve())},
        )  # fmt: skip
        return cfg.to_dict()


def comparable_config(config: dict | None) -> dict:
    """A stored run configuration without what its process adds about itself (the model's info)."""
    config = dict(config or {})
    config["extra"] = {k: v for k, v in (config.get("extra") or {}).items() if k != "model_info"}
    return config


def _same_request(config: dict | None, request: CvRequest) -> bool:
    return comparable_config(config) == comparable_config(request.config())


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

    The process runs in ``workdir``; its artifacts and ``cv.log`` go to ``<project home>/runs/
    <run_id>/`` (``core.project.home``), wherever it runs.

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
    log_path = run_dir(run_id) / "cv.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    python_path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    db_path = Path(conn.conn.execute("PRAGMA database_list").fetchone()[2])
    with open(log_path, "ab") as log:
        try:
            process = subprocess.Popen(  # noqa: S603 - a fixed argv of our own CLI, no shell
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
    db.heartbeat(conn, run_id, pid=process.pid)  # which process owns it, from the first second
    # Wait for it in the background: an exited child that nobody waits for stays a zombie.
    threading.Thread(target=process.wait, name=f"reap-{run_id}", daemon=True).start()
    return run_id


def _is_cv_process(pid: int) -> bool:
    """Whether ``pid`` still runs our CLI (not a stranger that reused a dead run's pid)."""
    try:
        cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()  # no /proc here: trust the pid
    except OSError:
        return False
    return b"core.cli" in cmdline or b"cervixscope" in cmdline


def cancel_cv(conn, run_id: str, *, reason: str = "cancelled from the dashboard") -> str:
    """Cancel a queued or running run and ask its process to stop; return what was done.

    The run is marked ``cancelled`` first, so nothing its process writes afterwards (progress,
    folds, ``done``) can make it look finished; then its process gets SIGTERM, which it turns
    into a clean stop. A process on another machine stops at its next heartbeat.

    Raises
    ------
    ValueError
        If the run is not queued or running.
    db.RunNotFound
        If there is no such run.
    """
    run = db.cancel_run(conn, run_id, reason)
    pid, host = run.get("pid"), run.get("host")
    if pid is None:
        return f"run {run_id} cancelled before any process took it"
    if host != socket.gethostname():
        return f"run {run_id} cancelled; its process {pid} on {host} stops at its next heartbeat"
    if _is_cv_process(int(pid)):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            return f"run {run_id} cancelled; its process {pid} had already ended"
    return f"run {run_id} cancelled; its process {pid} was asked to stop"


def eta_seconds(started_at: str | None, progress: float, now: datetime) -> float | None:
    """Seconds left for a running run, from its pace so far (elapsed * (1 - p) / p); None when
    there is no pace yet (not started, or nothing done)."""
    if not started_at or not progress or progress <= 0 or progress >= 1:
        return None
    elapsed = (now - pd.Timestamp(started_at).to_pydatetime()).total_seconds()
    if elapsed <= 0:
        return None
    return elapsed * (1.0 - progress) / progress


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, math.ceil(seconds / 5) * 5)} s"
    if seconds < 90 * 60:
        return f"{math.ceil(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def progress_line(run: dict, now: datetime) -> str:
    """One run's progress as the Run page shows it: model, stage, percent and time left.

    ``run`` is a row of :func:`db.runs_frame` (a dict); a running run without a stage yet says
    "starting", a queued one that it waits for its process.
    """
    head = f"{run['model']} ({run['mode']}) · {run['run_id']}"
    if run["status"] == "queued":
        return f"{head} · queued: waiting for its process to start"
    message = run.get("message")
    stage = message if isinstance(message, str) and message.strip() else "starting"
    fraction = float(run.get("progress") or 0.0)
    line = f"{head} · {stage} · {fraction:.0%}"
    eta = eta_seconds(run.get("started_at"), fraction, now)
    return line if eta is None else f"{line} · about {_duration(eta)} left"
