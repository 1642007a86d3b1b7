"""The Run page on a real database: live progress with stage names, one fresh runs table, Cancel."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

import db
from dashboard.auth import Identity

ROOT = Path(__file__).resolve().parents[2]


def _run_page(path, monkeypatch) -> AppTest:
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/run_cv.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _bars(at: AppTest) -> list[str]:
    return [p.proto.text for p in at.get("progress")]


def test_a_started_run_shows_its_stage_and_the_table_agrees(tmp_path, monkeypatch):
    path = tmp_path / "run.db"
    conn = db.connect(path)
    run_id = db.create_run(conn, model="cnn", mode="features", config={}, seed=0)
    db.start_run(conn, run_id)  # its process has not reported a stage yet
    at = _run_page(path, monkeypatch)
    (bar,) = _bars(at)
    assert "running:" not in bar and "starting" in bar and run_id in bar
    (table,) = [d.value for d in at.dataframe if "status" in d.value.columns]
    assert table.set_index("run_id").loc[run_id, "status"] == "running"  # not "queued, 0"
    db.report_progress(conn, run_id, 4 / 5, "final model on all data")
    at.run()
    (bar,) = _bars(at)
    assert "final model on all data · 80%" in bar
    conn.close()


def test_cancel_on_the_page_marks_the_run_cancelled(tmp_path, monkeypatch):
    path = tmp_path / "run.db"
    conn = db.connect(path)
    run_id = db.create_run(conn, model="cnn", mode="features", config={}, seed=0)
    at = _run_page(path, monkeypatch)
    at.button(key=f"cancel_{run_id}").click().run()
    assert not at.exception
    assert any(f"run {run_id} cancelled" in i.value for i in at.info)
    assert db.get_run(conn, run_id)["status"] == "cancelled"
    assert _bars(at) == []  # nothing left queued or running
    conn.close()
