"""The reading workstation in Chromium at 1440x900: 20 cases read with the keyboard alone in each
arm (submit always in view, no scrolling), F5 keeps the reader at the same case, a signed-out
session's URL is refused, and the viewer moves through every slice of a multi-slice case, changes
window/level by dragging (the drawn pixels change) and zooms."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

import db
from core.data.labels import CLASSES
from tests.e2e.browser import wait_idle
from tests.e2e.conftest import (
    CASE_HEADING,
    click_submit,
    current_case,
    fill_answer,
    open_app,
    publish_screenshots,
    screenshot,
    sign_in_reader,
    submit_in_viewport,
    wait_case,
    wait_heading,
    wait_saved,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N_CASES = 20
RELOAD_AFTER = 5


@pytest.fixture
def keyboard_study(db_copy, e2e_db):
    """Both arms (no washout), 20 cases including the cohort's 3-slice cases, one reader."""
    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn).sort_values("case_id")["case_id"].tolist()
        slices = {c: len(db.images_frame(conn, c)) for c in cases}
        chosen = sorted(cases, key=lambda c: -slices[c])[:N_CASES]  # the multi-slice ones first
        study_id = db.create_study(
            conn, name="Keyboard", case_ids=chosen, arms=("unaided", "aided"),
            model_run_id=e2e_db.run_id, washout_days=0,
        )  # fmt: skip
        reader_id, code = db.add_reader(conn, study_id, "Dr Keys")
    finally:
        conn.close()
    assert max(slices[c] for c in chosen) >= 3, "the cohort has a multi-slice case"
    return study_id, reader_id, code


def read_arm(page, arm: str) -> list[str]:
    """Read every case of the arm on screen with two keys each; return the labels typed."""
    typed = []
    for step in range(1, N_CASES + 1):
        _, position, n_cases = current_case(page)
        assert (position, n_cases) == (step, N_CASES), arm
        assert submit_in_viewport(page), f"{arm} case {step}: submit is out of view"
        label = CLASSES[step % len(CLASSES)]
        fill_answer(page, label)
        click_submit(page)
        typed.append(label)
        if step < N_CASES:
            wait_case(page, step + 1, N_CASES)
    page.get_by_text("All cases are read").wait_for()
    wait_saved(page)  # the server acknowledged the last answer too
    return typed


def test_twenty_cases_per_arm_from_the_keyboard_at_1440x900(
    server, db_copy, keyboard_study, new_page
):
    study_id, reader_id, code = keyboard_study
    page = new_page()
    open_app(page, server.url)
    sign_in_reader(page, code)
    shots = {}
    typed = {"unaided": []}
    for _ in range(RELOAD_AFTER):  # a few reads, then F5
        label = CLASSES[(len(typed["unaided"]) + 1) % len(CLASSES)]
        fill_answer(page, label)
        click_submit(page)
        typed["unaided"].append(label)
        wait_case(page, len(typed["unaided"]) + 1, N_CASES)
    page.keyboard.press("ArrowLeft")  # back to a case already read
    wait_case(page, RELOAD_AFTER, N_CASES)
    before = current_case(page)
    page.reload()
    wait_heading(page, CASE_HEADING)
    assert current_case(page) == before, "after F5 the reader is signed in at the same case"
    assert page.get_by_role("button", name=re.compile("^Update")).is_visible()
    page.keyboard.press("ArrowRight")
    wait_case(page, RELOAD_AFTER + 1, N_CASES)
    shots["reading"] = screenshot(page, "reading")
    for step in range(RELOAD_AFTER + 1, N_CASES + 1):
        assert submit_in_viewport(page), f"unaided case {step}: submit is out of view"
        label = CLASSES[step % len(CLASSES)]
        fill_answer(page, label)
        click_submit(page)
        typed["unaided"].append(label)
        if step < N_CASES:
            wait_case(page, step + 1, N_CASES)
    # the unaided arm is done and there is no washout: the AI-aided arm opens in its place
    wait_case(page, 1, N_CASES)
    assert page.get_by_text("AI model").first.is_visible()
    page.get_by_text("Grad-CAM, model's top type").wait_for()  # made by a worker process
    shots["reading_aided"] = screenshot(page, "reading_aided")
    typed["aided"] = read_arm(page, "aided")

    conn = db.connect(db_copy)
    try:
        for arm in ("unaided", "aided"):
            work = db.worklist(conn, study_id, reader_id, arm).sort_values("position")
            assert work["label_read"].tolist() == typed[arm], arm
        reads = db.reader_reads_frame(conn, study_id, reader_id)
    finally:
        conn.close()
    assert len(reads) == 2 * N_CASES
    assert sorted(reads[["c_SCC", "c_AC", "c_ASC"]].max(axis=1).unique()) == [0.7]  # the default
    publish_screenshots(shots["reading"], shots["reading_aided"])


