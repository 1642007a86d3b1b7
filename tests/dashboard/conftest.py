"""A real database for the dashboard tests: the small cohort ingested and two short real CV runs.

Built once per session (features mode on CPU, 3 folds, random-init weights: no download) and
treated as read-only by the tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

MODELS = ("cnn", "resnet18")


@pytest.fixture(autouse=True)
def background_updates_finish():
    """A page's background recomputations (dashboard.saved) end with the test that started
    them: none writes into the next test's database or shows in its pages."""
    yield
    from dashboard import saved

    assert saved.wait_until_updated(300), "background table updates still running after 300 s"


@dataclass(frozen=True)
class EvalDB:
    path: Path
    workdir: Path  # the project home: the database and runs/<run_id>/ (final and fold models)
    run_ids: tuple[str, ...]
    data_dir: Path


@pytest.fixture(scope="session")
def eval_db(small_cohort_dir, tmp_path_factory) -> EvalDB:
    import torch

    import db
    from core.data.ingest import ingest_folder
    from core.learning.config import RunConfig
    from core.learning.cv import run_cv

    torch.set_num_threads(1)
    workdir = tmp_path_factory.mktemp("eval_db")
    path = workdir / "cervixscope.db"
    conn = db.connect(path)
    try:
        crops = ingest_folder(small_cohort_dir, conn=conn, progress=False).crops
        comparison = "cmp-test"
        run_ids = tuple(
            run_cv(
                crops,
                RunConfig(model=model, mode="features", weights="none", n_folds=3, seed=0),
                conn=conn,
                comparison_id=comparison,
                runs_dir=workdir / "runs",
                cache_dir=False,
            )
            for model in MODELS
        )
    finally:
        conn.close()
    return EvalDB(path=path, workdir=workdir, run_ids=run_ids, data_dir=small_cohort_dir)


@pytest.fixture
def eval_env(eval_db, monkeypatch) -> EvalDB:
    """Point the app at the eval database and its project home (the runs) for one test."""
    monkeypatch.setenv("CERVIXSCOPE_DB", str(eval_db.path))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(eval_db.workdir))
    return eval_db


@pytest.fixture(scope="module")
def cohort_db(small_cohort_dir, tmp_path_factory) -> Path:
    """A fresh database file per test module with the small cohort ingested (no study yet)."""
    import db
    from core.data.ingest import ingest_folder

    path = tmp_path_factory.mktemp("cohort_db") / "study.db"
    conn = db.connect(path)
    try:
        ingest_folder(small_cohort_dir, conn=conn, progress=False)
    finally:
        conn.close()
    return path


@pytest.fixture
def app_env(cohort_db, monkeypatch) -> Path:
    """The app pointed at this module's cohort database, with the reader-study admin secret."""
    from tests.dashboard.reader_study_helpers import ADMIN_SECRET

    monkeypatch.setenv("CERVIXSCOPE_DB", str(cohort_db))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    return cohort_db
