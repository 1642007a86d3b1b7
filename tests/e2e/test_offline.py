"""Offline-clean: a whole session, admin and reader, sends no request beyond this machine.

Every request the browser makes is recorded (documents, scripts, fonts, images, websockets)
while an admin visits every page and a reader reads a case in both arms.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

import db
from tests.e2e.conftest import (
    click_submit,
    fill_answer,
    go_to,
    open_app,
    sign_in_admin,
    sign_in_reader,
    wait_case,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

ADMIN_PAGES = [
    "Cross-validation results",
    "Case browser",
    "Run a cross-validation",
    "Report export",
    "Studies and readers",
    "Reader analysis",
    "Overview",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _record(page, seen: list[str]) -> None:
    page.on("request", lambda request: seen.append(request.url))
    page.on("websocket", lambda ws: seen.append(ws.url))


def _outside(urls: list[str]) -> list[str]:
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in ("data", "blob", "about")
        and urlsplit(url).hostname not in LOCAL_HOSTS
    ]


def test_no_request_leaves_the_machine_in_a_whole_session(server, db_copy, e2e_db, new_page):
    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()[:3]
        study = db.create_study(
            conn, name="Offline", case_ids=cases, arms=("unaided", "aided"),
            model_run_id=e2e_db.run_id, washout_days=0,
        )  # fmt: skip
        _, code = db.add_reader(conn, study, "Dr Offline")
    finally:
        conn.close()
    seen: list[str] = []

    admin = new_page()
    _record(admin, seen)
    sign_in_admin(admin, server.url)
    for name in ADMIN_PAGES:
        go_to(admin, name)

    reader = new_page()
    _record(reader, seen)
    open_app(reader, server.url)
    sign_in_reader(reader, code)
    for position in (1, 2):
        fill_answer(reader, "SCC")
        click_submit(reader)
        wait_case(reader, position + 1, len(cases))

    assert len(seen) > 50, "the recorder saw the session"
    assert any(urlsplit(u).scheme in ("ws", "wss") for u in seen), "the websocket was recorded"
    assert _outside(seen) == []