def test_signed_out_url_is_refused(server, keyboard_study, new_page):
    _, _, code = keyboard_study
    page = new_page()
    open_app(page, server.url)
    sign_in_reader(page, code)
    signed_in_url = page.url
    assert "session=" in signed_in_url and code not in signed_in_url
    page.get_by_role("link", name="Sign out").click()
    page.get_by_role("textbox", name="Access code").wait_for()
    open_app(page, signed_in_url)  # the old URL, token and all
    page.get_by_role("textbox", name="Access code").wait_for()
    assert not page.get_by_role("heading", name=CASE_HEADING).count()


def _pixels(page) -> str:
    return page.locator(".csv-canvas").evaluate("c => c.toDataURL()")


def _state(page, name: str) -> str:
    """A viewer state the component wrote with its last draw (read only after ``_drawn``)."""
    value = page.locator(".csv-root").get_attribute(f"data-{name}")
    assert value is not None, f"the viewer has not drawn yet: data-{name} is missing"
    return value


def _drawn(page, view_id: str | None = None) -> int:
    """Wait until the viewer has drawn (``view_id``'s case, if given); return its frame number.

    The component writes ``data-drawn="<view id>#<frame>"`` as the last step of every draw, so
    the states read after this are those of a drawn frame, never of a viewer still mounting.
    """
    pattern = re.compile(rf"^{re.escape(view_id)}#\d+$" if view_id else r"^.+#\d+$")
    root = page.locator(".csv-root")
    expect(root).to_have_attribute("data-drawn", pattern)
    return int(root.get_attribute("data-drawn").rsplit("#", 1)[1])


def _after(page, action, **states) -> None:
    """Do ``action`` and wait until the viewer drew a new frame showing ``states``."""
    frame = _drawn(page)
    action()
    root = page.locator(".csv-root")
    expect(root).not_to_have_attribute("data-drawn", re.compile(rf"#{frame}$"))
    for name, value in states.items():
        expect(root).to_have_attribute(f"data-{name}", value)


def test_viewer_slices_window_level_by_drag_and_zoom(server, keyboard_study, new_page):
    _, _, code = keyboard_study
    page = new_page()
    open_app(page, server.url)
    sign_in_reader(page, code)
    _drawn(page, "unaided:1")
    for _ in range(N_CASES):  # the right arrow walks the worklist to a 3-slice case
        if int(_state(page, "slices")) >= 3:
            break
        _, position, _ = current_case(page)
        page.keyboard.press("ArrowRight")
        wait_case(page, position + 1, N_CASES)
        _drawn(page, f"unaided:{position + 1}")
    n_slices = int(_state(page, "slices"))
    assert n_slices >= 3
    assert _state(page, "slice") == "1"
    seen = [_pixels(page)]
    for k in range(2, n_slices + 1):  # down arrow: every slice in turn, each drawn differently
        _after(page, lambda: page.keyboard.press("ArrowDown"), slice=str(k))
        seen.append(_pixels(page))
        assert seen[-1] != seen[-2], f"slice {k} drew the same pixels as slice {k - 1}"
    assert page.get_by_text(f"Slice {n_slices} / {n_slices}").is_visible()
    _after(page, lambda: page.keyboard.press("ArrowDown"), slice=str(n_slices))  # stays there
    canvas = page.locator(".csv-canvas")
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    _after(page, lambda: page.mouse.wheel(0, -120), slice=str(n_slices - 1))  # the wheel too

    center, width, before = (
        float(_state(page, "center")),
        float(_state(page, "width")),
        _pixels(page),
    )
    page.mouse.move(cx, cy)
    page.mouse.down()
    _after(page, lambda: page.mouse.move(cx + 120, cy + 60, steps=6))
    page.mouse.up()
    assert float(_state(page, "width")) > width and float(_state(page, "center")) < center
    assert _pixels(page) != before, "dragging changed window/level but not the drawn pixels"

    before = _pixels(page)
    _after(page, lambda: page.keyboard.press("="), zoom="1.25")  # zoom in (the + key)
    assert _pixels(page) != before
    before = _pixels(page)
    _after(page, lambda: page.keyboard.press("o"), roi="off")  # the ROI outline off
    assert _pixels(page) != before
    # reset: first slice, default window, no zoom, outline on
    _after(page, lambda: page.keyboard.press("0"), slice="1", zoom="1", roi="on")
    assert _pixels(page) == seen[0]
    wait_idle(page)
