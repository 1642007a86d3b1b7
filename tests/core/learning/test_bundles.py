"""Result bundles: --only-folds jobs write bundles (never the study database), `merge` joins them
into a fresh database as exactly the full run, and refuses bundles that do not belong together."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import db
from core.cli import main

PROBS = ["p_SCC", "p_AC", "p_ASC"]
COMMON = ["--model", "resnet18", "--weights", "none", "--folds", "3"]


def cv(tmp_path: Path, cohort: Path, name: str, *extra: str) -> int:
    argv = [
        "--db", str(tmp_path / f"{name}.db"), "--home", str(tmp_path / f"home-{name}"),
        "--quiet", "cv", "--data", str(cohort), *COMMON, *extra,
    ]  # fmt: skip
    return main(argv)


@pytest.fixture(scope="module")
def jobs(tmp_path_factory, small_cohort_dir):
    """A full run in one database, and the same run as two bundle jobs (folds 0,1 and 2)."""
    tmp = tmp_path_factory.mktemp("bundles")
    assert cv(tmp, small_cohort_dir, "full", "--seed", "1", "--run-id", "full") == 0
    for name, folds in (("b01", "0,1"), ("b2", "2")):
        bundle = str(tmp / name)
        code = cv(tmp, small_cohort_dir, name, "--seed", "1", "--only-folds", folds,
                  "--run-id", "split", "--bundle", bundle)  # fmt: skip
        assert code == 0
        assert not (tmp / f"{name}.db").exists()  # a bundle job never opens the study database
    return tmp


def merge(tmp: Path, target: str, *bundles: str) -> int:
    argv = ["--db", str(tmp / f"{target}.db"), "--home", str(tmp / f"home-{target}"), "merge"]
    return main([*argv, *[str(tmp / b) for b in bundles]])


def test_bundles_merged_into_a_fresh_database_give_exactly_the_full_run(jobs):
    assert merge(jobs, "merged", "b01", "b2") == 0
    full, merged = db.connect(jobs / "full.db"), db.connect(jobs / "merged.db")

    for frame in (db.predictions_frame, db.image_predictions_frame):
        a, b = frame(full, ["full"]), frame(merged, ["split"])
        keys = [c for c in ("case_id", "image_id", "fold", "label") if c in a]
        assert a[keys].to_numpy().tolist() == b[keys].to_numpy().tolist()
        assert np.array_equal(a[PROBS].to_numpy(), b[PROBS].to_numpy())
    cols = ["fold", "n_train", "n_test", "metrics"]
    a, b = db.folds_frame(full, ["full"])[cols], db.folds_frame(merged, ["split"])[cols]
    assert a.to_numpy().tolist() == b.to_numpy().tolist()
    run, whole = db.get_run(merged, "split"), db.get_run(full, "full")
    assert run["status"] == "done" and run["progress"] == 1.0
    for key in ("model", "mode", "seed", "data_hash", "packages", "weights"):
        assert run[key] == whole[key], key
    # (the checkout's commit may move between the full run and the jobs: compare with the bundle)
    manifest = json.loads((jobs / "b2" / "bundle.json").read_text())
    assert run["code_version"] == manifest["run"]["code_version"]
    same = ("folds", "extra")
    assert {k: v for k, v in run["config"].items() if k not in same} == {
        k: v for k, v in whole["config"].items() if k not in same
    }
    assert set(run["warnings"]) == set(whole["warnings"])
    models = jobs / "home-merged" / "runs" / "split" / "fold_models"
    assert sorted(p.name for p in models.glob("*.pt")) == [f"fold_{k}.pt" for k in range(3)]


def test_a_fold_already_merged_is_refused_and_nothing_is_written(jobs, capsys):
    assert merge(jobs, "again", "b01") == 0
    conn = db.connect(jobs / "again.db")
    before = len(db.image_predictions_frame(conn, ["split"]))
    assert merge(jobs, "again", "b01", "b2") == 2
    assert "fold(s) [0, 1] of run split are already in the database" in capsys.readouterr().err
    assert len(db.image_predictions_frame(conn, ["split"])) == before
    assert db.get_run(conn, "split")["status"] == "partial"


def test_mismatched_bundles_are_refused_naming_the_mismatch(jobs, small_cohort_dir, capsys):
    bundle = str(jobs / "b2-seed2")
    assert cv(jobs, small_cohort_dir, "s2", "--seed", "2", "--only-folds", "2",
              "--run-id", "split", "--bundle", bundle) == 0  # fmt: skip
    capsys.readouterr()
    assert merge(jobs, "mixed", "b01", "b2-seed2") == 2
    err = capsys.readouterr().err
    assert "has another config than" in err and "seed (1 vs 2)" in err
    assert not (jobs / "mixed.db").exists() or db.runs_frame(db.connect(jobs / "mixed.db")).empty

    for key, value, words in (
        ("data_hash", "0123456789abcdef", "data hash 0123456789abcdef"),
        ("code_version", "deadbeef", "code version deadbeef"),
    ):
        shutil.copytree(jobs / "b2", jobs / f"b2-{key}")
        manifest = jobs / f"b2-{key}" / "bundle.json"
        data = json.loads(manifest.read_text())
        data["run"][key] = value
        manifest.write_text(json.dumps(data))
        assert merge(jobs, f"mixed-{key}", "b01", f"b2-{key}") == 2
        assert words in capsys.readouterr().err

    shutil.copytree(jobs / "b2", jobs / "b2-copy")
    assert merge(jobs, "twice", "b2", "b2-copy") == 2
    assert "fold 2 of run split comes twice" in capsys.readouterr().err
    assert merge(jobs, "none", "home-full") == 2
    assert "is not a result bundle: it has no bundle.json" in capsys.readouterr().err


def test_a_bundle_job_needs_a_run_id(tmp_path, small_cohort_dir, capsys):
    assert cv(tmp_path, small_cohort_dir, "x", "--only-folds", "0", "--bundle", "b") == 2
    assert "--bundle needs --run-id" in capsys.readouterr().err


def test_bundles_of_a_second_cohort_reusing_patient_ids_merge_onto_its_own_cases(
    tmp_path, small_cohort_dir
):
    from core.data.demo_data import generate_demo_cohort

    other = tmp_path / "hospital-b"
    generate_demo_cohort(other, seed=21, counts=(6, 4, 3))  # DEMO-0001... again, other patients
    target = ["--db", str(tmp_path / "two.db"), "--home", str(tmp_path / "home")]
    assert main([*target, "--quiet", "ingest", str(small_cohort_dir)]) == 0
    conn = db.connect(tmp_path / "two.db")
    before = db.cases_frame(conn).set_index("case_id")
    conn.close()
    common = ["--quiet", "cv", "--data", str(other), "--cohort", "hospital-b", "--model", "cnn"]
    common += ["--weights", "none", "--folds", "3", "--run-id", "b-run"]
    for folds in ("0,1", "2"):
        argv = ["--home", str(tmp_path / "job"), *common, "--only-folds", folds]
        assert main([*argv, "--bundle", str(tmp_path / f"bundle-{folds}")]) == 0
    bundles = [str(tmp_path / "bundle-0,1"), str(tmp_path / "bundle-2")]
    assert main([*target, "merge", *bundles]) == 0
    conn = db.connect(tmp_path / "two.db")
    after = db.cases_frame(conn).set_index("case_id")
    predictions = db.predictions_frame(conn, ["b-run"])
    conn.close()
    kept = ["cohort", "patient_id", "label", "display_id"]
    assert after.loc[before.index, kept].equals(before[kept])
    assert set(predictions["case_id"]) == {f"hospital-b/DEMO-{i:04d}" for i in range(1, 14)}
    assert (after.loc[predictions["case_id"], "cohort"] == "hospital-b").all()
    assert predictions["label"].tolist() == after.loc[predictions["case_id"], "label"].tolist()
