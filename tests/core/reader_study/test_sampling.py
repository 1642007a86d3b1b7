"""Which cases a study reads: drawn only from the cohorts the admin picks, by default the model
run's own, so an external validation cohort is never sampled by accident."""

from __future__ import annotations

import pytest

import db
from core.reader_study.sampling import cases_in_cohorts, default_cohorts, stratified_sample

LABELS = ("SCC", "AC", "ASC")


@pytest.fixture
def two_cohorts(tmp_path):
    """An internal cohort with a run on it, and an external one reusing its patient IDs."""
    conn = db.connect(tmp_path / "s.db")
    for cohort, n in (("internal", 30), ("external", 12)):
        db.upsert_cases(
            conn,
            [{"patient_id": f"P{i:03d}", "cohort": cohort, "label": LABELS[i % 3]}
             for i in range(n)],
        )  # fmt: skip
    run_id = db.create_run(conn, model="cnn", mode="features", config={}, seed=0)
    db.save_predictions(
        conn, run_id, 0,
        [{"case_id": f"internal/P{i:03d}", "p_SCC": 0.5, "p_AC": 0.3, "p_ASC": 0.2}
         for i in range(30)],
    )  # fmt: skip
    yield conn, run_id
    conn.close()


def test_by_default_a_study_draws_from_the_model_runs_own_cohort(two_cohorts):
    conn, run_id = two_cohorts
    assert default_cohorts(conn, run_id) == ["internal"]
    assert default_cohorts(conn, None) == ["internal"]
    pool = cases_in_cohorts(db.cases_frame(conn), default_cohorts(conn, run_id))
    for seed in range(20):
        drawn = stratified_sample(pool, 12, seed=seed)
        assert len(drawn) == 12 and all(c.startswith("internal/") for c in drawn)


def test_a_study_draws_only_from_the_cohorts_chosen(two_cohorts):
    conn, _ = two_cohorts
    cases = db.cases_frame(conn)
    external = cases_in_cohorts(cases, ["external"])
    assert sorted(external["case_id"]) == [f"external/P{i:03d}" for i in range(12)]
    both = stratified_sample(cases_in_cohorts(cases, ["internal", "external"]), 42, seed=1)
    assert len(both) == 42  # every case of both
    with pytest.raises(ValueError, match="cohort.*nowhere.*hold no case; known: external"):
        cases_in_cohorts(cases, ["nowhere"])
    with pytest.raises(ValueError, match="at least one cohort"):
        cases_in_cohorts(cases, [])


def test_the_chosen_cohorts_are_recorded_and_a_case_outside_them_refused(two_cohorts):
    conn, _ = two_cohorts
    ids = ["internal/P000", "internal/P001", "internal/P002"]
    study_id = db.create_study(conn, name="s", case_ids=ids, cohorts=["internal"])
    assert db.get_study(conn, study_id)["cohorts"] == ("internal",)
    mixed = db.create_study(conn, name="m", case_ids=[*ids, "external/P000"])
    assert db.get_study(conn, mixed)["cohorts"] == ("external", "internal")
    with pytest.raises(ValueError, match="draws from cohort.*internal.*external/P001"):
        db.create_study(conn, name="x", case_ids=[*ids, "external/P001"], cohorts=["internal"])
    assert "x" not in set(db.studies_frame(conn)["name"])
