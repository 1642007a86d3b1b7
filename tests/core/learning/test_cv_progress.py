"""What a run's row says while it runs: stage names, folds counted from 1, never 100% early."""

from __future__ import annotations

import db
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from tests.core.cropsets import database_with_cases


def test_a_run_reports_its_stages_and_reaches_one_only_when_done(
    small_crops, tmp_path, monkeypatch
):
    conn = database_with_cases(tmp_path / "p.db", small_crops)
    seen: list[tuple[str, float, str]] = []
    real = db.report_progress

    def spy(conn_, run_id, fraction, message):  # records, then does the real write
        seen.append((db.get_run(conn_, run_id)["status"], fraction, message))
        real(conn_, run_id, fraction, message)

    monkeypatch.setattr(db, "report_progress", spy)
    cfg = RunConfig(model="cnn", mode="features", weights="none", n_folds=3, seed=0)
    run_id = run_cv(small_crops, cfg, conn=conn, runs_dir=tmp_path / "runs", cache_dir=False)
    messages = [m for _, _, m in seen]
    assert messages[0] == f"embedding {small_crops.n_images} crops"
    for k in (1, 2, 3):
        assert f"fold {k} of 3" in messages and f"fold {k} of 3 done" in messages
    assert "fold 0 of 3" not in " ".join(messages)
    assert messages[-1] == "final model on all data"
    assert all(status == "running" for status, _, _ in seen)
    fractions = [f for _, f, _ in seen]
    assert fractions == sorted(fractions) and max(fractions) < 1.0  # not 100% while it trains
    run = db.get_run(conn, run_id)
    assert (run["status"], run["progress"]) == ("done", 1.0)
