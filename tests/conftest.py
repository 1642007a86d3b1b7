"""Shared fixtures: a small synthetic cohort built once per test session, and its crops."""

from __future__ import annotations

from pathlib import Path

import pytest

SMALL_COUNTS = (24, 10, 6)  # patients per class (SCC, AC, ASC): every class in every 3-fold split


def pytest_report_header(config) -> str:
    """The machine, first: a failure elsewhere than on the developer's CPU says where it ran."""
    from core.bench.machine import machine_line

    return f"machine: {machine_line()}"


@pytest.fixture(scope="session", autouse=True)
def project_home(tmp_path_factory) -> Path:
    """Every test writes runs and caches under one temporary project home, never the checkout."""
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CERVIXSCOPE_HOME", str(home))
        yield home


@pytest.fixture(scope="session")
def small_cohort_dir(tmp_path_factory) -> Path:
    """A demo cohort folder (DICOM + manifest.csv) with ``SMALL_COUNTS`` patients, seed 0.

    Treat it as read-only: tests that damage files should copy it first.
    """
    from core.data.demo_data import generate_demo_cohort

    out = tmp_path_factory.mktemp("small_cohort")
    generate_demo_cohort(out, seed=0, counts=SMALL_COUNTS)
    return out


@pytest.fixture(scope="session")
def small_crops(small_cohort_dir):
    """The small cohort's `CropSet` (100x100 crops) via `core.data.ingest.ingest_folder`."""
    from core.data.ingest import ingest_folder

    return ingest_folder(small_cohort_dir, progress=False).crops
