"""External validation in a real browser (issue 19): the results page of a real `streamlit run`
shows a run's internal CV beside its validation on the demo's second-scanner cohort."""

from __future__ import annotations

import pytest

import db
from core.data.demo_data import generate_external_cohort
from core.learning.validation import validate_folder
from tests.e2e.conftest import go_to, publish_screenshots, screenshot, sign_in_admin, wait_idle

pytestmark = pytest.mark.timeout(600)


def test_results_page_shows_internal_and_external_side_by_side(
    server, db_copy, e2e_db, new_page, tmp_path
):
    generate_external_cohort(tmp_path / "external")
    conn = db.connect(db_copy)
    try:
        result, checks = validate_folder(
            e2e_db.run_id, tmp_path / "external", conn=conn, runs_dir=e2e_db.path.parent / "runs"
        )
    finally:
        conn.close()
    page = new_page()
    sign_in_admin(page, server.url)
    go_to(page, "Cross-validation results")
    heading = page.get_by_role(
        "heading", name="Internal cross-validation versus external validation"
    )
    heading.scroll_into_view_if_needed()
    flagged = [c.check for c in checks if c.flagged]
    page.get_by_text(f"differs in {len(flagged)} acquisition check").wait_for()
    wait_idle(page)
    assert page.get_by_text(result.source).count() >= 1
    heading.evaluate("el => el.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(500)
    shot = screenshot(page, "external_validation")
    publish_screenshots(shot)
