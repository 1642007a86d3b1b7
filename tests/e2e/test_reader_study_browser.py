"""The blinded reader study in a real browser: Chromium against a real `streamlit run`.

An admin creates a study with two readers on the study page; the two readers, each in their own
browser context, label 20 cases with both sessions live on the server at once (each step's two
submits are in flight together), from the keyboard alone; one changes an earlier answer, the
other reloads mid-study and is still signed in, at the first unread case; the analysis page's
confusion matrices equal the database and what the readers typed; a signed-in reader who opens an admin URL is refused.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from sklearn.metrics import confusion_matrix

import db
from core.data.labels import CLASSES
from tests.e2e.browser import wait_idle, wait_settled
from tests.e2e.conftest import (
    CASE_HEADING,
    click_submit,
    confusion_on_page,
    current_case,
    fill_answer,
    go_to,
    open_app,
    publish_screenshots,
    push_url,
    screenshot,
    sign_in_admin,
    sign_in_reader,
    wait_case,
    wait_heading,
    wait_read_count,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

N_CASES = 20
READERS = ("Dr Ash", "Dr Birch")
CHANGE_AT = 6  # reader 0, after this many reads, goes back one case and changes that answer
RELOAD_AT = 10  # reader 1, after this many reads, reloads the tab and signs in again
ADMIN_PATHS = ("study_admin", "study_analysis", "cv_results")
ADMIN_TITLES = ("Studies and readers", "Reader analysis", "Cross-validation results", "Overview")


def assert_no_admin_content(page, *, settle_ms: int = 0) -> None:
    """No admin page title is shown (after ``settle_ms`` for a page switch that may still come)
    and no admin page is linked."""
    titles = page.get_by_role("heading", name=re.compile("^(" + "|".join(ADMIN_TITLES) + ")$"))
    if settle_ms:
        with pytest.raises(PlaywrightTimeout):
            titles.first.wait_for(timeout=settle_ms)
    assert not titles.count(), titles.all_inner_texts()
    for title in ADMIN_TITLES:
        assert not page.get_by_role("link", name=title).count(), title


def intended_label(reader: int, position: int, truth: str) -> str:
    """What the test's reader answers: the truth, except a few deliberate, reader-specific errors
    (so the confusion matrices have off-diagonal cells to get wrong)."""
    if position % (4 + reader) == 0:
        return CLASSES[(CLASSES.index(truth) + 1 + reader) % len(CLASSES)]
    return truth


def create_study_with_readers(admin) -> tuple[int, dict[str, str]]:
    go_to(admin, "Studies and readers")
    admin.get_by_role("textbox", name="Study name").fill("Browser study")
    admin.get_by_text("Stratified random sample", exact=True).click()
    admin.get_by_role("spinbutton", name="Sample size N").fill(str(N_CASES))
    admin.get_by_label("Model run whose out-of-fold probabilities are shown (and compared)").click()
    # runs are named by model, mode, folds and AUC, not by id
    admin.get_by_role(
        "option", name=re.compile(r"^cnn · features · 3 folds · AUC [0-9.]+$")
    ).click()
    admin.get_by_role("button", name="Create study").click()
    admin.get_by_text(f"created with {N_CASES} cases").wait_for()
    wait_idle(admin)
    study_id = int(
        re.search(r"Study (\d+) created", admin.get_by_text("created with").inner_text())[1]
    )
    codes = {}
    for name in READERS:
        admin.get_by_role("textbox", name="Reader's display name").fill(name)
        admin.get_by_role("button", name="Add reader").click()
        admin.get_by_text(f"Reader {name} added").wait_for()
        wait_idle(admin)
        shown = admin.locator("[data-testid='stCode'] code")
        shown.first.wait_for()
        assert shown.count() == 1, "the new reader's code is shown once, alone"
        codes[name] = shown.inner_text().strip()
    assert len(set(codes.values())) == len(READERS)
    return study_id, codes


def test_two_readers_in_parallel_then_analysis(server, e2e_db, db_copy, new_page):
    signin = new_page()
    open_app(signin, server.url)
    shots = {"sign_in": screenshot(signin, "sign_in")}

    admin = new_page()
    sign_in_admin(admin, server.url)
    go_to(admin, "Cross-validation results")
    admin.locator(".js-plotly-plot").first.wait_for()
    shots["cv_results"] = screenshot(admin, "cv_results")
    study_id, codes = create_study_with_readers(admin)
    shots["study_admin"] = screenshot(admin, "study_admin")

    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn)
        truth_by_display = dict(zip(cases["display_id"], cases["label"], strict=True))
        truth_by_case = dict(zip(cases["case_id"], cases["label"], strict=True))
    finally:
        conn.close()

    pages = []
    for name in READERS:
        page = new_page()
        open_app(page, server.url)
        sign_in_reader(page, codes[name])
        assert current_case(page)[1:] == (1, N_CASES), "a new reader starts at case 1"
        pages.append(page)
    intent: dict[str, dict[str, str]] = {name: {} for name in READERS}

    for step in range(1, N_CASES + 1):
        for reader, (name, page) in enumerate(zip(READERS, pages, strict=True)):
            display_id, position, _ = current_case(page)
            assert position == step, f"{name} should be at case {step}, is at {position}"
            label = intended_label(reader, position, truth_by_display[display_id])
            intent[name][display_id] = label
            fill_answer(page, label)
        if step == 3:
            shots["reading"] = screenshot(pages[0], "reading")
        for page in pages:  # both submits in flight at once: two live sessions on one server
            click_submit(page)
        for page in pages:
            wait_read_count(page, step, N_CASES)
            if step < N_CASES:
                wait_case(page, step + 1, N_CASES)

        if step == CHANGE_AT:  # reader 0 goes back one case (left arrow) and changes the answer
            page, name = pages[0], READERS[0]
            page.keyboard.press("ArrowLeft")
            wait_case(page, step, N_CASES)
            display_id, _, _ = current_case(page)
            old = intent[name][display_id]
            new = CLASSES[(CLASSES.index(old) + 1) % len(CLASSES)]
            intent[name][display_id] = new
            changed = display_id
            fill_answer(page, new)
            click_submit(page)  # "Update": the reader stays where they were
            page.get_by_text("Answer updated.").wait_for()
            wait_read_count(page, step, N_CASES)  # a change adds no read
            page.keyboard.press("ArrowRight")
            wait_case(page, step + 1, N_CASES)

        if step == RELOAD_AT:  # reader 1 reloads (F5): still signed in, at the first unread case
            page, name = pages[1], READERS[1]
            page.reload()
            wait_heading(page, CASE_HEADING)
            display_id, position, _ = current_case(page)
            conn = db.connect(db_copy)
            try:
                reader_id = int(
                    db.reads_frame(conn, study_id)
                    .query("display_name == @name")["reader_id"]
                    .iloc[0]
                )
                work = db.worklist(conn, study_id, reader_id, "unaided")
            finally:
                conn.close()
            first_unread = int(work.loc[work["label_read"].isna(), "position"].min())
            assert position == first_unread == RELOAD_AT + 1
            assert display_id == work.loc[work["position"] == position, "display_id"].item()

    for page in pages:
        page.get_by_text("All cases are read").wait_for()

    # Admin pages by URL. Inside a session the client switches pages only among those in the
    # session's navigation: the admin's own tab shows that the URL route works (the control) ...
    push_url(admin, "study_analysis")
    wait_heading(admin, "Reader analysis")
    # ... while a signed-in reader's tab stays on its reading page, with no admin content.
    reader_page = pages[0]
    for path in ADMIN_PATHS:
        push_url(reader_page, path)
        assert_no_admin_content(reader_page, settle_ms=2_000)
        assert reader_page.get_by_role("heading", name="Read cases", exact=True).is_visible()
    # A full load of the URL in the reader's browser is a new session: refused as well.
    for path in ADMIN_PATHS:
        open_app(reader_page, f"{server.url}/{path}")
        reader_page.get_by_text("Page not found").wait_for()
        reader_page.get_by_role("textbox", name="Access code").wait_for()
        assert_no_admin_content(reader_page)
    shots["reader_refused"] = screenshot(reader_page, "reader_refused")

    # The database holds exactly what the readers clicked, the change included (with history).
    conn = db.connect(db_copy)
    try:
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
        predictions = db.predictions_frame(conn, [e2e_db.run_id])
    finally:
        conn.close()
    assert len(reads) == len(READERS) * N_CASES
    for name in READERS:
        mine = reads[reads["display_name"] == name]
        assert dict(zip(mine["display_id"], mine["label"], strict=True)) == intent[name]
    history = audit[
        (audit["display_name"] == READERS[0])
        & (audit["case_id"].isin(reads.loc[reads["display_id"] == changed, "case_id"]))
    ]
    assert len(history) == 2, f"the changed answer has its history: {history}"

    # The analysis page (the admin's tab opened it above, after the last read) shows each
    # reader's confusion matrix, equal to the database, once its tables are computed (the page
    # draws placeholders meanwhile and refreshes by itself).
    wait_settled(admin)
    shown = confusion_on_page(admin)
    for name in READERS:
        mine = reads[reads["display_name"] == name]
        truth = [truth_by_display[d] for d in mine["display_id"]]
        expected = confusion_matrix(truth, mine["label"], labels=list(CLASSES))
        from_intent = confusion_matrix(
            [truth_by_display[d] for d in intent[name]],
            list(intent[name].values()),
            labels=list(CLASSES),
        )
        np.testing.assert_array_equal(expected, from_intent)
        assert name in shown, f"no confusion matrix for {name}; page has {sorted(shown)}"
        np.testing.assert_array_equal(shown[name], expected, err_msg=name)
        assert expected.sum() == N_CASES and np.trace(expected) < N_CASES
    # ... and the model's, on the same cases: the argmax of its out-of-fold probabilities.
    study_cases = set(reads["case_id"])
    mine = predictions[predictions["case_id"].isin(study_cases)]
    assert len(mine) == N_CASES
    predicted = np.array(CLASSES)[mine[[f"p_{c}" for c in CLASSES]].to_numpy().argmax(axis=1)]
    truth = mine["case_id"].map(truth_by_case)
    np.testing.assert_array_equal(
        shown["Model"], confusion_matrix(truth, predicted, labels=list(CLASSES)), err_msg="model"
    )
    admin.locator(".js-plotly-plot").first.wait_for()
    shots["analysis"] = screenshot(admin, "analysis", height=2600)

    publish_screenshots(shots["cv_results"], shots["analysis"])
