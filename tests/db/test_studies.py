"""Creating studies: what a study holds and what it refuses."""

from __future__ import annotations

import pytest

import db
from tests.db.conftest import make_cases


def test_study_holds_its_cases_arms_and_readers(db_path, study):
    study_id, cases, readers = study
    with db.connect(db_path) as conn:
        got = db.get_study(conn, study_id)
        frame = db.studies_frame(conn)
    assert got["name"] == "pilot" and got["arms"] == ("unaided", "aided")
    assert got["case_ids"] == sorted(cases) and got["n_cases"] == 6 and got["n_readers"] == 2
    assert got["status"] == "open" and got["model_run_id"] is not None
    row = frame.set_index("study_id").loc[study_id]
    assert (row["arms"], row["n_cases"], row["n_readers"], row["n_reads"]) == (
        ("unaided", "aided"), 6, 2, 0,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"name": "pilot"}, db.DuplicateStudy, "study named 'pilot' already exists"),
        ({"name": " "}, ValueError, "non-empty name"),
        ({"case_ids": []}, ValueError, "at least one case"),
        ({"case_ids": ["internal/P0000", "internal/P0000"]}, ValueError, "listed twice: internal/P0000"),
        ({"case_ids": ["internal/P0000", "ghost"]}, db.CaseNotFound, "not in the database: ghost"),
        ({"arms": ("unaided", "sleepy")}, ValueError, "must be distinct values from unaided"),
        ({"arms": ("aided",)}, ValueError, "'aided' arm needs model_run_id"),
        ({"arms": ("aided",), "model_run_id": "r-404"}, db.RunNotFound, "'r-404'"),
        ({"washout_days": -1}, ValueError, "washout_days must be >= 0"),
    ],
    ids=["duplicate", "name", "no-cases", "twice", "unknown-case", "arm", "aided-no-run",
         "unknown-run", "washout"],
)  # fmt: skip
def test_bad_studies_are_refused(conn, study, overrides, error, match):
    fields = {"name": "second", "case_ids": ["internal/P0000", "internal/P0001"]}
    fields.update(overrides)
    with pytest.raises(error, match=match):
        db.create_study(conn, **fields)
    assert len(db.studies_frame(conn)) == 1


def test_unknown_study_is_named_by_every_reader_facing_helper(conn, study):
    _, _, readers = study
    reader_id = readers["Dr A"][0]
    for call in (
        lambda: db.get_study(conn, 77),
        lambda: db.worklist(conn, 77, reader_id, "unaided"),
        lambda: db.next_unread(conn, 77, reader_id, "unaided"),
        lambda: db.reads_frame(conn, 77),
        lambda: db.reader_progress_frame(conn, 77),
    ):
        with pytest.raises(db.StudyNotFound, match="study 77 is not in the database"):
            call()


def test_simulated_study_with_a_model_run_may_have_only_the_unaided_arm(conn):
    cases = make_cases(conn, 3)
    run_id = db.create_run(
        conn, model="cnn", mode="finetune", config={}, seed=0, data_hash=None, device="cpu",
        weights=None, code_version=None, packages=None,
    )  # fmt: skip
    study_id = db.create_study(
        conn, name="demo", case_ids=cases, model_run_id=run_id, order_seed=3, simulated=True
    )
    reader_id, _ = db.add_reader(conn, study_id, "Sim 1", simulated=True)
    assert db.get_study(conn, study_id)["simulated"] == 1
    progress = db.reader_progress_frame(conn, study_id)
    assert progress[["display_name", "simulated", "arm", "n_cases"]].values.tolist() == [
        ["Sim 1", 1, "unaided", 3]
    ]
    with pytest.raises(ValueError, match="arm 'aided' is not part of study"):
        db.worklist(conn, study_id, reader_id, "aided")
