"""Answers wait in the browser until the server has them, in real Chromium against ``streamlit run``:
kill -9 of the server mid-study and a restart on the same database file saves the answers given
meanwhile exactly once; a reload with answers waiting sends them after the reload; a study closed
while an answer waits refuses it, tells the reader, and keeps it for the admin."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import db
import db.attempts
from core.data.labels import CLASSES
from tests.e2e.conftest import (
    click_submit,
    current_case,
    fill_answer,
    open_app,
    screenshot,
    sign_in_reader,
    wait_case,
    wait_read_count,
    wait_saved,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

N_CASES = 8
CONFIRMED = {"Dr Cedar": 4, "Dr Douglas": 2}  # reads each reader sees saved before the crash
OFFLINE = 2  # answers Dr Cedar gives while the server is down


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


def stored(path, study_id: int) -> tuple[dict, list, dict]:
    """The reads ``{(reader, display_id): label}``, the audit actions and the attempts by outcome."""
    conn = db.connect(path)
    try:
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
        attempts = conn.execute(
            "SELECT outcome, COUNT(*) FROM answer_attempts WHERE study_id = ? GROUP BY outcome",
            (study_id,),
        ).fetchall()
    finally:
        conn.close()
    labels = {(r.display_name, r.display_id): r.label for r in reads.itertuples()}
    return labels, audit["action"].tolist(), dict(attempts)


def answer(page, truth, given: dict, name: str, *, saved: bool = True) -> None:
    """Read the case on screen with two keys; with ``saved``, wait for the server's ack."""
    display_id, position, n_cases = current_case(page)
    label = answer_for(truth[display_id], position)
    fill_answer(page, label)
    click_submit(page)
    given[(name, display_id)] = label
    if saved:
        wait_read_count(page, position, n_cases)
    if position < n_cases:
        wait_case(page, position + 1, n_cases)


def test_kill_9_mid_study_saves_the_answers_waiting_in_the_browser_once(
    server, db_copy, study, new_page
):
    study_id, readers, truth = study
    pages, given = {}, {}
    for name, (_, code) in readers.items():
        page = new_page()
        open_app(page, server.url)
        sign_in_reader(page, code)
        pages[name] = page
        for _ in range(CONFIRMED[name]):
            answer(page, truth, given, name)

    server.kill_hard()
    assert server.process.returncode == -9
    conn = db.connect(db_copy)  # the file is sound after the crash
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert stored(db_copy, study_id)[0] == given, "every saved answer is in the database"

    cedar = pages["Dr Cedar"]  # reads on: the next cases are already in the browser
    for _ in range(OFFLINE):
        answer(cedar, truth, given, "Dr Cedar", saved=False)
    desk = cedar.locator(".csr")
    expect(desk).to_have_attribute("data-pending", str(OFFLINE))
    expect(desk.locator(".csr-saving")).to_contain_text("waiting to be saved", timeout=30_000)
    screenshot(cedar, "reading_server_down")

    server.start()  # same port, same database file: the page reconnects by itself
    for page in pages.values():
        wait_saved(page, timeout=120_000)
    labels, actions, attempts = stored(db_copy, study_id)
    assert labels == given, "the database holds every answer given"
    assert actions == ["insert"] * len(given), "each once: no duplicate, no second write"
    assert attempts == {"stored": len(given)}

    page = pages["Dr Douglas"]  # the restarted server takes reads again
    answer(page, truth, given, "Dr Douglas")
    assert stored(db_copy, study_id)[0] == given


def _block_syncs(page) -> dict:
    """Drop the page's syncs that carry answers while ``blocked["on"]`` (a dead network link)."""
    blocked = {"on": False, "dropped": 0}

    def route(ws) -> None:
        server = ws.connect_to_server()

        def from_page(message) -> None:
            data = message if isinstance(message, bytes) else message.encode()
            if blocked["on"] and b'"pending":[{' in data:
                blocked["dropped"] += 1
                return
            server.send(message)

        ws.on_message(from_page)

    page.route_web_socket(re.compile(r".*/_stcore/stream"), route)
    return blocked


def test_a_reload_with_answers_waiting_sends_them_once(server, db_copy, study, new_page):
    study_id, readers, truth = study
    page = new_page()
    blocked = _block_syncs(page)
    open_app(page, server.url)
    sign_in_reader(page, readers["Dr Cedar"][1])
    given: dict = {}
    answer(page, truth, given, "Dr Cedar")
    blocked["on"] = True
    for _ in range(2):
        answer(page, truth, given, "Dr Cedar", saved=False)
    expect(page.locator(".csr")).to_have_attribute("data-pending", "2")
    assert blocked["dropped"] >= 1 and stored(db_copy, study_id)[0] != given
    kept = page.evaluate("() => Object.keys(localStorage).filter(k => k.includes('pending'))")
    assert len(kept) == 1, "the waiting answers are in the browser's storage"
    blocked["on"] = False
    page.reload()  # the page's memory is gone; its storage and the URL's session are not
    wait_saved(page)
    labels, actions, attempts = stored(db_copy, study_id)
    assert labels == given and actions == ["insert"] * 3 and attempts == {"stored": 3}
    assert current_case(page)[1] == 4  # resumed at the first unread case


def test_a_closed_study_refuses_a_waiting_answer_and_tells_the_reader(
    server, db_copy, study, new_page
):
    study_id, readers, truth = study
    page = new_page()
    blocked = _block_syncs(page)
    open_app(page, server.url)
    sign_in_reader(page, readers["Dr Douglas"][1])
    given: dict = {}
    blocked["on"] = True
    answer(page, truth, given, "Dr Douglas", saved=False)
    conn = db.connect(db_copy)
    try:
        db.close_study(conn, study_id)  # the admin closes the study meanwhile
    finally:
        conn.close()
    blocked["on"] = False  # the page resends the waiting answer by itself
    message = page.locator(".csr-stopped")
    expect(message).to_contain_text("is closed", timeout=60_000)
    expect(message).to_contain_text("1 answer(s) could not be saved")
    labels, _, attempts = stored(db_copy, study_id)
    assert labels == {} and attempts == {"refused": 1}
    conn = db.connect(db_copy)
    try:
        kept = db.attempts.refused_answers_frame(conn, study_id)
    finally:
        conn.close()
    ((reader, label, reason),) = kept[["reader", "label", "reason"]].values.tolist()
    assert (reader, label) == ("Dr Douglas", next(iter(given.values()))) and "closed" in reason
    expect(page.locator(".csr")).to_have_attribute("data-pending", "0")
