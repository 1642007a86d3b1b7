"""submit_read: idempotent upsert with an audit trail, and every way it refuses a bad read."""

from __future__ import annotations

import sqlite3

import pandas as pd
import pytest

import db


def _submit(conn, study_id=None, reader_id=None, case_id=None, **overrides):
    fields = dict(
        study_id=study_id, reader_id=reader_id, case_id=case_id, arm="unaided", label="AC",
        confidences={"SCC": 0.1, "AC": 0.7, "ASC": 0.2}, shown_at="2026-03-01T09:00:00Z",
        submitted_at="2026-03-01T09:00:12.345Z",
    )  # fmt: skip
    fields.update(overrides)
    return db.submit_read(conn, **fields)


def test_retried_submit_leaves_one_read_and_two_audit_rows(db_path, study):
    study_id, cases, readers = study
    reader_id = readers["Dr A"][0]
    with db.connect(db_path) as conn:
        first = _submit(conn, study_id, reader_id, cases[0])
    with db.connect(db_path) as conn:  # the retry comes from a new connection, as after a rerun
        second = _submit(conn, study_id, reader_id, cases[0])
    with db.connect(db_path) as conn:
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
    assert first == second
    assert len(reads) == 1 and reads.loc[0, "revision"] == 2
    assert audit["action"].tolist() == ["insert", "update"]
    assert audit["read_id"].tolist() == [first, first]
    assert pd.isna(audit.loc[0, "old"])
    assert audit.loc[1, "old"] == audit.loc[0, "new"]
    assert reads.loc[0, "duration_ms"] == 12_345  # 09:00:00 -> 09:00:12.345


def test_changed_answer_replaces_the_read_and_audit_keeps_both(conn, study):
    study_id, cases, readers = study
    reader_id = readers["Dr A"][0]
    _submit(conn, study_id, reader_id, cases[0], label="AC")
    _submit(conn, study_id, reader_id, cases[0], label="ASC", confidences=(0.0, 0.4, 0.6))
    reads = db.reads_frame(conn, study_id)
    audit = db.audit_frame(conn, study_id)
    assert reads["label"].tolist() == ["ASC"]
    assert [t["label"] for t in audit["new"]] == ["AC", "ASC"]
    assert audit.loc[1, "old"]["label"] == "AC"


def test_same_case_in_another_arm_is_another_read(conn, study):
    study_id, cases, readers = study
    reader_id = readers["Dr A"][0]
    _submit(conn, study_id, reader_id, cases[0], arm="unaided")
    _submit(conn, study_id, reader_id, cases[0], arm="aided")
    assert sorted(db.reads_frame(conn, study_id)["arm"]) == ["aided", "unaided"]


def test_audit_log_is_append_only_and_reads_are_never_deleted(conn, study):
    study_id, cases, readers = study
    _submit(conn, study_id, readers["Dr A"][0], cases[0])
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE read_audit SET action = 'update'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM read_audit")
    with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
        conn.execute("DELETE FROM reads")


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"study_id": 999}, db.StudyNotFound, "study 999"),
        ({"reader_id": 999}, db.ReaderNotFound, "reader 999 is not a reader of study"),
        ({"case_id": "NOPE"}, db.CaseNotFound, "'NOPE' is not part of study"),
        ({"label": "CIN3"}, ValueError, "'CIN3' is not one of SCC, AC, ASC"),
        ({"arm": "second look"}, ValueError, "arm 'second look' is not part of study"),
        ({"confidences": {"SCC": 1.5, "AC": 0, "ASC": 0}}, ValueError, r"SCC is 1.5.*\[0, 1\]"),
        ({"confidences": {"SCC": 0.5, "AC": 0.5}}, ValueError, "lack ASC"),
        ({"confidences": (0.5, float("nan"), 0.5)}, ValueError, "AC is nan"),
        ({"shown_at": "yesterday"}, ValueError, "shown_at 'yesterday' is not an ISO 8601"),
        ({"submitted_at": "2026-03-01T08:59:59Z"}, ValueError, "is before shown_at"),
    ],
    ids=["study", "reader", "case", "label", "arm", "conf-range", "conf-missing", "conf-nan",
         "time-format", "time-order"],
)  # fmt: skip
def test_bad_reads_are_refused_and_nothing_is_written(conn, study, overrides, error, match):
    study_id, cases, readers = study
    args = {"study_id": study_id, "reader_id": readers["Dr A"][0], "case_id": cases[0]}
    args.update(overrides)
    with pytest.raises(error, match=match):
        _submit(conn, **args)
    assert conn.execute("SELECT COUNT(*) FROM reads").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM read_audit").fetchone()[0] == 0


def test_reader_of_another_study_cannot_read_this_one(conn, study):
    study_id, cases, _ = study
    other = db.create_study(conn, name="other", case_ids=cases[:2])
    outsider, _code = db.add_reader(conn, other, "Dr X")
    with pytest.raises(db.ReaderNotFound, match=f"not a reader of study {study_id}"):
        _submit(conn, study_id, outsider, cases[0])


def test_closed_study_refuses_reads_and_readers_until_reopened(conn, study):
    study_id, cases, readers = study
    db.close_study(conn, study_id)
    with pytest.raises(db.StudyClosed, match="closed"):
        _submit(conn, study_id, readers["Dr A"][0], cases[0])
    with pytest.raises(db.StudyClosed):
        db.add_reader(conn, study_id, "Dr C")
    db.set_study_status(conn, study_id, "open")
    assert _submit(conn, study_id, readers["Dr A"][0], cases[0]) >= 1
    with pytest.raises(ValueError, match="'paused' is not one of open, closed"):
        db.set_study_status(conn, study_id, "paused")


