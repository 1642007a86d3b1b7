"""Smoke tests of `cervixscope bench` and the training CLI (tiny sizes; no timing asserted)."""

from __future__ import annotations

import json

import pytest
import torch

import db
from core.bench.report import format_table
from core.bench.runner import run_bench
from core.cli import build_parser, main
from tests.core.cropsets import synthetic_crops

torch.set_num_threads(1)


def test_bench_reports_both_parts_and_the_two_cv_implementations_agree():
    crops = synthetic_crops((8, 6, 4), images_per_case=2, size=32)
    out = run_bench(
        crops, model="cnn", n_folds=3, steps=2, batch_size=8, weights="none", skip="c,m"
    )
    for key in ("train_loop_images_per_s", "bare_loop_images_per_s", "cv_seconds_ours"):
        assert out[key] > 0
    assert out["loop_efficiency"] == pytest.approx(
        out["train_loop_images_per_s"] / out["bare_loop_images_per_s"]
    )
    assert out["cv_speedup"] == pytest.approx(out["cv_seconds_obvious"] / out["cv_seconds_ours"])
    # Same backbone, folds and head: the obvious pipeline must reach the same AUC.
    assert abs(out["auc_ours"] - out["auc_obvious"]) <= 0.01
    assert 1.0 <= out["cv_speedup_ceiling"] <= 3  # (3E + H) / (E + H) with 3 folds
    table = format_table(out)
    assert "(b) speed-up obvious / ours" in table and "(a) ratio loop / bare" in table


@pytest.mark.parametrize("command", ["cv", "compare", "predict", "bench"])
def test_every_training_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args([command, "--help"])
    assert f"Example: cervixscope {command}" in capsys.readouterr().out


def test_cli_cv_then_predict_on_the_small_cohort(small_cohort_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # runs/ and cache/ go here
    path = tmp_path / "t.db"
    args = ["--db", str(path), "cv", "--data", str(small_cohort_dir), "--model", "cnn"]
    rc = main(args + ["--folds", "3", "--weights", "none", "--quiet", "--only-folds", "0,2"])
    assert rc == 0
    run = db.runs_frame(db.connect(path)).iloc[0]
    assert run["status"] == "partial" and run["n_folds"] == 2
    rc = main(args + ["--folds", "3", "--weights", "none", "--quiet", "--run-id", run["run_id"]])
    assert rc == 0
    out = capsys.readouterr().out
    assert "macro" in out and f"run id: {run['run_id']}" in out
    assert db.get_run(db.connect(path), run["run_id"])["status"] == "done"

    rc = main(
        [
            "--db",
            str(path),
            "predict",
            str(small_cohort_dir / "DEMO-0001" / "IM0001.dcm"),
            "--roi",
            "58,68,78,86",
            "--run-id",
            run["run_id"],
        ]
    )
    assert rc == 0
    assert "predicted:" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_exit_code_2(small_cohort_dir, tmp_path, capsys):
    rc = main(
        ["--db", str(tmp_path / "t.db"), "cv", "--data", str(small_cohort_dir), "--folds", "10"]
    )
    assert rc == 2
    assert "n_splits=10 but class ASC has only 6 cases" in capsys.readouterr().err


def test_bench_cli_writes_json(small_cohort_dir, tmp_path):
    target = tmp_path / "bench.json"
    rc = main(
        ["bench", "--data", str(small_cohort_dir), "--model", "cnn", "--folds", "3"]
        + ["--steps", "1", "--batch-size", "8", "--skip", "a", "--json", str(target)]
    )
    assert rc == 0
    assert json.loads(target.read_text())["n_folds"] == 3
