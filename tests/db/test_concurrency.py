"""Many writers at once: Streamlit sessions are threads, each with its own connection."""

from __future__ import annotations

import threading

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
