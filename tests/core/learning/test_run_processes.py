"""Real CV processes: killed, cancelled, started twice. Their runs must never stay running.

Each test starts ``python -m core.cli ... cv`` on the small cohort (finetune mode, so the run is
still going when the test acts on it), then kills, cancels or duplicates it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

import db
from core.learning import jobs
from db import clock

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def _wait_for(conn, run_id: str, status: str, *, process=None, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            run = db.get_run(conn, run_id)
        except db.RunNotFound:
            run = {"status": None}
        if run["status"] == status:
            return run
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the CV process ended ({process.returncode}) before {status}")
        assert time.monotonic() < deadline, f"run {run_id} is {run['status']}, not {status}"
        time.sleep(0.05)


def _zombie_or_alive(pid: int) -> bool:
    """Whether ``pid`` still has a process table entry (running, or exited but not waited for)."""
    return Path(f"/proc/{pid}").exists()


def test_a_killed_cv_process_run_is_failed_by_the_next_look(small_cohort_dir, tmp_path):
    path = tmp_path / "k.db"
    argv = [
        sys.executable, "-m", "core.cli", "--db", str(path), "--quiet", "cv",
        "--data", str(small_cohort_dir), "--model", "cnn", "--mode", "finetune", "--folds", "3",
        "--weights", "none", "--epochs", "200", "--run-id", "rkill",
    ]  # fmt: skip
    process = subprocess.Popen(argv, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)  # fmt: skip
    conn = db.connect(path)
    try:
        run = _wait_for(conn, "rkill", "running", process=process)
        assert run["pid"] == process.pid and run["heartbeat_at"]
        process.send_signal(signal.SIGKILL)  # no handler, no cleanup: as kill -9 or the OOM killer
        process.wait(timeout=30)
        look = subprocess.run(  # the next process that looks, e.g. the dashboard or the CLI
            [sys.executable, "-c", "import sys, db; r = db.get_run(db.connect(sys.argv[1]), "
             "'rkill'); print(r['status']); print(r['message'])", str(path)],
            cwd=ROOT, capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        conn.close()
        if process.poll() is None:
            process.kill()
    status, message = look.stdout.splitlines()[:2]
    assert status == "failed"
    assert f"process {process.pid}" in message and "stopped without finishing" in message


def test_a_cancelled_run_is_cancelled_its_process_gone_and_not_a_zombie(
    small_cohort_dir, tmp_path, monkeypatch
):
    path = tmp_path / "c.db"
    conn = db.connect(path)
    request = jobs.CvRequest(str(small_cohort_dir), "cnn", "finetune", 3, 0, "none")
    try:
        run_id = jobs.start_cv(conn, request, workdir=tmp_path)
        run = _wait_for(conn, run_id, "running")
        pid = run["pid"]
        # Twenty seconds later (the clock moved, not slept), the same start is still one run:
        # the process has recorded its full configuration by now, data folder included.
        start = clock.utc_now()
        monkeypatch.setattr(clock, "utc_now", lambda: start + timedelta(seconds=20))
        with pytest.raises(ValueError, match=f"already queued or running: {run_id}"):
            jobs.start_cv(conn, request, workdir=tmp_path)
        assert len(db.runs_frame(conn)) == 1
        monkeypatch.undo()

        said = jobs.cancel_cv(conn, run_id)
        assert f"process {pid} was asked to stop" in said
        deadline = time.monotonic() + 60
        while _zombie_or_alive(pid):  # stopped, and waited for by the starting process
            assert time.monotonic() < deadline, Path(f"/proc/{pid}/stat").read_text()
            time.sleep(0.1)
        run = db.get_run(conn, run_id)
        assert run["status"] == "cancelled", run["message"]
        assert run["message"] == "cancelled from the dashboard"
        assert not (Path(os.environ["CERVIXSCOPE_HOME"]) / "runs" / run_id / "model.pt").exists()
        log = (Path(os.environ["CERVIXSCOPE_HOME"]) / "runs" / run_id / "cv.log").read_text()
        assert "Traceback" not in log, log
        with pytest.raises(ValueError, match="is cancelled: only a queued or running run"):
            jobs.cancel_cv(conn, run_id)
    finally:
        conn.close()
