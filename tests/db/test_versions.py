"""db.reads_version: the token the reader analysis recomputes on changes exactly when something it
reads has changed, and stays put on a rerun that changed nothing."""

from __future__ import annotations

import pytest

import db
from db.clock import now_iso


def _read(conn, study_id, reader_id, case_id, label="SCC"):
    db.submit_read(
        conn, study_id=study_id, reader_id=reader_id, case_id=case_id, arm="unaided",
        label=label, confidences={"SCC": 0.6, "AC": 0.3, "ASC": 0.1}, shown_at=now_iso(),
    )  # fmt: skip


def test_the_version_changes_with_each_read_and_only_then(conn, study):
    study_id, cases, readers = study
    reader_id = readers["Dr A"][0]
    seen = [db.reads_version(conn, study_id)]
    assert db.reads_version(conn, study_id) == seen[0]  # nothing changed: same token
    _read(conn, study_id, reader_id, cases[0])
    seen.append(db.reads_version(conn, study_id))
    _read(conn, study_id, reader_id, cases[0], label="AC")  # a correction of the same read
    seen.append(db.reads_version(conn, study_id))
    db.add_reader(conn, study_id, "Dr C")
    seen.append(db.reads_version(conn, study_id))
    db.set_study_status(conn, study_id, "closed")
    seen.append(db.reads_version(conn, study_id))
    assert len(set(seen)) == len(seen)
    assert db.reads_version(conn, study_id) == seen[-1]


def test_the_version_sees_the_model_runs_predictions(conn, study):
    study_id, cases, _ = study
    before = db.reads_version(conn, study_id)
    run_id = db.get_study(conn, study_id)["model_run_id"]
    db.save_predictions(
        conn, run_id, 0, [{"case_id": cases[0], "p_SCC": 0.5, "p_AC": 0.3, "p_ASC": 0.2}]
    )
    assert db.reads_version(conn, study_id) != before


def test_an_unknown_study_is_named(conn):
    with pytest.raises(db.StudyNotFound, match="study 99"):
        db.reads_version(conn, 99)
