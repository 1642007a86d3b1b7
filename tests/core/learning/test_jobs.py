"""Queuing a CV from the dashboard: bad requests are refused before any run row exists."""

from __future__ import annotations

import sys

import pytest

import db
from core.learning import jobs


def test_start_cv_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "dicoms").mkdir()
    conn = db.connect(tmp_path / "j.db")
    request = jobs.CvRequest(str(tmp_path / "dicoms"), "cnn", "features", 3, 0, "none")
    with pytest.raises(ValueError, match=r"dicoms has no manifest\.csv"):
        jobs.start_cv(conn, request, workdir=tmp_path)
    assert db.runs_frame(conn).empty  # nothing queued that could block a retry


def test_only_an_active_run_of_the_same_request_is_a_duplicate(tmp_path):
    conn = db.connect(tmp_path / "j.db")
    request = jobs.CvRequest(str(tmp_path), "cnn", "features", 3, 0, "none")
    other = jobs.CvRequest(str(tmp_path), "cnn", "features", 3, 1, "none")
    assert jobs.active_duplicate(db.runs_frame(conn), request) is None
    done = db.create_run(conn, model="cnn", mode="features", config=request.config(), seed=0)
    db.finish_run(conn, done, status="done")
    assert jobs.active_duplicate(db.runs_frame(conn), request) is None
    queued = db.create_run(conn, model="cnn", mode="features", config=request.config(), seed=0)
    assert jobs.active_duplicate(db.runs_frame(conn), request) == queued
    assert jobs.active_duplicate(db.runs_frame(conn), other) is None
    db.start_run(conn, queued)  # running is active too
    assert jobs.active_duplicate(db.runs_frame(conn), request) == queued


def test_the_command_line_runs_the_request_into_its_run(tmp_path):
    request = jobs.CvRequest(str(tmp_path), "vgg16_bn", "finetune", 5, 7, "weights")
    argv = jobs.cv_command(tmp_path / "x.db", request, "r1")
    assert argv[:6] == [sys.executable, "-m", "core.cli", "--db", str(tmp_path / "x.db"), "cv"]
    options = dict(zip(argv[6::2], argv[7::2], strict=True))
    assert options == {
        "--data": str(tmp_path.resolve()), "--model": "vgg16_bn", "--mode": "finetune",
        "--folds": "5", "--seed": "7", "--balance": "weights", "--run-id": "r1",
    }  # fmt: skip


def test_queuing_a_job_never_loads_torch():
    """The dashboard's server imports this module: torch must stay out of that process."""
    import subprocess
    from pathlib import Path

    code = "import sys, core.learning.jobs; sys.exit('torch' in sys.modules)"
    root = Path(__file__).resolve().parents[3]
    assert subprocess.run([sys.executable, "-c", code], cwd=root, check=False).returncode == 0


def test_progress_lines_name_the_stage_and_the_time_left():
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    base = {"run_id": "r1", "model": "cnn", "mode": "features"}
    started = (now - timedelta(seconds=120)).isoformat()
    queued = jobs.progress_line({**base, "status": "queued", "progress": 0.0}, now)
    assert queued == "cnn (features) · r1 · queued: waiting for its process to start"
    fresh = {**base, "status": "running", "progress": 0.0, "message": None, "started_at": started}
    assert jobs.progress_line(fresh, now) == "cnn (features) · r1 · starting · 0%"
    # A quarter done in 120 s: 360 s left at that pace, said in minutes.
    row = {**fresh, "progress": 0.25, "message": "fold 2 of 10"}
    assert (
        jobs.progress_line(row, now)
        == "cnn (features) · r1 · fold 2 of 10 · 25% · about 6 min left"
    )
    assert jobs.eta_seconds(started, 0.25, now) == pytest.approx(360)
    assert jobs.eta_seconds(None, 0.5, now) is None


def test_stored_config_of_a_started_run_still_matches_its_request(tmp_path):
    """What `cervixscope cv` records when it takes a queued run (model info added) is the same run."""
    request = jobs.CvRequest(str(tmp_path), "cnn", "features", 3, 0, "none")
    recorded = request.config()
    recorded["extra"] = {**recorded["extra"], "model_info": {"weights": "none"}}
    conn = db.connect(tmp_path / "j.db")
    run_id = db.create_run(conn, model="cnn", mode="features", config=request.config(), seed=0)
    db.record_provenance(conn, run_id, config=recorded, data_hash="h", device="cpu",
                         weights="none", code_version="c", packages={})  # fmt: skip
    db.start_run(conn, run_id)
    assert jobs.active_duplicate(db.runs_frame(conn), request) == run_id
    elsewhere = jobs.CvRequest(str(tmp_path / "other"), "cnn", "features", 3, 0, "none")
    assert jobs.active_duplicate(db.runs_frame(conn), elsewhere) is None
