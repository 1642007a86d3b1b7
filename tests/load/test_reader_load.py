"""Many readers at once through the reading page's own calls (`core.reader_study.reading`).

Each reader session is a thread with its own short-lived connections, as a Streamlit session is.
A session signs in with its access code (`db.authenticate_reader`, as pages/sign_in.py does),
resumes at the first unread case, and for every case runs what the reading page runs around one
answer: ``submit_answer`` (the "Submit and next" button), ``first_unread`` (where to go next) and
``case_for_reader(..., with_images=False)`` (the next case's metadata: position, display id,
progress, the reader's own earlier answer). Image decoding is left out on purpose: it does not touch
the database and would turn this into a DICOM benchmark. Some answers are sent twice, in turn or
from a second thread at the same moment (a retried request, a double click), and some are changed;
each must leave one read and one more audit row.

The figures (reads/s, submit latency percentiles) are printed and written to
``test-artifacts/load.json``; they are reported, never asserted.
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

import db
from core.data.labels import CLASSES
from core.reader_study import reading
from db.clock import now_iso

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
ARM = "unaided"
RETRY_EVERY = 50  # the same answer sent again right after (a retried request)
RACE_EVERY = 71  # the same answer sent from a second thread at the same time (a double click)
CHANGE_EVERY = 97  # a different answer sent again (the reader changes their mind)


def answer(reader_no: int, display_id: str, *, changed: bool = False) -> tuple[str, dict]:
    """A deterministic answer: label and slider confidences (0-100) that favour it."""
    k = (reader_no + sum(map(ord, display_id)) + (1 if changed else 0)) % 3
    sliders = {name: 10 for name in CLASSES}
    sliders[CLASSES[k]] = 60 + 10 * (reader_no % 3)
    sliders[CLASSES[(k + 1) % 3]] = 30
    return CLASSES[k], sliders


def normalised(sliders: dict) -> dict:
    """What the database should hold: the sliders scaled to sum to 1 (computed independently)."""
    total = sum(sliders.values())
    return {f"c_{name}": sliders[name] / total for name in CLASSES}


@dataclass
class Session:
    """One reader's session: what it sent and what it saw."""

    reader_no: int
    code: str
    reader_id: int | None = None
    final: dict = field(default_factory=dict)  # display_id -> (label, sliders) last sent
    extra_submits: dict = field(default_factory=dict)  # display_id -> submits beyond the first
    submit_s: list = field(default_factory=list)  # every submit_answer call
    cycle_s: list = field(default_factory=list)  # submit + next position + next case metadata
    read_ids: dict = field(default_factory=dict)  # display_id -> set of read ids returned
    errors: list = field(default_factory=list)


def _submit(session: Session, study_id: int, case, label, sliders, shown, db_path) -> None:
    start = time.perf_counter()
    read_id = reading.submit_answer(
        study_id, session.reader_id, ARM, case.position, label, sliders, shown, db_path=db_path
    )
    session.submit_s.append(time.perf_counter() - start)
    session.read_ids.setdefault(case.display_id, set()).add(read_id)


def run_session(session: Session, study_id: int, db_path: Path, barrier: threading.Barrier):
    """The reading page's calls for one reader, from sign-in to the last case."""
    try:
        conn = db.connect(db_path)
        try:
            session.reader_id = db.authenticate_reader(conn, session.code).reader_id
        finally:
            conn.close()
        barrier.wait()
        case = reading.load_next_case(
            study_id, session.reader_id, ARM, db_path=db_path, with_images=False
        )
        while case is not None:
            shown = now_iso()
            label, sliders = answer(session.reader_no, case.display_id)
            start = time.perf_counter()
            _submit(session, study_id, case, label, sliders, shown, db_path)
            extra = 0
            if case.position % RETRY_EVERY == 0:
                _submit(session, study_id, case, label, sliders, shown, db_path)
                extra += 1
            if case.position % RACE_EVERY == 0:
                twins = [
                    threading.Thread(
                        target=_guarded,
                        args=(
                            session,
                            _submit,
                            session,
                            study_id,
                            case,
                            label,
                            sliders,
                            shown,
                            db_path,
                        ),
                    )  # fmt: skip
                    for _ in range(2)
                ]
                for twin in twins:
                    twin.start()
                for twin in twins:
                    twin.join()
                extra += 2
            if case.position % CHANGE_EVERY == 0:
                label, sliders = answer(session.reader_no, case.display_id, changed=True)
                _submit(session, study_id, case, label, sliders, shown, db_path)
                extra += 1
            session.final[case.display_id] = (label, sliders)
            if extra:
                session.extra_submits[case.display_id] = extra
            nxt = reading.first_unread(study_id, session.reader_id, ARM, db_path=db_path)
            case = (
                None
                if nxt is None
                else reading.case_for_reader(
                    study_id, session.reader_id, ARM, nxt, db_path=db_path, with_images=False
                )
            )
            session.cycle_s.append(time.perf_counter() - start)
    except BaseException as exc:  # noqa: BLE001 - collected: an exception in a thread is lost
        session.errors.append(repr(exc))


def _guarded(session: Session, fn, *args) -> None:
    try:
        fn(*args)
    except BaseException as exc:  # noqa: BLE001 - collected, as in run_session
        session.errors.append(repr(exc))


