"""Arm gating on a real database file: the washout clock, the unaided lock, the arm's IDs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import db
from core.reader_study.arms import arm_display_id, check_arm, reader_arms, require_open_arm

FINISHED = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)  # the reader's last unaided submit


@pytest.fixture
def study(tmp_path):
    """Three cases, unaided + aided with a 14-day washout, one reader: ``(path, study, reader)``."""
    path = tmp_path / "arms.db"
    with db.connect(path) as conn:
        cases = ["internal/K1", "internal/K2", "internal/K3"]
        db.upsert_cases(conn, [{"case_id": c, "label": "SCC"} for c in cases])
        run_id = db.create_run(
            conn, model="cnn", mode="features", config={}, seed=0, data_hash=None,
            device="cpu", weights=None, code_version=None, packages=None,
        )  # fmt: skip
        study_id = db.create_study(
            conn, name="gated", case_ids=cases, arms=("unaided", "aided"),
            model_run_id=run_id, washout_days=14,
        )  # fmt: skip
        reader_id, _ = db.add_reader(conn, study_id, "Dr Gate")
    return path, study_id, reader_id


def _read_unaided(path, study_id, reader_id, cases, at: datetime) -> None:
    with db.connect(path) as conn:
        for case in cases:
            db.submit_read(
                conn, study_id=study_id, reader_id=reader_id, case_id=case, arm="unaided",
                label="SCC", confidences=None, shown_at=None, submitted_at=at,
            )  # fmt: skip


def _statuses(path, study_id, reader_id, now):
    return {s.arm: s for s in reader_arms(study_id, reader_id, db_path=path, now=now)}


def test_aided_waits_for_the_unaided_reads(study):
    path, study_id, reader_id = study
    _read_unaided(path, study_id, reader_id, ["internal/K1", "internal/K2"], FINISHED)
    statuses = _statuses(path, study_id, reader_id, FINISHED + timedelta(days=100))
    assert statuses["unaided"].open and (
        statuses["unaided"].n_read,
        statuses["unaided"].n_cases,
    ) == (2, 3)
    assert not statuses["aided"].open
    assert statuses["aided"].reason == "Finish the unaided reads first."


def test_aided_opens_when_the_washout_from_the_last_unaided_read_has_passed(study):
    path, study_id, reader_id = study
    _read_unaided(
        path, study_id, reader_id, ["internal/K1", "internal/K2"], FINISHED - timedelta(days=3)
    )
    _read_unaided(path, study_id, reader_id, ["internal/K3"], FINISHED)
    just_before = FINISHED + timedelta(days=14) - timedelta(seconds=1)
    waiting = _statuses(path, study_id, reader_id, just_before)
    assert not waiting["aided"].open
    assert waiting["aided"].reason == "Opens on 2026-03-16 09:30 UTC (washout)."
    assert waiting["unaided"].open  # still changeable: the model has not been seen
    opened = _statuses(path, study_id, reader_id, FINISHED + timedelta(days=14))
    assert opened["aided"].open
    assert not opened["unaided"].open and "locked" in opened["unaided"].reason


def test_a_closed_arm_refuses_answers_with_its_reason(study):
    path, study_id, reader_id = study
    with db.connect(path) as conn:
        study_row = db.get_study(conn, study_id)
        with pytest.raises(ValueError, match="Finish the unaided reads first"):
            require_open_arm(conn, study_row, reader_id, "aided")
        require_open_arm(conn, study_row, reader_id, "unaided")  # open: no error
        with pytest.raises(ValueError, match="arm 'sleepy' is not part of this study"):
            require_open_arm(conn, study_row, reader_id, "sleepy")


def test_check_arm_names_the_study_arms():
    check_arm({"arms": ("unaided",)}, "unaided")
    with pytest.raises(ValueError, match="it has unaided, aided"):
        check_arm({"arms": ("unaided", "aided")}, "later")


def test_display_ids_differ_after_the_unaided_arm_and_are_stable():
    assert arm_display_id(1, "unaided", "P0001", "D-17") == "D-17"
    aided = arm_display_id(1, "aided", "P0001", "D-17")
    assert aided.startswith("A-") and len(aided) == 10 and "D-17" not in aided
    assert aided == arm_display_id(1, "aided", "P0001", "D-17")
    assert aided != arm_display_id(2, "aided", "P0001", "D-17")  # per study
    assert aided != arm_display_id(1, "aided", "P0002", "D-17")


def test_aided_arm_ids_never_spell_a_class_name():
    import re

    from core.data.labels import CLASSES

    spells = re.compile("|".join(CLASSES), re.IGNORECASE)
    ids = [arm_display_id(7, "aided", f"P{i:05d}", "C-XXXXXX") for i in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if spells.search(i)] == []
