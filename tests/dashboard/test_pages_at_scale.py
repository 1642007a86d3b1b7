"""Every researcher page at ten times the demo cohort (6,410 patients or more: the test cohort's
cases, images and out-of-fold predictions replicated, `cervixscope bench`'s scaled copy) with a
20-reader study over every case: each renders its expected content without an error. No timing
is asserted here; `cervixscope bench` measures them."""

from __future__ import annotations

import math

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import db
from core.bench import pages as bench_pages
from core.reader_study import heatmaps
from dashboard.auth import Identity
from tests.dashboard.reader_study_helpers import settled
from tests.dashboard.test_pages_eval import APP

DEMO_PATIENTS = 641
N_READERS = 20
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def scaled(eval_db, tmp_path_factory):
    conn = db.connect(eval_db.path)
    try:
        factor = math.ceil(10 * DEMO_PATIENTS / len(db.cases_frame(conn)))
    finally:
        conn.close()
    path = tmp_path_factory.mktemp("scaled") / "scaled.db"
    study_id = bench_pages.scaled_database(eval_db.path, path, factor, n_readers=N_READERS)
    conn = db.connect(path)
    try:
        n_cases = len(db.cases_frame(conn))
    finally:
        conn.close()
    assert n_cases >= 10 * DEMO_PATIENTS
    return path, study_id, n_cases


@pytest.fixture
def scaled_env(scaled, eval_db, monkeypatch):
    # the loaders' caches are per process and keyed on run and study versions, not on the
    # database file: the other modules' databases must not see this one's tables
    st.cache_data.clear()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(scaled[0]))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(eval_db.workdir))
    yield scaled
    st.cache_data.clear()
    # the Grad-CAM worker this module's case browser started knows the other database: stop it,
    # and forget its outcome, so the next module's pages start their own
    for worker in heatmaps._BATCHES.values():
        worker.kill()
        worker.wait()
    heatmaps._BATCHES.clear()
    heatmaps._FAILED.clear()


def _open(page: str, **state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    at.switch_page(f"../pages/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_overview_counts_every_case(scaled_env):
    _, _, n_cases = scaled_env
    at = _open("overview")
    assert {m.label: m.value for m in at.metric}["Patients (cases)"] == str(n_cases)


def test_cv_results_show_metrics_of_every_case(scaled_env):
    at = _open("cv_results")
    assert any({"scope", "ci_low"} <= set(d.value.columns) for d in at.dataframe)


def test_the_case_browser_sends_one_page_of_cases(scaled_env):
    _, _, n_cases = scaled_env
    at = _open("case_browser")
    table = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert len(table) == 100 and len(at.selectbox(key="case_pick").options) == 100
    assert any(f"Cases 1-100 of {n_cases:,} matching" in c.value for c in at.caption)
    at.number_input(key="f_page").set_value(3).run()
    table = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert any(f"Cases 201-300 of {n_cases:,}" in c.value for c in at.caption)
    wanted = table["case_id"].iloc[5]
    at.text_input(key="f_case_text").input(wanted).run()
    table = next(d.value for d in at.dataframe if "predicted" in d.value.columns)
    assert table["case_id"].tolist() == [wanted] and at.number_input(key="f_page").value == 1


@pytest.mark.parametrize("page", ["run_cv", "report"])
def test_page_renders(scaled_env, page):
    assert _open(page).title[0].value


def test_study_admin_shows_the_twenty_readers(scaled_env):
    _, study_id, n_cases = scaled_env
    at = _open("study_admin", admin_study=study_id)
    assert any(f"{n_cases} cases" in m.value and f"{N_READERS} readers" in m.value
               for m in at.markdown)  # fmt: skip
    progress = next(d.value for d in at.dataframe if "fraction" in d.value.columns)
    assert len(progress) == N_READERS and (progress["fraction"] == 1).all()


def test_reader_analysis_of_twenty_readers(scaled_env):
    _, study_id, _ = scaled_env
    at = settled(_open("study_analysis", admin_study=study_id))
    assert at.title[0].value == "Reader analysis"
    kappas = [d.value for d in at.dataframe if "kappa" in " ".join(map(str, d.value.columns))]
    assert kappas, "the agreement tables are drawn"
