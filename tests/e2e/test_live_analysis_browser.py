"""The reader analysis open in a real browser while a study is read: after a reader changes an
answer, a rerun shows the tables of the reads before at once, and the new ones replace them with
no click or key from the researcher; with Live on, the page notices the new read by itself too
(Chromium against a real `streamlit run`)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

import db
from core.bench.pages import add_simulated_readers
from core.data.labels import CLASSES
from dashboard.bench_pages import answer_again
from tests.e2e.browser import wait_settled
from tests.e2e.conftest import confusion_on_page, push_url, sign_in_admin, wait_heading

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]
UPDATING = re.compile(r"^Updating \d+ tables? ")


@pytest.fixture
def read_study(db_copy, e2e_db) -> int:
    """Every case of the cohort, read by three simulated readers; the e2e run as its model."""
    conn = db.connect(db_copy)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()
        study_id = db.create_study(
            conn, name="Live", case_ids=cases, arms=("unaided",), model_run_id=e2e_db.run_id
        )
        add_simulated_readers(conn, study_id, 3)
    finally:
        conn.close()
    return study_id


def confusion_in_database(path, study_id: int, name: str) -> np.ndarray:
    conn = db.connect(path)
    try:
        reads = db.reads_frame(conn, study_id)
        truth = dict(db.cases_frame(conn)[["case_id", "label"]].itertuples(index=False))
    finally:
        conn.close()
    mine = reads[reads["display_name"] == name]
    return confusion_matrix(mine["case_id"].map(truth), mine["label"], labels=list(CLASSES))


def test_the_open_analysis_shows_a_changed_read_by_itself(server, db_copy, read_study, new_page):
    admin = new_page()
    sign_in_admin(admin, server.url)
    push_url(admin, "study_analysis")
    wait_heading(admin, "Reader analysis")
    wait_settled(admin)  # computed from nothing: placeholders, filled in by themselves
    before = confusion_on_page(admin)
    assert len(before) == 4, sorted(before)  # the model and three readers

    conn = db.connect(db_copy)
    try:
        changed = answer_again(conn, read_study)
    finally:
        conn.close()
    admin.keyboard.press("r")  # Streamlit's rerun key, as the page's hint says
    admin.get_by_text(UPDATING).wait_for()  # the older tables are on screen meanwhile
    wait_settled(admin)  # no click, no key: the page refreshes itself as tables come in

    after = confusion_on_page(admin)
    np.testing.assert_array_equal(
        after[changed], confusion_in_database(db_copy, read_study, changed)
    )
    assert not np.array_equal(after[changed], before[changed]), "the changed answer is not shown"
    for name in set(before) - {changed}:
        np.testing.assert_array_equal(after[name], before[name], err_msg=name)

    # Live: the analysis fragment re-reads every 15 s, and its look for finished tables then runs
    # inside that fragment's own rerun, not a page run.
    admin.get_by_text("Live: re-read the database every 15 s").click()
    wait_settled(admin)
    conn = db.connect(db_copy)
    try:
        assert answer_again(conn, read_study) == changed  # the same read, moved on again
    finally:
        conn.close()
    admin.get_by_text(UPDATING).wait_for(timeout=60_000)  # no key this time
    wait_settled(admin)
    live = confusion_on_page(admin)
    expected = confusion_in_database(db_copy, read_study, changed)
    np.testing.assert_array_equal(live[changed], expected)
    assert not np.array_equal(live[changed], after[changed]), "the live read is not shown"
