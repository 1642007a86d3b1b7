"""A tiny synthetic cohort, ingested without lesion boxes into a real SQLite file."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

import db
from core.data.demo_data import generate_demo_cohort
from core.data.ingest import ingest_folder

TINY_COUNTS = (3, 2, 1)


def manifest_rows(folder: Path) -> list[dict]:
    with (folder / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def write_boxless_manifest(folder: Path) -> Path:
    """The cohort's manifest without its box columns: what a user has before annotating."""
    out = folder / "manifest_no_boxes.csv"
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["patient_id", "path", "label"])
        for row in manifest_rows(folder):
            writer.writerow([row["patient_id"], row["path"], row["label"]])
    return out


@pytest.fixture(scope="module")
def tiny_cohort(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_cohort")
    generate_demo_cohort(folder, seed=3, counts=TINY_COUNTS)
    write_boxless_manifest(folder)
    return folder


@pytest.fixture
def unmarked_db(tiny_cohort, tmp_path):
    """A database holding the tiny cohort's cases and images, none of them marked yet."""
    conn = db.connect(tmp_path / "annotate.db")
    ingest_folder(tiny_cohort, tiny_cohort / "manifest_no_boxes.csv", conn=conn, progress=False)
    yield conn
    conn.close()
