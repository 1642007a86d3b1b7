"""torch never enters the dashboard's server process: after an aided read (with its Grad-CAM)
and an admin's visit to every admin page, a fresh process that ran those sessions through the
app's own scripts has not imported torch. (Once loaded, torch made every later read of every
reader cost about 2.7x the server CPU.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import db
from core.data.labels import CLASSES
from db.clock import now_iso
from tests.dashboard.reader_study_helpers import ADMIN_SECRET
from tests.dashboard.server_session import ROOT

pytestmark = pytest.mark.timeout(900)


def test_no_torch_after_an_aided_read_and_every_admin_page(eval_db, tmp_path):
    path = tmp_path / "server.db"
    shutil.copy(eval_db.path, path)
    run_id = eval_db.run_ids[0]
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()[:3]
        study_id = db.create_study(
            conn, name="Aided server", case_ids=cases, arms=("unaided", "aided"),
            model_run_id=run_id,
        )  # fmt: skip
        reader_id, code = db.add_reader(conn, study_id, "Dr Server")
        for case_id in cases:  # unaided done, no washout: the aided arm is open
            db.submit_read(
                conn, study_id=study_id, reader_id=reader_id, case_id=case_id, arm="unaided",
                label=CLASSES[0], confidences={"SCC": 0.7, "AC": 0.15, "ASC": 0.15},
                shown_at=now_iso(),
            )  # fmt: skip
    finally:
        conn.close()
    env = dict(os.environ, CERVIXSCOPE_DB=str(path), CERVIXSCOPE_ADMIN_SECRET=ADMIN_SECRET)
    env["PYTHONPATH"] = str(ROOT)
    (tmp_path / "runs").symlink_to(eval_db.workdir / "runs")  # the fold models, shared read-only
    env["CERVIXSCOPE_HOME"] = str(tmp_path)  # this test's own caches
    done = subprocess.run(
        [sys.executable, "-m", "tests.dashboard.server_session", code, ADMIN_SECRET],
        cwd=eval_db.workdir,  # runs/<run_id>/ lives here, as in the server's working folder
        env=env,
        capture_output=True,
        text=True,
        timeout=800,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    report = json.loads(lines[-1].removeprefix("REPORT "))
    assert report["aided"] and report["gradcam_shown"], report  # the aid, Grad-CAM included
    assert report["acknowledged"] == 1, report  # the answer was stored in the background
    assert not report["reader_errors"] and not report["admin_exceptions"], report
    assert len(report["visited"]) == 7
    assert not report["torch_after_aided_read"], report
    assert not [page for page in report["visited"] if "torch" in page], report["visited"]
    assert not report["torch"] and not report["torchvision"], report
