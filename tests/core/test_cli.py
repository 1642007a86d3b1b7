"""The CLI shell: bad input gives one line on stderr and exit status 2; runs merge across jobs."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import db
from core.cli import main

CV = ["--mode", "features", "--model", "cnn", "--weights", "none", "--folds", "3", "--quiet"]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"cervixscope {command}: error: ")
    return err


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 24-patient cohort, and a database with one full 3-fold CLI run of it (cwd-relative
    artifacts and caches live in the same temporary folder)."""
    from core.data.demo_data import generate_demo_cohort

    root = tmp_path_factory.mktemp("cli")
    data = root / "data"
    generate_demo_cohort(data, seed=0, counts=(12, 6, 6))
    with contextlib.chdir(root):
        assert main(["--db", "full.db", "cv", "--data", str(data), *CV, "--run-id", "full"]) == 0
    return root, data


def _oof(db_path, run_id):
    frame = db.predictions_frame(db.connect(db_path), [run_id])
    return frame.sort_values("case_id").reset_index(drop=True)


def test_only_folds_jobs_merge_to_the_full_run(tiny, monkeypatch):
    root, data = tiny
    monkeypatch.chdir(root)
    base = ["--db", "split.db", "cv", "--data", str(data), *CV]
    assert main([*base, "--only-folds", "0", "--run-id", "split"]) == 0
    conn = db.connect(root / "split.db")
    assert db.get_run(conn, "split")["status"] == "partial"
    assert main([*base, "--only-folds", "1,2", "--run-id", "split"]) == 0
    assert db.get_run(conn, "split")["status"] == "done"

    full, split = _oof(root / "full.db", "full"), _oof(root / "split.db", "split")
    assert list(split["case_id"]) == list(full["case_id"])
    assert list(split["fold"]) == list(full["fold"])
    probs = ["p_SCC", "p_AC", "p_ASC"]
    np.testing.assert_allclose(split[probs].to_numpy(), full[probs].to_numpy(), atol=1e-6)


def test_cv_help_explains_only_folds(capsys):
    with pytest.raises(SystemExit):
        main(["cv", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--folds is the number of folds" in out
    assert "--only-folds 0,3" in out


def test_failed_start_marks_a_queued_run_failed(tmp_path, monkeypatch, capsys):
    """A dashboard-queued run whose data has no manifest must not stay queued forever."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    conn = db.connect(tmp_path / "q.db")
    run_id = db.create_run(
        conn, model="cnn", mode="features", config={}, seed=0, data_hash=None, device=None,
        weights=None, code_version=None, packages=None,
    )  # fmt: skip
    assert db.get_run(conn, run_id)["status"] == "queued"

    code = main(["--db", "q.db", "cv", "--data", "empty", *CV, "--run-id", run_id])

    assert code == 2
    assert "manifest" in _one_line_error(capsys, "cv")
    run = db.get_run(db.connect(tmp_path / "q.db"), run_id)  # reopened: the write was committed
    assert run["status"] == "failed"
    assert "manifest" in run["message"]


def test_failed_setup_in_run_cv_marks_a_queued_run_failed(tiny, tmp_path, monkeypatch, capsys):
    """Too many folds for the smallest class fails in run_cv before any fold starts."""
    _, data = tiny
    monkeypatch.chdir(tmp_path)
    conn = db.connect(tmp_path / "q.db")
    run_id = db.create_run(
        conn, model="cnn", mode="features", config={}, seed=0, data_hash=None, device=None,
        weights=None, code_version=None, packages=None,
    )  # fmt: skip
    args = [a if a != "3" else "10" for a in CV]
    code = main(["--db", "q.db", "cv", "--data", str(data), *args, "--run-id", run_id])
    assert code == 2
    assert "use --folds <= 6" in _one_line_error(capsys, "cv")
    run = db.get_run(db.connect(tmp_path / "q.db"), run_id)
    assert run["status"] == "failed"
    assert "use --folds <= 6" in run["message"]


def test_refused_merge_keeps_a_done_run_done(tiny, monkeypatch, capsys):
    """Only a queued run is marked failed: a refused merge leaves a finished run as it was."""
    root, data = tiny
    monkeypatch.chdir(root)
    args = [a if a != "3" else "4" for a in CV]
    code = main(["--db", "full.db", "cv", "--data", str(data), *args, "--run-id", "full"])
    assert code == 2
    assert "other settings (n_folds)" in _one_line_error(capsys, "cv")
    assert db.get_run(db.connect(root / "full.db"), "full")["status"] == "done"


def test_not_a_database(tmp_path, capsys):
    bogus = tmp_path / "notes.txt"
    bogus.write_text("hello, this is not SQLite\n" * 100)
    assert main(["--db", str(bogus), "study", "export-reads", "--study", "1",
                 "--out", str(tmp_path / "x.csv")]) == 2  # fmt: skip
    err = _one_line_error(capsys, "study")
    assert f"{bogus} is not a CervixScope database (file is not a database)" in err


def test_predict_on_a_file_that_is_not_dicom(tiny, monkeypatch, capsys):
    root, _ = tiny
    monkeypatch.chdir(root)
    (root / "README.md").write_text("# not an image\n")
    code = main(["--db", "full.db", "predict", "README.md", "--roi", "10,10,50,50",
                 "--run-id", "full"])  # fmt: skip
    assert code == 2
    assert "README.md" in _one_line_error(capsys, "predict")


def test_import_reads_into_a_closed_study(tmp_path, capsys):
    from tests.db.conftest import make_cases

    conn = db.connect(tmp_path / "s.db")
    study_id = db.create_study(conn, name="s", case_ids=make_cases(conn, 2))
    db.close_study(conn, study_id)
    csv_file = tmp_path / "reads.csv"
    db.export_reads_csv(conn, study_id, csv_file)
    code = main(["--db", str(tmp_path / "s.db"), "study", "import-reads", "--study",
                 str(study_id), str(csv_file)])  # fmt: skip
    assert code == 2
    assert "is closed" in _one_line_error(capsys, "study")
