"""A cohort made 10x as large for the page benchmark: every case, image and prediction copied under
new patient IDs and fresh display IDs, nothing of the original changed."""

from __future__ import annotations

import pytest

import db
from tests.db.conftest import make_cases


def test_replicating_copies_cases_images_and_predictions(tmp_path):
    conn = db.connect(tmp_path / "s.db")
    try:
        cases = make_cases(conn, 4)
        before = db.cases_frame(conn)
        assert db.replicate_cases(conn, 3) == 12
        after = db.cases_frame(conn)
        assert after["display_id"].is_unique and set(before["case_id"]) <= set(after["case_id"])
        copies = after[after["patient_id"].str.endswith("~2")]
        assert len(copies) == 4
        labels = dict(zip(before["patient_id"], before["label"], strict=True))
        pairs = zip(copies["patient_id"], copies["label"], strict=True)
        assert all(labels[p.split("~")[0]] == lab for p, lab in pairs)
        assert db.replicate_cases(conn, 1) == 12  # factor 1 adds nothing
        with pytest.raises(ValueError, match="factor"):
            db.replicate_cases(conn, 0)
        assert cases[0] in set(after["case_id"])
    finally:
        conn.close()


def test_display_ids_drawn_in_one_batch_never_collide(tmp_path, monkeypatch):
    import db.cases

    conn = db.connect(tmp_path / "s.db")
    try:
        make_cases(conn, 2)
        draws = iter(["222222", "222222", "333333", "444444"])  # the second draw repeats the first
        monkeypatch.setattr(db.cases, "random_code", lambda: next(draws))
        assert db.replicate_cases(conn, 2) == 4
        ids = db.cases_frame(conn)["display_id"]
        assert ids.is_unique and {"C-222222", "C-333333"} <= set(ids)
    finally:
        conn.close()
