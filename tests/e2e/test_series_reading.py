"""A whole T2 sagittal series at real size (24 slices of 512x512, 16-bit) on the reading page, in
real Chromium against ``streamlit run``: the case shows, every slice is scrolled through with the
wheel and drawn differently, and no message goes to the server meanwhile (counted on the
websocket); the series travels compressed, losslessly."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

import db
from core.data.demo_data import SERIES_SIZE, SERIES_SLICES, generate_series_cohort
from core.data.ingest import ingest_folder
from tests.e2e.conftest import ADMIN_SECRET, open_app, sign_in_reader
from tests.e2e.server import StreamlitServer

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def series_server(tmp_path_factory):
    """A database of a 3-patient series cohort, a study that shows the whole series, a reader."""
    work = tmp_path_factory.mktemp("series")
    generate_series_cohort(work / "cohort", seed=0, counts=(1, 1, 1))
    path = work / "series.db"
    conn = db.connect(path)
    try:
        ingest_folder(work / "cohort", conn=conn, progress=False)
        cases = db.cases_frame(conn)["case_id"].tolist()
        study_id = db.create_study(conn, name="Series", case_ids=cases, slices="series")
        _, code = db.add_reader(conn, study_id, "Dr Series")
    finally:
        conn.close()
    server = StreamlitServer(path, ADMIN_SECRET, work / "streamlit.log", home=work)
    server.start()
    yield server, code
    server.stop()


def test_a_whole_series_scrolls_with_the_wheel_without_the_server(series_server, new_page):
    server, code = series_server
    page = new_page()
    sent, received = [], []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: sent.append(payload))
        ws.on("framereceived", lambda payload: received.append(payload))

    page.on("websocket", watch)
    open_app(page, server.url)
    sign_in_reader(page, code)
    viewer = page.locator(".csv-root")
    expect(viewer).to_have_attribute("data-slices", str(SERIES_SLICES))
    expect(viewer).to_have_attribute("data-decoded", str(SERIES_SLICES), timeout=60_000)
    page.wait_for_timeout(300)  # let the last sync's reply settle before counting
    start = int(viewer.get_attribute("data-slice"))
    assert 1 < start < SERIES_SLICES, "the series opens on the model's (lesion) slice"
    canvas = page.locator(".csv-canvas")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    before, pixels = len(sent), {}
    assert before > 0, "the count sees the page's own messages (sign-in, syncs)"
    for delta, stop in ((-120, 1), (120, SERIES_SLICES)):
        while int(viewer.get_attribute("data-slice")) != stop:
            frame = viewer.get_attribute("data-drawn")
            page.mouse.wheel(0, delta)
            expect(viewer).not_to_have_attribute("data-drawn", frame)
            pixels[viewer.get_attribute("data-slice")] = canvas.evaluate("c => c.toDataURL()")
    assert len(pixels) == SERIES_SLICES and len(set(pixels.values())) == SERIES_SLICES
    assert len(sent) == before, "scrolling sent messages to the server"
    raw = SERIES_SLICES * SERIES_SIZE**2 * 2
    arrived = sum(len(f) for f in received if isinstance(f, bytes | bytearray))
    assert arrived < 3 * raw, "three cases (one on screen, two ahead) arrived, compressed"
