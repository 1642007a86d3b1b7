"""An annotator in real Chromium against `streamlit run`: signs in with their own code, draws a box
on one case and a polygon on the next with the mouse (the second at another zoom), saves each with
Enter, reloads, and finds both marks again exactly (and a box drawn but not yet saved, kept by
the browser); the database holds them with author and version."""

from __future__ import annotations

import json

import pytest

import db
from tests.e2e.browser import wait_idle
from tests.e2e.conftest import (
    ADMIN_SECRET,
    open_app,
    publish_screenshots,
    screenshot,
    wait_heading,
)
from tests.e2e.server import StreamlitServer

pytestmark = pytest.mark.e2e
ANNOTATOR = "Dr Annotator"


@pytest.fixture
def annotation_server(db_copy, e2e_db, tmp_path):
    conn = db.connect(db_copy)
    _, code = db.add_annotator(conn, ANNOTATOR)
    cases = db.cases_frame(conn).sort_values("display_id")
    conn.close()
    srv = StreamlitServer(
        db_copy, ADMIN_SECRET, tmp_path / "streamlit.log", home=e2e_db.path.parent
    )
    srv.start()
    yield srv, code, cases
    srv.stop()


def viewer(page, display_id: str):
    """The viewer once it has drawn ``display_id``'s case."""
    root = page.locator(f".csv-root[data-drawn^='annotate:{display_id}#']")
    root.wait_for(state="attached")
    return root


def to_image(page, root, x: float, y: float) -> list[int]:
    """Where a click at page position (x, y) lands in image pixel edges: the canvas's CSS box is
    scaled to its drawing buffer, then the image's origin and scale on the canvas are undone."""
    canvas = root.locator("canvas")
    box = canvas.bounding_box()
    width = int(canvas.get_attribute("width"))
    fit, ox, oy = (
        float(root.get_attribute(a)) for a in ("data-fit", "data-origin-x", "data-origin-y")
    )
    cx, cy = (x - box["x"]) * width / box["width"], (y - box["y"]) * width / box["height"]
    return [round((cx - ox) / fit), round((cy - oy) / fit)]


def marks_shown(root) -> list[dict]:
    return json.loads(root.get_attribute("data-marks") or "[]")


def test_an_annotator_draws_saves_with_keys_and_finds_the_marks_after_a_reload(
    annotation_server, new_page, db_copy
):
    srv, code, cases = annotation_server
    first, second, third = cases["display_id"].iloc[:3]
    page = new_page()
    open_app(page, srv.url)
    page.get_by_role("textbox", name="Access code").fill(code)
    page.get_by_role("button", name="Continue").click()
    wait_heading(page, "Annotate lesions")

    root = viewer(page, first)
    canvas = root.locator("canvas").bounding_box()
    x0, y0 = canvas["x"] + canvas["width"] * 0.30, canvas["y"] + canvas["height"] * 0.35
    x1, y1 = canvas["x"] + canvas["width"] * 0.62, canvas["y"] + canvas["height"] * 0.71
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=6)
    page.mouse.up()
    box = [{"slice": 0, "kind": "box",
            "points": [to_image(page, root, x0, y0), to_image(page, root, x1, y1)]}]  # fmt: skip
    assert marks_shown(root) == box
    page.keyboard.press("Enter")  # save, then the next case without marks

    root = viewer(page, second)
    page.keyboard.press("p")
    page.keyboard.press("+")  # another zoom: the mapping must follow it
    page.locator(".csv-root[data-zoom='1.25']").wait_for(state="attached")
    canvas = root.locator("canvas").bounding_box()
    corners = [(0.40, 0.38), (0.66, 0.45), (0.60, 0.70), (0.42, 0.64)]
    clicks = [(canvas["x"] + canvas["width"] * u, canvas["y"] + canvas["height"] * v)
              for u, v in corners]  # fmt: skip
    polygon = [{"slice": 0, "kind": "polygon",
                "points": [to_image(page, root, x, y) for x, y in clicks]}]  # fmt: skip
    for x, y in clicks:
        page.mouse.click(x, y)
    page.mouse.click(*clicks[0])  # the first corner again closes the outline
    assert marks_shown(root) == polygon
    shot = screenshot(page, "annotate-lesions")
    page.keyboard.press("Enter")
    root = viewer(page, third)
    wait_idle(page)
    canvas = root.locator("canvas").bounding_box()
    page.mouse.move(canvas["x"] + 100, canvas["y"] + 120)
    page.mouse.down()
    page.mouse.move(canvas["x"] + 200, canvas["y"] + 260, steps=4)
    page.mouse.up()
    unsaved = marks_shown(root)
    assert len(unsaved) == 1

    page.reload()  # before that box was saved
    wait_heading(page, "Annotate lesions")
    root = viewer(page, third)  # the URL brought the annotator back to where they were
    assert marks_shown(root) == unsaved  # kept by the browser, not lost
    page.keyboard.press("Delete")
    assert marks_shown(root) == []
    page.keyboard.press("ArrowLeft")
    assert marks_shown(viewer(page, second)) == polygon
    page.keyboard.press("ArrowLeft")
    assert marks_shown(viewer(page, first)) == box

    conn = db.connect(db_copy)
    stored = db.current_marks_frame(conn).dropna(subset=["kind"])
    conn.close()
    by_case = dict(zip(stored["case_id"], stored["geometry"], strict=True))
    case_ids = dict(zip(cases["display_id"], cases["case_id"], strict=True))
    assert set(stored["author"]) == {ANNOTATOR} and set(stored["version"]) == {1}
    assert stored["annotator_id"].notna().all()
    assert by_case[case_ids[first]]["points"] == box[0]["points"]
    assert by_case[case_ids[second]]["points"] == polygon[0]["points"]
    assert case_ids[third] not in by_case  # moving away from an empty case stores nothing
    publish_screenshots(shot)
