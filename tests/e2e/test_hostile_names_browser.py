"""A Markdown-image name and Markdown-image instructions, drawn by Streamlit's own renderer in a
real Chromium: the DOM holds the text, no <img> with that source, and the browser requests nothing
from that address (the beacon never fires)."""

from __future__ import annotations

import pytest

import db
from tests.db.conftest import make_cases
from tests.e2e.conftest import ADMIN_SECRET, go_to, open_app, sign_in_admin, wait_idle
from tests.e2e.server import StreamlitServer

pytestmark = pytest.mark.timeout(300)
BEACON_HOST = "127.0.0.1:9"
NAME = f"![x](http://{BEACON_HOST}/beacon.png)"
INSTRUCTIONS = f"# Read carefully\n\n![x](http://{BEACON_HOST}/instructions.png) then begin."


@pytest.fixture
def hostile_server(tmp_path):
    path = tmp_path / "hostile.db"
    conn = db.connect(path)
    try:
        study_id = db.create_study(conn, name=NAME, case_ids=make_cases(conn, 3))
        db.set_study_instructions(conn, study_id, INSTRUCTIONS)
        _, code = db.add_reader(conn, study_id, NAME)
    finally:
        conn.close()
    srv = StreamlitServer(path, ADMIN_SECRET, tmp_path / "streamlit.log", home=tmp_path)
    srv.start()
    yield srv, code
    srv.stop()


def _watch(page) -> list[str]:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    return requested


def test_markdown_image_names_render_as_text_in_the_browser(hostile_server, new_page):
    srv, code = hostile_server
    admin = new_page()
    admin_requests = _watch(admin)
    sign_in_admin(admin, srv.url)
    go_to(admin, "Studies and readers")
    label = "Reader's display name (readers never see each other's names)"
    admin.get_by_role("textbox", name=label).fill(NAME + " 2")
    admin.get_by_role("button", name="Add reader").click()
    wait_idle(admin)
    added = admin.get_by_text(f"Reader {NAME} 2 added", exact=False)
    added.first.wait_for()
    assert admin.get_by_text(NAME, exact=False).count() >= 2  # the study name and the message
    assert admin.locator(f"img[src*='{BEACON_HOST}']").count() == 0

    reader = new_page()
    reader_requests = _watch(reader)
    open_app(reader, srv.url)
    reader.get_by_role("textbox", name="Access code").fill(code)
    reader.get_by_role("button", name="Continue").click()
    reader.get_by_role("heading", name="Read carefully").first.wait_for()  # Markdown still works
    wait_idle(reader)
    assert reader.get_by_text(f"![x](http://{BEACON_HOST}/instructions.png)").count() >= 1
    assert reader.locator(f"img[src*='{BEACON_HOST}']").count() == 0
    assert not [u for u in admin_requests + reader_requests if BEACON_HOST in u]