def test_worklist_has_no_truth_and_resumes_at_first_unread(conn, study):
    study_id, cases, readers = study
    reader_id = readers["Dr B"][0]
    work = db.worklist(conn, study_id, reader_id, "unaided")
    assert list(work.columns) == ["position", "case_id", "display_id", "label_read"]
    assert work["position"].tolist() == [1, 2, 3, 4, 5, 6]
    assert sorted(work["case_id"]) == sorted(cases)
    assert work["label_read"].isna().all()
    assert db.next_unread(conn, study_id, reader_id, "unaided") == 1
    for position in (1, 2, 4):
        case_id = work.loc[work["position"] == position, "case_id"].item()
        _submit(conn, study_id, reader_id, case_id, label="ASC")
    work = db.worklist(conn, study_id, reader_id, "unaided")
    assert work.set_index("position")["label_read"].notna().to_dict() == {
        1: True, 2: True, 3: False, 4: True, 5: False, 6: False,
    }  # fmt: skip
    assert db.next_unread(conn, study_id, reader_id, "unaided") == 3
    assert db.next_unread(conn, study_id, reader_id, "aided") == 1  # arms are independent
    own = db.reader_reads_frame(conn, study_id, reader_id)
    assert len(own) == 3 and "truth" not in own.columns
    assert "truth" in db.reads_frame(conn, study_id).columns


def test_worklist_entry_equals_the_worklist_row_with_own_answer_and_counts(conn, study):
    study_id, _, readers = study
    reader_id = readers["Dr B"][0]
    work = db.worklist(conn, study_id, reader_id, "unaided").set_index("position")
    _submit(conn, study_id, reader_id, work.loc[2, "case_id"], label="ASC",
            confidences={"SCC": 0.1, "AC": 0.3, "ASC": 0.6})  # fmt: skip
    entry = db.worklist_entry(conn, study_id, reader_id, "unaided", 2)
    assert entry["case_id"] == work.loc[2, "case_id"]
    assert entry["display_id"] == work.loc[2, "display_id"]
    assert (entry["label_read"], entry["c_ASC"]) == ("ASC", pytest.approx(0.6))
    assert (entry["n_cases"], entry["n_read"]) == (6, 1)
    assert "truth" not in entry and "label" not in entry
    unread = db.worklist_entry(conn, study_id, reader_id, "unaided", 3)
    assert unread["label_read"] is None and unread["c_SCC"] is None
    assert db.worklist_entry(conn, study_id, reader_id, "unaided", 99) is None


def test_reading_orders_are_seeded_per_reader_and_arm(conn, study):
    study_id, cases, readers = study
    (a, _), (b, _) = readers["Dr A"], readers["Dr B"]

    def order(reader_id, arm):
        return db.worklist(conn, study_id, reader_id, arm)["case_id"].tolist()

    assert order(a, "unaided") == db.studies.assignment_order(
        cases, order_seed=0, reader_id=a, arm="unaided"
    )
    distinct = {tuple(order(r, arm)) for r in (a, b) for arm in ("unaided", "aided")}
    assert len(distinct) > 1  # 720 possible orders of 6 cases: four equal ones would be a bug


def test_progress_counts_reads_per_reader_and_arm(conn, study):
    study_id, cases, readers = study
    for case_id in cases[:3]:
        _submit(conn, study_id, readers["Dr A"][0], case_id)
    _submit(conn, study_id, readers["Dr A"][0], cases[0])  # a retry counts once
    progress = db.reader_progress_frame(conn, study_id)
    got = {
        (r.display_name, r.arm): (r.n_read, r.n_cases, r.fraction) for r in progress.itertuples()
    }
    assert got == {
        ("Dr A", "unaided"): (3, 6, 0.5), ("Dr A", "aided"): (0, 6, 0.0),
        ("Dr B", "unaided"): (0, 6, 0.0), ("Dr B", "aided"): (0, 6, 0.0),
    }  # fmt: skip


def test_reads_since_a_mark_are_the_reads_written_after_it_each_once_as_they_are_now(conn, study):
    study_id, cases, readers = study
    a, b = readers["Dr A"][0], readers["Dr B"][0]
    _submit(conn, study_id, a, cases[0])
    _submit(conn, study_id, a, cases[1])
    everything, mark = db.reads_since(conn, study_id)
    pd.testing.assert_frame_equal(everything, db.reads_frame(conn, study_id))
    assert mark == int(db.audit_frame(conn, study_id)["audit_id"].max())
    assert db.reads_since(conn, study_id, mark)[0].empty  # nothing written since

    _submit(conn, study_id, a, cases[1], label="ASC")  # changed twice: one row, as it is now
    _submit(conn, study_id, a, cases[1], label="SCC")
    _submit(conn, study_id, b, cases[0])
    changed, new_mark = db.reads_since(conn, study_id, mark)
    now = db.reads_frame(conn, study_id)
    expected = now[now["read_id"].isin(changed["read_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(changed, expected)
    assert sorted(zip(changed["reader_id"], changed["case_id"], strict=True)) == sorted(
        [(a, cases[1]), (b, cases[0])]
    )
    assert changed.loc[changed["reader_id"] == a, "label"].item() == "SCC"
    assert new_mark == mark + 3
    # brief: the same reads and mark, with only the columns the analysis reads
    brief, brief_mark = db.reads_since(conn, study_id, mark, brief=True)
    assert brief_mark == new_mark and "shown_at" not in brief.columns
    pd.testing.assert_frame_equal(brief, changed[brief.columns])
    brief_all, _ = db.reads_since(conn, study_id, brief=True)
    pd.testing.assert_frame_equal(brief_all, now[brief_all.columns])
    with pytest.raises(db.StudyNotFound):
        db.reads_since(conn, 999, 0)
