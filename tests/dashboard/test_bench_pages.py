"""`cervixscope bench` part p on the dashboard tests' database: simulated readers read every case,
and the reader analysis renders through AppTest in a child process without errors or torch."""

from __future__ import annotations

import shutil

import pytest

import db
from core.bench import pages as bench_pages


def test_simulated_readers_read_every_case_of_the_study(tmp_path, eval_db):
    path = tmp_path / "copy.db"
    shutil.copy(eval_db.path, path)
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()
        study_id = db.create_study(conn, name="bench", case_ids=cases, arms=("unaided",))
        assert bench_pages.add_simulated_readers(conn, study_id, 3) == 3
        reads = db.reads_frame(conn, study_id)
        assert len(reads) == 3 * len(cases)
        assert reads.groupby("reader_id")["case_id"].nunique().eq(len(cases)).all()
        assert bench_pages.add_simulated_readers(conn, study_id, 3) == 3  # already there
        assert len(db.reads_frame(conn, study_id)) == 3 * len(cases)
    finally:
        conn.close()


@pytest.mark.timeout(600)
def test_the_reader_analysis_part_renders_the_page_without_errors(tmp_path, eval_db):
    path = tmp_path / "copy.db"
    shutil.copy(eval_db.path, path)
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()
        db.create_study(conn, name="bench", case_ids=cases, arms=("unaided",),
                        model_run_id=eval_db.run_ids[0])  # fmt: skip
    finally:
        conn.close()
    out = bench_pages.reader_analysis(path, n_readers=3)
    assert out["readers"] == 3 and out["reads"] == 3 * len(cases)
    assert out["errors"] == [] and out["torch"] is False
    assert out["first_seconds"] > 0 and out["rerun_seconds"] > 0


@pytest.mark.timeout(600)
def test_a_page_render_reports_its_first_render_and_a_rerun(eval_db):
    from core.bench.children import run_child
    from core.bench.report import _pages_table

    env = bench_pages._env(eval_db.path, "b" * 16)
    out = run_child(["dashboard.bench_pages", "page", "cv_results"], env)
    assert out["errors"] == [] and out["torch"] is False
    assert out["seconds"] > 0 and out["rerun_seconds"] > 0
    line = _pages_table([out], None).splitlines()[1].split()
    assert line[0] == "cv_results" and float(line[2]) == pytest.approx(
        out["rerun_seconds"], abs=0.01
    )


def test_a_scaled_database_has_every_case_image_and_prediction_times_the_factor(tmp_path, eval_db):
    from core.bench.report import scales_table

    conn = db.connect(eval_db.path)
    try:
        n_cases = len(db.cases_frame(conn))
        n_images = len(db.images_frame(conn))
        n_predictions = len(db.predictions_frame(conn, list(eval_db.run_ids)))
    finally:
        conn.close()
    out = tmp_path / "scaled.db"
    study_id = bench_pages.scaled_database(eval_db.path, out, 2, n_readers=3)
    conn = db.connect(out)
    try:
        assert len(db.cases_frame(conn)) == 2 * n_cases
        assert len(db.images_frame(conn)) == 2 * n_images
        assert len(db.predictions_frame(conn, list(eval_db.run_ids))) == 2 * n_predictions
        reads = db.reads_frame(conn, study_id)
        assert len(reads) == 3 * 2 * n_cases and db.get_study(conn, study_id)["model_run_id"]
    finally:
        conn.close()
    page = {"page": "overview", "seconds": 0.5, "rerun_seconds": 0.1, "errors": []}
    analysis = {"readers": 3, "reads": 9, "first_seconds": 1.0, "rerun_seconds": 0.2, "errors": []}
    table = scales_table({
        "1x": {"cases": 3, "pages": [page], "reader_analysis": analysis},
        "10x": {"cases": 30, "pages": [{**page, "seconds": 1.5}], "reader_analysis": analysis},
    })  # fmt: skip
    row = next(line for line in table.splitlines() if line.strip().startswith("overview"))
    assert "0.50  0.10 |  1.50  0.10 |   3.0x   1.0x" in row
