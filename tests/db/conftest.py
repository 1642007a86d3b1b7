"""Shared fixtures: real SQLite files in a temporary folder, small cohorts written through db/."""

from __future__ import annotations

import pytest

import db

CLASSES = ("SCC", "AC", "ASC")


def make_cases(conn, n: int, *, prefix: str = "P", cohort: str = "internal") -> list[str]:
    """Upsert ``n`` cases of ``cohort`` labelled SCC, AC, ASC in turn; return their case keys."""
    rows = [
        {"patient_id": f"{prefix}{i:04d}", "cohort": cohort, "label": CLASSES[i % 3]}
        for i in range(n)
    ]
    db.upsert_cases(conn, rows)
    return [db.case_key(cohort, row["patient_id"]) for row in rows]


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "study.db"


@pytest.fixture
def conn(db_path):
    connection = db.connect(db_path)
    yield connection
    connection.close()


@pytest.fixture
def study(conn):
    """A 6-case, two-arm study with two readers: ``(study_id, case_ids, {name: (id, code)})``."""
    cases = make_cases(conn, 6)
    run_id = db.create_run(
        conn, model="resnet18", mode="features", config={}, seed=0, data_hash="h", device="cpu",
        weights=None, code_version=None, packages={},
    )  # fmt: skip
    study_id = db.create_study(
        conn, name="pilot", case_ids=cases, arms=("unaided", "aided"), model_run_id=run_id
    )
    readers = {name: db.add_reader(conn, study_id, name) for name in ("Dr A", "Dr B")}
    return study_id, cases, readers