def build_study(db_path: Path, n_cases: int, n_readers: int) -> tuple[int, list[str]]:
    """``n_cases`` cases (rows only: no images are decoded here) and a study with its readers."""
    conn = db.connect(db_path)
    try:
        ids = [f"internal/LOAD{i:04d}" for i in range(n_cases)]
        db.upsert_cases(conn, [{"case_id": c, "label": CLASSES[i % 3]} for i, c in enumerate(ids)])
        study_id = db.create_study(conn, name="load", case_ids=ids)
        codes = [db.add_reader(conn, study_id, f"Reader {i:02d}")[1] for i in range(n_readers)]
    finally:
        conn.close()
    return study_id, codes


def run_load(db_path: Path, n_cases: int, n_readers: int) -> tuple[int, list[Session], dict]:
    study_id, codes = build_study(db_path, n_cases, n_readers)
    sessions = [Session(i, code) for i, code in enumerate(codes)]
    barrier = threading.Barrier(n_readers)
    threads = [
        threading.Thread(target=run_session, args=(s, study_id, db_path, barrier), daemon=True)
        for s in sessions
    ]
    start, cpu_start = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=900)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    submits = np.array([t for s in sessions for t in s.submit_s]) * 1000
    cycles = np.array([t for s in sessions for t in s.cycle_s]) * 1000
    n_reads = sum(len(s.final) for s in sessions)
    figures = {
        "readers": n_readers,
        "cases": n_cases,
        "reads": n_reads,
        "submits": int(submits.size),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 1),  # this process, all threads: the cost apart from contention
        "reads_per_s": round(n_reads / wall, 1),
        "submit_ms": _percentiles(submits),
        "cycle_ms": _percentiles(cycles),
        "includes": "sign-in once per session; per case: core.reader_study.reading.submit_answer, "
        "first_unread, case_for_reader(with_images=False); each call opens its own connection",
        "excludes": "DICOM decoding and rendering of the slice, Streamlit itself",
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 1),  # other work on the machine meanwhile
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    return study_id, sessions, figures


def _percentiles(ms: np.ndarray) -> dict:
    if ms.size == 0:
        return {}
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "p50": round(p50, 2),
        "p95": round(p95, 2),
        "p99": round(p99, 2),
        "max": round(ms.max(), 2),
    }


def report(figures: dict, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(
        f"\n{figures['readers']} readers x {figures['cases']} cases: {figures['reads']} reads "
        f"({figures['submits']} submits) in {figures['wall_s']} s ({figures['cpu_s']} s CPU, "
        f"load {figures['load_average_1m']}) = {figures['reads_per_s']} "
        f"reads/s; submit p50 {figures['submit_ms']['p50']} ms, p95 {figures['submit_ms']['p95']}"
        f" ms; submit+next case p95 {figures['cycle_ms']['p95']} ms -> {path}"
    )


def check_database(db_path: Path, study_id: int, sessions: list[Session], n_cases: int) -> None:
    """Every read stored once with the last answer sent; one audit row per submit."""
    assert [e for s in sessions for e in s.errors] == []  # no error reached a reader
    conn = db.connect(db_path)  # a fresh connection: the commits reached the file
    try:
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
        progress = db.reader_progress_frame(conn, study_id)
    finally:
        conn.close()
    n_readers = len(sessions)
    assert len(reads) == n_readers * n_cases
    assert not reads.duplicated(["reader_id", "case_id", "arm"]).any()
    assert progress["n_read"].tolist() == [n_cases] * n_readers

    by_reader = {s.reader_id: s for s in sessions}
    expected_extra = 0
    for row in reads.itertuples():
        session = by_reader[row.reader_id]
        label, sliders = session.final[row.display_id]
        assert row.label == label, (row.reader_id, row.display_id)
        got = (row.c_SCC, row.c_AC, row.c_ASC)
        np.testing.assert_allclose(got, list(normalised(sliders).values()), rtol=1e-12)
        extra = session.extra_submits.get(row.display_id, 0)
        expected_extra += extra
        assert row.revision == 1 + extra, (row.reader_id, row.display_id)
        assert session.read_ids[row.display_id] == {row.read_id}  # every submit, same read
    assert all(len(s.final) == n_cases for s in sessions)
    assert expected_extra > 0  # the mix did include retried, raced and changed answers
    counts = audit["action"].value_counts().to_dict()
    assert counts == {"insert": n_readers * n_cases, "update": expected_extra}
    per_read = audit.groupby("read_id").size()
    assert per_read.sum() == sum(len(s.submit_s) for s in sessions)
    assert set(per_read.index) == set(reads["read_id"])
    for session in sessions:  # and each reader's own view says: finished
        assert reading.first_unread(study_id, session.reader_id, ARM, db_path=db_path) is None
        status = reading.worklist_status(study_id, session.reader_id, ARM, db_path=db_path)
        assert status["read"].all() and len(status) == n_cases


def test_four_readers_small_study(tmp_path):
    """A quick version of the load test below (same checks, 4 readers x 120 cases)."""
    study_id, sessions, figures = run_load(tmp_path / "load.db", n_cases=120, n_readers=4)
    check_database(tmp_path / "load.db", study_id, sessions, 120)
    report(figures, "load-small.json")


@pytest.mark.slow
def test_20_reader_sessions_each_read_a_641_case_study(tmp_path):
    study_id, sessions, figures = run_load(tmp_path / "load.db", n_cases=641, n_readers=20)
    report(figures, "load.json")  # before the checks, so a failing run still leaves its figures
    check_database(tmp_path / "load.db", study_id, sessions, 641)
    assert figures["reads"] == 12_820
