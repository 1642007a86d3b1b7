"""Repeat reads end to end with AppTest on a real database file: an admin creates a study with
"Repeat N cases per reader" on the study page and adds a reader; the reader reads through the
reading page with the keys (type, then Enter) and meets the repeats spaced apart under display
IDs of their own, looking like any case; the repeats are stored apart, the analysis page shows
the intra-reader kappa of an independent computation, and the MRMC inputs are unchanged."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

import db
import db.repeats
from core.data.labels import CLASSES
from core.reader_study import mrmc_inputs
from core.reader_study.study_data import load_study_data
from tests.dashboard.reader_study_helpers import (
    answer,
    by_label,
    current_case,
    current_position,
    progress,
    session,
    settled,
    sign_in_admin,
    sign_in_reader,
)

pytestmark = pytest.mark.timeout(900)
N_CASES, N_REPEATS = 14, 3


@pytest.fixture
def env(app_env):
    return app_env


def _create_study_with_repeats(name: str) -> tuple[int, str]:
    """The admin's path: the create form with repeats, then one reader; return (study, code)."""
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception, admin.exception
    by_label(admin.text_input, "Study name").input(name)
    by_label(admin.radio, "Cases").set_value("Stratified random sample")
    by_label(admin.number_input, "Sample size N").set_value(N_CASES)
    by_label(admin.number_input, "Repeat N cases per reader").set_value(N_REPEATS)
    by_label(admin.button, "Create study").click()
    admin.run()
    assert not admin.error, [e.value for e in admin.error]
    assert any(f"{N_REPEATS} repeat cases per reader" in m.value for m in admin.markdown)
    by_label(
        admin.text_input, "Reader's display name (readers never see each other's names)"
    ).input("Dr Again")
    by_label(admin.button, "Add reader").click()
    admin.run()
    assert not admin.error, [e.value for e in admin.error]
    code = admin.code[0].value
    conn = db.connect()
    try:
        studies = db.studies_frame(conn)
    finally:
        conn.close()
    return int(studies.loc[studies["name"] == name, "study_id"].item()), code


def _heading(at) -> tuple[str, int, int]:
    """(display ID, position, number of cases) of the case on the reading desk."""
    return current_case(at)["display_id"], current_position(at), progress(at)[1]


def _case_of(conn, study_id: int, reader_id: int, display_id: str) -> tuple[str, bool]:
    """(case_id, is a repeat) behind a display ID the page showed: the test's own lookup."""
    repeat = db.repeats.repeat_entry(conn, study_id, reader_id, display_id)
    if repeat is not None:
        return repeat["case_id"], True
    cases = db.cases_frame(conn)
    return cases.loc[cases["display_id"] == display_id, "case_id"].item(), False


def test_a_study_with_repeats_is_read_and_analysed_through_the_pages(env):
    study_id, code = _create_study_with_repeats("Repeats flow")
    conn = db.connect()
    try:
        reader_id = int(db.readers_frame(conn, study_id)["reader_id"].item())
        truth = dict(zip(*db.cases_frame(conn)[["case_id", "label"]].T.to_numpy(), strict=True))
    finally:
        conn.close()

    at = sign_in_reader(session(), code)
    shown: list[tuple[int, str, str, bool]] = []  # step, display ID, case, repeat
    first_label: dict[str, str] = {}
    for _ in range(N_CASES + N_REPEATS):
        display_id, step, total = _heading(at)
        assert total == N_CASES + N_REPEATS, "the repeats count in the reader's progress"
        assert step == current_position(at) == len(shown) + 1, "Enter moves on to the next"
        conn = db.connect()
        try:
            case_id, repeat = _case_of(conn, study_id, reader_id, display_id)
        finally:
            conn.close()
        shown.append((step, display_id, case_id, repeat))
        label = truth[case_id]
        if repeat and len([s for s in shown if s[3]]) == 1:  # one repeat answered differently
            label = CLASSES[(CLASSES.index(first_label[case_id]) + 1) % len(CLASSES)]
        first_label.setdefault(case_id, label)
        answer(at, label)  # the two keystrokes: type (default certainty), then Enter
        assert not at.exception and not at.error, [e.value for e in at.error]
    assert progress(at) == (N_CASES + N_REPEATS,) * 2

    repeats = [s for s in shown if s[3]]
    assert len(repeats) == N_REPEATS
    for step, display_id, case_id, _ in repeats:
        first = next(s for s in shown if s[2] == case_id and not s[3])
        assert step - first[0] >= db.repeats.MIN_GAP, "the repeat is spaced apart"
        assert display_id != first[1], "and carries another display ID"
    conn = db.connect()
    try:
        own_ids = set(db.cases_frame(conn)["display_id"])
        reads = db.reads_frame(conn, study_id)
        stored = db.repeats.repeat_reads_frame(conn, study_id)
        reader_progress = db.reader_progress_frame(conn, study_id)
        data = load_study_data(conn, study_id)
    finally:
        conn.close()
    assert not {r[1] for r in repeats} & own_ids, "a repeat's ID is no case's own ID"
    assert {len(r[1]) for r in repeats} == {len(s[1]) for s in shown if not s[3]}, "same look"

    # stored apart: the reads table holds each case once, the repeats their own table
    assert len(reads) == N_CASES and reads["case_id"].is_unique
    assert sorted(stored["display_id"]) == sorted(r[1] for r in repeats)
    assert set(stored["case_id"]) == {r[2] for r in repeats}
    total = N_CASES + N_REPEATS
    assert reader_progress[["n_cases", "n_read"]].to_numpy().tolist() == [[total, total]]

    # the MRMC inputs are the same with the repeats as without them (or mixed into the reads)
    without = dataclasses.replace(data, repeats=None)
    mixed = dataclasses.replace(data, reads=pd.concat([data.reads, data.repeats]))
    reference = mrmc_inputs.mrmc_reads(without, ["unaided"])
    for other in (data, mixed):
        pd.testing.assert_frame_equal(mrmc_inputs.mrmc_reads(other, ["unaided"]), reference)
        selection = mrmc_inputs.read_selection(other, ["unaided"])
        pd.testing.assert_frame_equal(selection.frame, reference)
        assert (selection.n_used, selection.n_total) == (N_CASES, N_CASES)
    assert (
        f"{N_REPEATS} repeat read(s)" in mrmc_inputs.read_selection(mixed, ["unaided"]).explanation
    )

    # the analysis page shows intra-reader kappa equal to an independent computation
    firsts = reads.set_index("case_id").loc[stored["case_id"], "label"].tolist()
    expected = cohen_kappa_score(firsts, stored["label"].tolist(), labels=list(CLASSES))
    admin = sign_in_admin(session())
    admin.session_state["admin_study"] = study_id
    settled(admin.switch_page("../pages/study_analysis.py").run())
    assert not admin.exception, admin.exception
    assert any("Intra-reader agreement" in h.value for h in admin.header)
    tables = [d.value for d in admin.dataframe if "Cohen's kappa" in d.value.columns]
    assert tables, "no intra-reader table on the analysis page"
    row = tables[0].iloc[0]
    assert row["repeated cases"] == N_REPEATS
    assert row["agreement %"] == pytest.approx(100 * (N_REPEATS - 1) / N_REPEATS)
    assert row["Cohen's kappa"] == pytest.approx(expected)
