"""Many writers at once: Streamlit sessions are threads, each with its own connection."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import db
from tests.db.conftest import make_cases

N_THREADS = 20
N_CASES = 641


def test_20_threads_641_reads_each_leave_exactly_12820_reads(db_path):
    with db.connect(db_path) as conn:
        cases = make_cases(conn, N_CASES)
        study_id = db.create_study(conn, name="load", case_ids=cases)
        reader_ids = [db.add_reader(conn, study_id, f"R{i}")[0] for i in range(N_THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def read_all(reader_id: int) -> None:
        try:
            conn = db.connect(db_path)  # one connection per thread, as the pages do
            start.wait()
            for i, case_id in enumerate(cases):
                db.submit_read(
                    conn, study_id=study_id, reader_id=reader_id, case_id=case_id,
                    arm="unaided", label=("SCC", "AC", "ASC")[(i + reader_id) % 3],
                    confidences=(0.2, 0.3, 0.5), shown_at="2026-01-01T00:00:00Z",
                )  # fmt: skip
            conn.close()
        except BaseException as exc:  # collected: an exception in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=read_all, args=(rid,)) for rid in reader_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with db.connect(db_path) as conn:  # a fresh connection proves the commits reached the file
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
        progress = db.reader_progress_frame(conn, study_id)
    assert len(reads) == N_THREADS * N_CASES == 12_820
    assert not reads.duplicated(["reader_id", "case_id", "arm"]).any()
    assert len(audit) == 12_820 and set(audit["action"]) == {"insert"}
    assert progress["n_read"].tolist() == [N_CASES] * N_THREADS
    expected = {
        (rid, case_id): ("SCC", "AC", "ASC")[(i + rid) % 3]
        for rid in reader_ids
        for i, case_id in enumerate(cases)
    }
    got = dict(
        zip(zip(reads["reader_id"], reads["case_id"], strict=True), reads["label"], strict=True)
    )
    assert got == expected


JOB = """
import sys
import db

conn = db.connect(sys.argv[1])
run_id = sys.argv[2]
cases = sys.argv[3].split(",")
db.update_run(conn, run_id, status="running")
for step in range(int(sys.argv[4])):
    case_id = cases[step % len(cases)]
    db.save_predictions(conn, run_id, step % 10,
                        [{"case_id": case_id, "p_SCC": 0.5, "p_AC": 0.25, "p_ASC": 0.25}])
    db.update_run(conn, run_id, progress=(step + 1) / int(sys.argv[4]))
db.update_run(conn, run_id, status="done")
"""


def test_a_cv_job_in_another_process_and_reader_threads_write_together(db_path):
    with db.connect(db_path) as conn:
        cases = make_cases(conn, 120)
        run_id = db.create_run(
            conn, model="cnn", mode="finetune", config={}, seed=0, data_hash=None, device="cpu",
            weights=None, code_version=None, packages=None,
        )  # fmt: skip
        study_id = db.create_study(conn, name="mixed", case_ids=cases)
        reader_ids = [db.add_reader(conn, study_id, f"R{i}")[0] for i in range(4)]
    job = subprocess.Popen(
        [sys.executable, "-c", JOB, str(db_path), run_id, ",".join(cases), "400"],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[BaseException] = []

    def read_all(reader_id: int) -> None:
        try:
            with db.connect(db_path) as conn:
                for case_id in cases:
                    db.submit_read(
                        conn, study_id=study_id, reader_id=reader_id, case_id=case_id,
                        arm="unaided", label="SCC", confidences=None, shown_at=None,
                    )  # fmt: skip
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=read_all, args=(rid,)) for rid in reader_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, stderr = job.communicate(timeout=120)

    assert errors == [] and job.returncode == 0, stderr
    with db.connect(db_path) as conn:
        assert len(db.reads_frame(conn, study_id)) == 4 * 120
        assert len(db.predictions_frame(conn, run_id)) == 120
        run = db.get_run(conn, run_id)
    assert (run["status"], run["progress"]) == ("done", 1.0)


def test_many_sessions_opening_a_new_database_at_once_migrate_it_once(db_path):
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def open_and_write(i: int) -> None:
        try:
            start.wait()
            with db.connect(db_path) as conn:
                db.upsert_cases(conn, [{"case_id": f"internal/P{i}", "label": "SCC"}])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_write, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.connect(db_path) as conn:
        assert len(db.cases_frame(conn)) == 12
        names = [r["name"] for r in conn.query("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert names == list(db.schema.MIGRATION_NAMES)
