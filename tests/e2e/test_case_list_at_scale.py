"""The case browser at ten times the demo cohort in real Chromium against `streamlit run`: the
server sends one page of 100 cases, the researcher pages, sorts and searches through 6,410 or
more on the server, and the page answers each time."""

from __future__ import annotations

import math
import re

import pytest

import db
from core.bench import pages as bench_pages
from tests.e2e.browser import wait_idle
from tests.e2e.conftest import ADMIN_SECRET, go_to, grid_rows, sign_in_admin
from tests.e2e.server import StreamlitServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture
def scaled_server(e2e_db, tmp_path):
    conn = db.connect(e2e_db.path)
    try:
        factor = math.ceil(6410 / len(db.cases_frame(conn)))
    finally:
        conn.close()
    path = tmp_path / "scaled.db"
    bench_pages.scaled_database(e2e_db.path, path, factor, n_readers=1)
    conn = db.connect(path)
    try:
        case_ids = db.cases_frame(conn)["case_id"].tolist()
        n_cases = len(case_ids)
    finally:
        conn.close()
    srv = StreamlitServer(path, ADMIN_SECRET, tmp_path / "streamlit.log", home=e2e_db.path.parent)
    srv.start()
    yield srv, n_cases, case_ids
    srv.stop()


def caption(page, pattern: str):
    found = page.get_by_text(re.compile(pattern))
    found.first.wait_for()
    wait_idle(page)
    return found.first.inner_text()


def first_case(page, *, among=None) -> str:
    """The first case ID the table shows (waiting, when ``among`` is given, until the grid has
    redrawn with one of those: the caption can update a moment before the grid)."""
    grid = page.locator("[data-testid='stDataFrame']").first
    shown = ""
    for _ in range(100):
        rows = grid_rows(grid)  # empty while the grid is still being drawn
        shown = rows[1][0] if len(rows) > 1 and rows[1] else ""
        if shown and (among is None or shown in among):
            return shown
        page.wait_for_timeout(200)
    return shown


def test_paging_sorting_and_searching_six_thousand_cases(scaled_server, new_page):
    srv, n_cases, case_ids = scaled_server
    assert n_cases >= 6410
    page = new_page()
    sign_in_admin(page, srv.url, ADMIN_SECRET)
    go_to(page, "Case browser")
    caption(page, rf"^Cases 1-100 of {n_cases:,} matching")
    by_case = first_case(page)
    pages = math.ceil(n_cases / 100)
    box = page.get_by_role("spinbutton", name=f"Page (of {pages})")
    box.fill("3")
    box.press("Enter")
    caption(page, rf"^Cases 201-300 of {n_cases:,} matching")
    on_page_three = first_case(page)

    page.locator("[data-testid='stSelectbox']").filter(has_text="Sort by").click()
    page.get_by_role("option", name="confidence, highest first").click()
    caption(page, rf"^Cases 1-100 of {n_cases:,} matching")  # another order opens on page 1
    others = [c for c in case_ids if c != by_case]
    assert first_case(page, among=others) != by_case  # ordered on the server

    text = on_page_three.split("~")[0]  # an original case: it and its copies contain it
    expected = sorted(c for c in case_ids if text.lower() in c.lower())
    search = page.get_by_role("textbox", name="Case ID contains")
    search.fill(text)
    search.press("Enter")
    n = len(expected)
    shown = min(n, 100)
    # a new search opens on its first page, still in the order chosen
    caption(page, rf"^Cases 1-{shown} of {n:,} matching \({n_cases:,} after the filters above\)")
    assert first_case(page, among=expected) in expected
