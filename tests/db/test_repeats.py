"""Repeat reads on a real SQLite file: planned spaced apart under new display IDs, stored apart
from the reads (reopened file), shown as intra-reader kappa, and the MRMC inputs unchanged."""

from __future__ import annotations

import pandas as pd
import pytest

import db
import db.repeats as repeats
from core.reader_study import analysis, mrmc_inputs
from core.reader_study.study_data import load_study_data
from tests.db.conftest import make_cases

LABELS = ("SCC", "AC", "ASC")


@pytest.fixture
def filled(db_path):
    """24 cases, 2 readers, every case read once; 6 repeats each, answered (one changed)."""
    conn = db.connect(db_path)
    cases = make_cases(conn, 24)
    study_id = db.create_study(conn, name="repeats", case_ids=cases)
    repeats.set_repeat_cases(conn, study_id, 6)
    readers = [db.add_reader(conn, study_id, name)[0] for name in ("Dr A", "Dr B")]
    assert repeats.plan_study_repeats(conn, study_id, seed=3) == 12
    assert repeats.plan_study_repeats(conn, study_id, seed=3) == 0  # idempotent
    for r, reader in enumerate(readers):
        for i, case in enumerate(cases):
            label = LABELS[(i + r * (i % 4 == 0)) % 3]
            db.submit_read(conn, study_id=study_id, reader_id=reader, case_id=case,
                           arm="unaided", label=label, confidences=None, shown_at=None)  # fmt: skip
        due = repeats.due_repeats(conn, study_id, reader, "unaided", passed=24)
        for k, display_id in enumerate(due["display_id"]):
            case_id = conn.conn.execute(
                "SELECT case_id FROM repeat_assignments WHERE display_id = ?", (display_id,)
            ).fetchone()[0]
            frame = db.reads_frame(conn, study_id)
            first = frame[(frame["reader_id"] == reader) & (frame["case_id"] == case_id)]
            label = (
                first["label"].iloc[0]
                if k
                else LABELS[(LABELS.index(first["label"].iloc[0]) + 1) % 3]
            )
            repeats.submit_repeat_read(conn, study_id, reader, display_id, label)
    conn.close()
    return db_path, study_id, cases, readers


def test_repeats_are_spaced_and_under_new_display_ids(filled):
    path, study_id, cases, readers = filled
    conn = db.connect(path)
    plan = pd.read_sql_query("SELECT * FROM repeat_assignments", conn.conn)
    own = set(db.cases_frame(conn)["display_id"])
    assert len(plan) == 12 and not (set(plan["display_id"]) & own)
    positions = pd.read_sql_query(
        "SELECT reader_id, arm, case_id, position FROM assignments", conn.conn
    )
    merged = plan.merge(positions, on=["reader_id", "arm", "case_id"])
    assert ((merged["after_position"] >= merged["position"] + repeats.MIN_GAP)
            | (merged["after_position"] == 24)).all()  # fmt: skip
    early = repeats.due_repeats(conn, study_id, readers[0], "unaided", passed=0)
    assert early.empty and "case_id" not in early.columns  # nothing due yet; no case IDs shown


def test_repeats_stored_apart_and_mrmc_inputs_unchanged(filled):
    path, study_id, cases, readers = filled
    conn = db.connect(path)  # reopened: the writes were committed
    assert len(db.reads_frame(conn, study_id)) == 48
    assert len(repeats.repeat_reads_frame(conn, study_id)) == 12
    data = load_study_data(conn, study_id)
    assert len(data.reads) == 48 and not data.reads["repeat"].any()
    assert len(data.repeats) == 12 and data.repeats["repeat"].all()
    without = mrmc_inputs.mrmc_reads(data, ["unaided"])
    data_no_repeats = load_study_data(conn, study_id)
    data_no_repeats.repeats = None
    pd.testing.assert_frame_equal(without, mrmc_inputs.mrmc_reads(data_no_repeats, ["unaided"]))
    table = analysis.intra_reader_agreement(pd.concat([data.reads, data.repeats]))
    assert table["repeated cases"].tolist() == [6, 6]
    assert table["agreement %"].tolist() == pytest.approx([500 / 6, 500 / 6])  # 1 of 6 changed
    assert table["Cohen's kappa"].notna().all()


def test_repeat_of_someone_else_is_refused(filled):
    path, study_id, _, readers = filled
    conn = db.connect(path)
    theirs = repeats.due_repeats(conn, study_id, readers[1], "unaided", passed=24)["display_id"][0]
    with pytest.raises(db.CaseNotFound, match="not one of this reader's repeat cases"):
        repeats.submit_repeat_read(conn, study_id, readers[0], theirs, "SCC")
    with pytest.raises(ValueError, match="repeat cases -1 is not allowed"):
        repeats.set_repeat_cases(conn, study_id, -1)
