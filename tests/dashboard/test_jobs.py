"""Queuing a CV from the dashboard: bad requests are refused before any run row exists."""

from __future__ import annotations

import pytest

import db
from dashboard import jobs


def test_start_cv_refuses_a_folder_without_manifest(tmp_path):
    (tmp_path / "dicoms").mkdir()
    conn = db.connect(tmp_path / "j.db")
    request = jobs.CvRequest(str(tmp_path / "dicoms"), "cnn", "features", 3, 0, "none")
    with pytest.raises(ValueError, match=r"dicoms has no manifest\.csv"):
        jobs.start_cv(conn, request, workdir=tmp_path)
    assert db.runs_frame(conn).empty  # nothing queued that could block a retry
