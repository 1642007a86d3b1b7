"""Hostile run options on the command line: one line on stderr, exit status 2, nothing written."""

from __future__ import annotations

import pytest

import db
from core.cli import main

CV = ["--mode", "features", "--model", "resnet18", "--folds", "3", "--quiet"]


def _one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"cervixscope {command}: error: ")
    return err


@pytest.mark.parametrize("run_id", ["../../x", "/tmp/abs", "a/../../b", "..", "x y"], ids=repr)
def test_a_run_id_that_is_not_a_plain_name_is_refused(
    small_cohort_dir, tmp_path, capsys, run_id, project_home
):
    argv = ["--db", str(tmp_path / "h.db"), "cv", "--data", str(small_cohort_dir), *CV]
    assert main([*argv, "--weights", "none", "--run-id", run_id]) == 2
    assert "is not allowed: use 1-80 letters" in _one_line_error(capsys, "cv")
    assert db.runs_frame(db.connect(tmp_path / "h.db")).empty
    assert not (project_home / "x").exists() and not (tmp_path.parent / "x").exists()


@pytest.mark.parametrize(
    "content",
    [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"PK\x03\x04garbage", b"\x80\x04K\x01."],
    ids=["passwd", "empty", "broken zip", "a pickled int"],
)
def test_weights_that_are_not_a_state_dict_are_one_line(
    small_cohort_dir, tmp_path, capsys, content
):
    weights = tmp_path / "weights.pt"
    weights.write_bytes(content)
    argv = ["--db", str(tmp_path / "w.db"), "cv", "--data", str(small_cohort_dir), *CV]
    assert main([*argv, "--weights", str(weights)]) == 2
    err = _one_line_error(capsys, "cv")
    assert f"--weights {weights}: not a PyTorch state_dict file" in err or "not a state_dict" in err


def test_weights_of_another_architecture_are_one_line(small_cohort_dir, tmp_path, capsys):
    import torch

    weights = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, weights)
    argv = ["--db", str(tmp_path / "w.db"), "cv", "--data", str(small_cohort_dir), *CV]
    assert main([*argv, "--model", "cnn", "--weights", str(weights)]) == 2
    assert f"--weights {weights}: does not fit cnn" in _one_line_error(capsys, "cv")


def test_weights_etc_passwd_is_one_line(small_cohort_dir, tmp_path, capsys):
    argv = ["--db", str(tmp_path / "w.db"), "cv", "--data", str(small_cohort_dir), *CV]
    assert main([*argv, "--weights", "/etc/passwd"]) == 2
    assert "--weights /etc/passwd: not a PyTorch state_dict file" in _one_line_error(capsys, "cv")
