"""kill -9 of the Streamlit server in the middle of a reader study, then a restart on the same
database file: every read a reader saw confirmed is stored, nothing is half-written, and each
reader, signing in again, resumes at the first unread case."""

from __future__ import annotations

import pytest

import db
from core.data.labels import CLASSES
from tests.e2e.browser import wait_idle
from tests.e2e.conftest import (
    click_submit,
    current_case,
    fill_answer,
    open_app,
    screenshot,
    sign_in_reader,
    wait_case,
    wait_read_count,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

N_CASES = 8
CONFIRMED = {"Dr Cedar": 4, "Dr Douglas": 2}  # reads each reader sees confirmed before the crash


@pytest.fixture
def study(db_copy):
    """A study on the first N_CASES cases with the two readers of CONFIRMED, made through db/."""
    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn).sort_values("case_id")
        study_id = db.create_study(
            conn, name="Crash study", case_ids=cases["case_id"].head(N_CASES).tolist()
        )
        readers = {name: db.add_reader(conn, study_id, name) for name in CONFIRMED}
        truth = dict(zip(cases["display_id"], cases["label"], strict=True))
    finally:
        conn.close()
    return study_id, readers, truth


def answer_for(truth: str, position: int) -> str:
    return CLASSES[(CLASSES.index(truth) + position) % len(CLASSES)]  # a mix of right and wrong


def stored_reads(path, study_id: int) -> dict[tuple[str, str], str]:
    conn = db.connect(path)
    try:
        reads = db.reads_frame(conn, study_id)
    finally:
        conn.close()
    return {
        (r.display_name, r.display_id): r.label
        for r in reads.itertuples()  # one row per reader, case and arm
    }


def test_kill_9_mid_study_loses_no_confirmed_read(server, db_copy, study, new_page):
    study_id, readers, truth = study
    pages = {}
    confirmed: dict[tuple[str, str], str] = {}
    for name, (_, code) in readers.items():
        page = new_page()
        open_app(page, server.url)
        sign_in_reader(page, code)
        pages[name] = page
        for _ in range(CONFIRMED[name]):
            display_id, position, n_cases = current_case(page)
            label = answer_for(truth[display_id], position)
            fill_answer(page, label)
            click_submit(page)
            wait_read_count(page, position, n_cases)  # the page confirms: stored
            wait_case(page, position + 1, n_cases)
            confirmed[(name, display_id)] = label

    # One more answer is in flight when the server dies: it may or may not have been stored.
    busy = pages["Dr Cedar"]
    in_flight_id, in_flight_pos, _ = current_case(busy)
    in_flight_label = answer_for(truth[in_flight_id], in_flight_pos)
    fill_answer(busy, in_flight_label)
    click_submit(busy)
    server.kill_hard()
    assert server.process.returncode == -9

    conn = db.connect(db_copy)  # the file is sound after the crash
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    after_crash = stored_reads(db_copy, study_id)
    for key, label in confirmed.items():
        assert after_crash.get(key) == label, f"confirmed read {key} lost or changed"
    extra = set(after_crash) - set(confirmed)
    assert extra <= {("Dr Cedar", in_flight_id)}, f"reads nobody submitted: {extra}"
    if extra:  # the in-flight submit committed before the kill: whole, not half
        assert after_crash[("Dr Cedar", in_flight_id)] == in_flight_label

    server.start()  # same port, same database file
    for name, (reader_id, code) in readers.items():
        page = pages[name]
        open_app(page, server.url)  # the old session died with the server: sign in again
        sign_in_reader(page, code)
        conn = db.connect(db_copy)
        try:
            first_unread = db.next_unread(conn, study_id, reader_id, "unaided")
            work = db.worklist(conn, study_id, reader_id, "unaided")
        finally:
            conn.close()
        n_done = sum(1 for (reader, _) in after_crash if reader == name)
        assert first_unread == n_done + 1, "the worklist is read in order in this test"
        display_id, position, _ = current_case(page)
        assert position == first_unread, f"{name} resumed at {position}, not {first_unread}"
        assert display_id == work.loc[work["position"] == position, "display_id"].item()
        assert page.get_by_text(f"{n_done} of {N_CASES} read", exact=True).is_visible()

    # The restarted server takes reads again.
    page = pages["Dr Douglas"]
    display_id, position, _ = current_case(page)
    fill_answer(page, answer_for(truth[display_id], position))
    click_submit(page)
    wait_read_count(page, position, N_CASES)
    wait_idle(page)
    screenshot(page, "reading_after_restart")
    assert ("Dr Douglas", display_id) in stored_reads(db_copy, study_id)
