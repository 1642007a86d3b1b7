"""`make demo`'s reader code: a ready reader of a small study of its own, one working code."""

from __future__ import annotations

import pytest

import db
from core.data.ingest import ingest_folder
from core.reader_study.simulate import DEMO_READER_CASES, DEMO_READER_STUDY, demo_reader_code


def test_demo_reader_code_signs_in_and_a_new_one_replaces_it(small_cohort_dir, tmp_path):
    conn = db.connect(tmp_path / "demo.db")
    try:
        ingest_folder(small_cohort_dir, conn=conn, progress=False)
        code = demo_reader_code(conn)
        reader = db.authenticate_reader(conn, code)
        study = db.get_study(conn, reader.study_id)
        assert study["name"] == DEMO_READER_STUDY and study["n_cases"] == DEMO_READER_CASES
        assert study["arms"] == ("unaided",) and study["status"] == "open"
        again = demo_reader_code(conn)  # a second `make demo`: same study and reader, new code
        assert db.authenticate_reader(conn, again).reader_id == reader.reader_id
        with pytest.raises(db.InvalidAccessCode):
            db.authenticate_reader(conn, code)
        assert len(db.studies_frame(conn)) == 1
    finally:
        conn.close()
