"""The reading workstation with AppTest on a real database: a reload (a new session carrying only
the URL's session token) resumes at the same case; signed-out tokens and revoked codes are
refused; a closed study refuses a submit in the service itself; instructions come first and are
rendered as Markdown, never HTML; the answer's certainty gives every reader an ROC curve."""

from __future__ import annotations

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import db
import db.attempts
from core.data.labels import CLASSES
from core.reader_study import answers, reading
from core.statistics.metrics import roc_curve_ovr
from db.clock import now_iso
from tests.dashboard.reader_study_helpers import (
    APP,
    answer,
    by_label,
    current_position,
    desk_header,
    go,
    queue_answer,
    session,
    sign_in_admin,
    sign_in_reader,
    sync,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def env(app_env):
    return app_env


def _study(name: str, n: int = 5, **options) -> tuple[int, int, str]:
    conn = db.connect()
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()[:n]
        study_id = db.create_study(conn, name=name, case_ids=cases, **options)
        reader_id, code = db.add_reader(conn, study_id, "Dr Keys")
    finally:
        conn.close()
    return study_id, reader_id, code


def reload(at: AppTest) -> AppTest:
    """F5: a new browser session that keeps only the URL (and so its query parameters)."""
    fresh = AppTest.from_file(APP, default_timeout=120)
    for name, value in at.query_params.items():
        fresh.query_params[name] = value
    return fresh.run()


def test_a_reload_keeps_the_reader_signed_in_at_the_same_case(env):
    _, _, code = _study("Reload")
    at = sign_in_reader(session(), code)
    answer(at, "AC")
    go(at, 3)  # Next
    assert current_position(at) == 3 and at.query_params["at"] == "unaided:3"
    token = at.query_params["session"]
    assert code not in str(at.query_params) and len(token) >= 40  # the token, never the code
    again = reload(at)
    assert not again.exception, again.exception
    assert current_position(again) == 3, "the reload shows the same case"
    assert again.query_params["session"] == token
    # a URL without a case, or with one outside the worklist, resumes at the first unread case
    for at_param in (None, "unaided:99", "aided:1", "unaided:x"):
        fresh = AppTest.from_file(APP, default_timeout=120)
        fresh.query_params["session"] = token
        if at_param:
            fresh.query_params["at"] = at_param
        fresh.run()
        assert not fresh.exception and not fresh.error, at_param
        assert current_position(fresh) == 2, at_param


def test_an_admin_stays_signed_in_after_a_reload_until_signing_out(env):
    admin = sign_in_admin(session())
    assert any(t.value == "Overview" for t in admin.title)
    again = reload(admin)
    assert any(t.value == "Overview" for t in again.title)
    again.switch_page("../pages/sign_out.py").run()
    stale = AppTest.from_file(APP, default_timeout=120)
    stale.query_params["session"] = admin.query_params["session"]  # the old URL, after sign-out
    stale.run()
    assert by_label(stale.text_input, "Access code")  # back on the sign-in page
    assert not any(t.value == "Overview" for t in stale.title)


def test_a_revoked_code_ends_the_readers_session_and_is_refused(env):
    _, reader_id, code = _study("Revoke")
    at = sign_in_reader(session(), code)
    conn = db.connect()
    try:
        db.revoke_reader_code(conn, reader_id)
    finally:
        conn.close()
    at.run()  # the next interaction of the open tab
    assert by_label(at.text_input, "Access code"), "the live session was ended"
    assert "session" not in at.query_params
    assert not [h for h in at.subheader if "Case" in h.value]
    refused = sign_in_reader(session(), code)
    assert any("not valid" in e.value for e in refused.error)
    assert not reload(at).subheader


def test_a_closed_study_refuses_a_submit_in_the_service_and_says_so(env):
    study_id, reader_id, code = _study("Closing")
    at = sign_in_reader(session(), code)
    conn = db.connect()
    try:
        db.close_study(conn, study_id)
    finally:
        conn.close()
    with pytest.raises(db.StudyClosed, match="is closed"):
        reading.submit_answer(
            study_id, reader_id, "unaided", 1, "SCC", {"SCC": 1, "AC": 0, "ASC": 0}, now_iso()
        )
    attempt = queue_answer(at, "SCC")  # answered in the tab still open when it closed
    sync(at)
    assert any("is closed" in e.value for e in [*at.error, *at.info])
    header = desk_header(at)
    assert header["status"] == "stopped" and "is closed" in header["message"]
    assert header["refused"][0][0] == attempt["attempt"] and not header["cases"]
    conn = db.connect()
    try:  # refused, and kept for the admin with the answer and the reason
        kept = db.attempts.refused_answers_frame(conn, study_id)
    finally:
        conn.close()
    assert kept[["attempt_id", "label", "position"]].values.tolist() == [
        [attempt["attempt"], "SCC", 1]
    ]
    assert "is closed" in kept["reason"].iloc[0]
    again = sign_in_reader(session(), code)
    assert any("is closed" in i.value for i in again.info) and not again.subheader
    conn = db.connect()
    try:
        db.set_study_status(conn, study_id, "open")
        assert db.reader_reads_frame(conn, study_id, reader_id).empty
    finally:
        conn.close()
    reopened = sign_in_reader(session(), code)
    answer(reopened, "SCC")
    assert current_position(reopened) == 2


def test_instructions_come_first_as_markdown_without_html(env):
    study_id, _, code = _study("Instructions")
    conn = db.connect()
    try:
        db.set_study_instructions(
            conn, study_id, "## Before you start\n\nUse **keys**.<script>alert(1)</script>"
        )
    finally:
        conn.close()
    at = sign_in_reader(session(), code)
    shown = [m for m in at.markdown if "Before you start" in m.value]
    assert shown and not shown[0].proto.allow_html  # st.markdown shows HTML as text
    assert not at.subheader, "no case before the instructions"
    by_label(at.button, "Start reading").click()
    at.run()
    assert current_position(at) == 1


def test_certainty_levels_give_each_reader_an_roc_curve_with_operating_points():
    truth = np.array([0, 0, 0, 1, 1, 2, 2, 0, 1, 2])
    picks = [("SCC", "certain"), ("SCC", "probable"), ("AC", "unsure"), ("AC", "certain"),
             ("SCC", "unsure"), ("ASC", "probable"), ("ASC", "certain"), ("SCC", "probable"),
             ("AC", "probable"), ("AC", "unsure")]  # fmt: skip
    scores = np.array([[answers.confidences_for(*p)[c] for c in CLASSES] for p in picks]) / 100
    assert np.allclose(scores.sum(axis=1), 1.0)
    for k in range(len(CLASSES)):
        fpr, tpr, _ = roc_curve_ovr(truth, scores, k)
        inner = [(f, t) for f, t in zip(fpr, tpr, strict=True) if 0 < f < 1 or 0 < t < 1]
        assert len(inner) >= 2, f"class {CLASSES[k]}: {list(zip(fpr, tpr, strict=True))}"
    # and the default alone (type keys only) still gives one operating point per class
    defaults = np.array([[answers.confidences_for(CLASSES[t])[c] for c in CLASSES] for t in truth])
    assert len(np.unique(defaults[:, 0])) == 2
