"""Repeat reads in the reading service, on a real SQLite file: the reading order slots each repeat
after its due position, a repeat is served once every case up to that position is read, answers
to it go to repeat_reads (with their duration) and can be corrected, and the study option
refuses numbers it cannot honour."""

from __future__ import annotations

import pytest

import db
import db.repeats
from core.reader_study import reading
from core.reader_study.reading_order import locate, position_step, repeat_step
from db.clock import now_iso
from tests.db.conftest import make_cases

SCC = ("SCC", {"SCC": 1, "AC": 0, "ASC": 0})


def test_locate_inverts_the_order_a_hand_written_list_gives():
    afters, ids = [2, 2, 4], ["R1", "R2", "R3"]  # worklist of 5: 1 2 R1 R2 3 4 R3 5
    expected = [1, 2, "R1", "R2", 3, 4, "R3", 5]
    for step, want in enumerate(expected, start=1):
        slot = locate(step, afters, ids)
        assert (slot.repeat_id or slot.position) == want, step
    assert [repeat_step(i, afters) for i in range(3)] == [3, 4, 7]
    assert [position_step(p, afters) for p in range(1, 6)] == [1, 2, 5, 6, 8]
    assert locate(3, [], []).position == 3  # no repeats: the step is the worklist position


@pytest.fixture
def study(tmp_path):
    db_path = tmp_path / "repeats.db"
    conn = db.connect(db_path)
    try:
        cases = make_cases(conn, 14)
        study_id = db.create_study(conn, name="service repeats", case_ids=cases)
        db.repeats.set_repeat_cases(conn, study_id, 2)
        reader_id, _ = db.add_reader(conn, study_id, "Dr Service")
        assert db.repeats.plan_study_repeats(conn, study_id, seed=1) == 2
        plan = db.repeats.reader_repeats(conn, study_id, reader_id, "unaided")
    finally:
        conn.close()
    return db_path, study_id, reader_id, plan


def test_a_repeat_is_served_once_due_and_stored_apart(study):
    path, study_id, reader_id, plan = study
    afters = plan["after_position"].tolist()
    assert all(a <= 14 for a in afters) and len(set(plan["display_id"])) == 2
    order = reading.worklist_status(study_id, reader_id, "unaided", db_path=path)
    assert len(order) == 16 and order["display_id"].is_unique
    steps = {d: int(p) for p, d in zip(order["position"], order["display_id"], strict=True)}
    for index, display_id in enumerate(plan["display_id"]):
        assert steps[display_id] == repeat_step(index, afters)
    # read straight through with Enter: the next case is always the first unread step
    seen = []
    while (step := reading.first_unread(study_id, reader_id, "unaided", db_path=path)) is not None:
        case = reading.case_for_reader(study_id, reader_id, "unaided", step, db_path=path,
                                       with_images=False)  # fmt: skip
        seen.append(case.display_id)
        reading.submit_answer(study_id, reader_id, "unaided", step, *SCC, now_iso(),
                              db_path=path)  # fmt: skip
    assert seen == order["display_id"].tolist()
    conn = db.connect(path)
    try:
        assert len(db.reads_frame(conn, study_id)) == 14
        stored = db.repeats.repeat_reads_frame(conn, study_id)
    finally:
        conn.close()
    assert sorted(stored["display_id"]) == sorted(plan["display_id"])
    assert (stored["duration_ms"] >= 0).all() and (stored["c_SCC"] == 1).all()
    # a changed answer to a repeat replaces the stored one, still apart from the reads
    step = steps[plan["display_id"].iloc[0]]
    ac = ("AC", {"SCC": 0, "AC": 1, "ASC": 0})
    reading.submit_answer(study_id, reader_id, "unaided", step, *ac, now_iso(), db_path=path)
    again = reading.case_for_reader(study_id, reader_id, "unaided", step, db_path=path,
                                    with_images=False)  # fmt: skip
    assert again.answer_label == "AC" and (again.n_read, again.n_cases) == (16, 16)


def test_a_skipped_case_comes_before_the_repeat_due_after_it(study):
    path, study_id, reader_id, plan = study
    first_after = int(plan["after_position"].iloc[0])  # the plan's earliest repeat
    # read every worklist case but position 1: nothing is due while position 1 is unread
    afters = plan["after_position"].tolist()
    for position in range(2, 15):
        step = position_step(position, afters)
        reading.submit_answer(study_id, reader_id, "unaided", step, *SCC, now_iso(), db_path=path)
    assert reading.first_unread(study_id, reader_id, "unaided", db_path=path) == 1
    reading.submit_answer(study_id, reader_id, "unaided", 1, *SCC, now_iso(), db_path=path)
    assert reading.first_unread(study_id, reader_id, "unaided", db_path=path) == first_after + 1


def test_the_study_option_refuses_what_it_cannot_honour(study):
    path, study_id, _, _ = study
    conn = db.connect(path)
    try:
        with pytest.raises(ValueError, match="already has 2 repeat cases planned"):
            db.repeats.set_repeat_cases(conn, study_id, 3)
        db.repeats.set_repeat_cases(conn, study_id, 2)  # the same number is fine
        other = db.create_study(conn, name="too many", case_ids=make_cases(conn, 3, prefix="Q"))
        with pytest.raises(ValueError, match="more than the 3 cases"):
            db.repeats.set_repeat_cases(conn, other, 4)
    finally:
        conn.close()
