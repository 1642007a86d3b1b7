"""A localisation study in real Chromium against `streamlit run`: a reader reads 10 cases with a
click (and on some cases a dragged box) on the slice plus the type key and Enter, half of them
zoomed and panned; the stored marks are exactly the clicked image pixels, the reader was never
sent an ROI outline or a picture of the lesion, and the admin's analysis page draws the LROC and
wAFROC figures."""

from __future__ import annotations

import json
import math

import pytest

import db
from core.data.labels import CLASSES
from tests.e2e.browser import wait_idle, wait_settled
from tests.e2e.conftest import (
    ADMIN_SECRET,
    click_submit,
    current_case,
    fill_answer,
    go_to,
    open_app,
    publish_screenshots,
    screenshot,
    sign_in_admin,
    sign_in_reader,
    wait_saved,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
N_CASES = 10


@pytest.fixture
def localisation_study(db_copy):
    """10 cases, every type at least twice where the cohort has it, one reader."""
    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn).sort_values("case_id")
        chosen = []
        for label, n in (("SCC", 4), ("AC", 4), ("ASC", 2)):
            chosen += cases.loc[cases["label"] == label, "case_id"].tolist()[:n]
        chosen += [c for c in cases["case_id"] if c not in chosen][: N_CASES - len(chosen)]
        study_id = db.create_study(
            conn, name="Where is it", case_ids=chosen, localise=True, hit_radius_mm=5.0
        )
        reader_id, code = db.add_reader(conn, study_id, "Dr Where")
    finally:
        conn.close()
    return study_id, reader_id, code


def drawn(page, position: int):
    root = page.locator(f".csv-root[data-drawn^='unaided:{position}#']")
    root.wait_for(state="attached")
    return root


def to_pixel(root, x: float, y: float) -> list[int]:
    """The image pixel a click at page position (x, y) lands on: the canvas's CSS box scaled to
    its drawing buffer, then the image's origin and scale on the canvas undone."""
    canvas = root.locator("canvas")
    box = canvas.bounding_box()
    width, height = int(canvas.get_attribute("width")), int(canvas.get_attribute("height"))
    fit, ox, oy = (
        float(root.get_attribute(a)) for a in ("data-fit", "data-origin-x", "data-origin-y")
    )
    cx, cy = (x - box["x"]) * width / box["width"], (y - box["y"]) * height / box["height"]
    return [math.floor((cx - ox) / fit), math.floor((cy - oy) / fit)]


def zoom_and_pan(page, root) -> None:
    page.keyboard.press("+")
    page.keyboard.press("+")
    page.locator(".csv-root[data-zoom='1.5625']").wait_for(state="attached")
    box = root.locator("canvas").bounding_box()
    start = (round(box["x"] + box["width"] * 0.5), round(box["y"] + box["height"] * 0.5))
    page.keyboard.down("Shift")
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 30, start[1] - 20, steps=4)
    page.mouse.up()
    page.keyboard.up("Shift")


def mark_case(page, root, position: int) -> list[dict]:
    """Click the lesion (and drag a box on even positions); return the marks expected."""
    box = root.locator("canvas").bounding_box()
    # whole page pixels: Chromium reports a mouse event's position in whole CSS pixels
    at = lambda u, v: (round(box["x"] + box["width"] * u), round(box["y"] + box["height"] * v))  # noqa: E731
    click = at(0.40 + 0.015 * position, 0.52)
    expected = [{"slice": 0, "x": to_pixel(root, *click)[0], "y": to_pixel(root, *click)[1]}]
    page.mouse.click(*click)
    if position % 2 == 0:
        a, b = at(0.30, 0.33), at(0.58, 0.61)
        page.mouse.move(*a)
        page.mouse.down()
        page.mouse.move(*b, steps=6)
        page.mouse.up()
        (x0, y0), (x1, y1) = to_pixel(root, *a), to_pixel(root, *b)
        expected.append({"slice": 0, "x0": min(x0, x1), "y0": min(y0, y1),
                         "x1": max(x0, x1), "y1": max(y0, y1)})  # fmt: skip
    return expected


def test_a_reader_marks_ten_cases_and_the_stored_marks_are_the_clicked_pixels(
    server, db_copy, localisation_study, new_page
):
    study_id, reader_id, code = localisation_study
    page = new_page()
    open_app(page, server.url)
    sign_in_reader(page, code)
    expected = {}
    zooms = set()
    for position in range(1, N_CASES + 1):
        display_id, shown, n_cases = current_case(page)
        assert (shown, n_cases) == (position, N_CASES)
        root = drawn(page, position)
        if position > N_CASES // 2:
            zoom_and_pan(page, root)
        zooms.add(root.get_attribute("data-zoom"))
        marks = mark_case(page, root, position)
        assert json.loads(root.get_attribute("data-marks")) == marks
        # blinded: no ROI outline and no lesion picture on the reading page
        assert "outline" not in root.locator(".csv-info").inner_text()
        assert page.locator(".csv-side img").count() == 0
        if position == 2:
            shot = screenshot(page, "localisation-reading")
        fill_answer(page, CLASSES[position % 3])
        expected[display_id] = (CLASSES[position % 3], marks)
        click_submit(page)
        if position < N_CASES:
            drawn(page, position + 1)
    page.get_by_text("All cases are read").wait_for()
    wait_saved(page)
    assert zooms == {"1", "1.5625"}  # two zoom levels, the second also panned

    conn = db.connect(db_copy)
    try:
        reads = db.reads_frame(conn, study_id).set_index("read_id")
        stored = db.read_marks_frame(conn, study_id)
    finally:
        conn.close()
    got: dict = {}
    for row in stored.itertuples(index=False):
        mark = (
            {"slice": row.slice, "x": row.x0, "y": row.y0}
            if row.kind == "point"
            else {"slice": row.slice, "x0": row.x0, "y0": row.y0, "x1": row.x1, "y1": row.y1}
        )
        got.setdefault(reads.loc[row.read_id, "display_id"], []).append(mark)
    assert got == {d: marks for d, (_, marks) in expected.items()}
    labels = dict(zip(reads["display_id"], reads["label"], strict=True))
    assert labels == {d: label for d, (label, _) in expected.items()}

    admin = new_page()
    sign_in_admin(admin, server.url, ADMIN_SECRET)
    go_to(admin, "Reader analysis")
    wait_settled(admin)
    admin.get_by_role("heading", name="Where: localisation (LROC and wAFROC)").wait_for()
    figure = admin.locator(".js-plotly-plot").last
    figure.wait_for()
    figure.scroll_into_view_if_needed()
    wait_idle(admin)
    assert "LROC" in figure.inner_text() and "wAFROC" in figure.inner_text()
    chart = figure.screenshot(path=str(shot.parent / "localisation-lroc-wafroc.png"))
    assert chart
    publish_screenshots(shot, shot.parent / "localisation-lroc-wafroc.png")
