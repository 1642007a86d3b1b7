"""Cohorts and sites (issue 19): ingestion records both per case, in a real SQLite file."""

from __future__ import annotations

import csv

import pytest

import db
from core.data.demo_data import generate_demo_cohort
from core.data.ingest import ingest_folder


def _with_sites(manifest, sites):
    """Rewrite the manifest with a ``site`` column: patient -> site from ``sites(patient)``."""
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "site"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "site": sites(row["patient_id"])})
    return {row["patient_id"]: sites(row["patient_id"]) for row in rows}


def test_cohort_and_site_are_stored_per_case(tmp_path):
    manifest = generate_demo_cohort(tmp_path / "data", seed=3, counts=(4, 2, 2))
    expected = _with_sites(manifest, lambda pid: "A" if int(pid[-4:]) % 2 else "B")
    conn = db.connect(tmp_path / "cs.db")
    try:
        result = ingest_folder(
            tmp_path / "data",
            conn=conn,
            progress=False,
            cohort="hospital-2",
            cache_dir=tmp_path / "cache",
        )
        cases = db.cases_frame(conn).set_index("case_id")
    finally:
        conn.close()
    assert not result.errors
    assert set(cases.index) == set(expected)
    assert (cases["cohort"] == "hospital-2").all()
    assert cases["site"].to_dict() == expected


def test_default_cohort_is_internal_and_site_is_optional(tmp_path):
    generate_demo_cohort(tmp_path / "data", seed=4, counts=(2, 1, 1))
    conn = db.connect(tmp_path / "cs.db")
    try:
        ingest_folder(tmp_path / "data", conn=conn, progress=False, cache_dir=tmp_path / "c")
        cases = db.cases_frame(conn)
    finally:
        conn.close()
    assert (cases["cohort"] == "internal").all()
    assert cases["site"].isna().all()


def test_an_unusable_cohort_name_is_one_clear_error(tmp_path):
    generate_demo_cohort(tmp_path / "data", seed=4, counts=(2, 1, 1))
    with pytest.raises(ValueError, match="cohort name"):
        ingest_folder(tmp_path / "data", progress=False, cohort="  ", cache_dir=tmp_path / "c")
