"""The power planner on the study page (AppTest, real database file): filled from the selected
pilot study (3 readers, unaided and aided reads), the power and the cases it shows are those
``core.statistics.power`` computes from that pilot's variance components, for the default design
and after the researcher changes readers, cases and the analysis."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import db
from core.data.ingest import ingest_folder
from core.data.labels import CLASSES
from core.reader_study.mrmc_inputs import pilot_components
from core.reader_study.study_data import load_study_data
from core.statistics.power import cases_for_power, power_given_jk
from dashboard import power_planner as planner
from tests.dashboard.reader_study_helpers import ADMIN_SECRET, session, sign_in_admin

pytestmark = pytest.mark.timeout(600)
N_CASES, READERS = 24, ("Pilot A", "Pilot B", "Pilot C")


@pytest.fixture(scope="module")
def pilot_db(small_cohort_dir, tmp_path_factory):
    """A pilot study: every reader read every case unaided and aided (aided a little better)."""
    path = tmp_path_factory.mktemp("planner") / "pilot.db"
    conn = db.connect(path)
    try:
        ingest_folder(small_cohort_dir, conn=conn, progress=False)
        cases = db.cases_frame(conn).sort_values("case_id").head(N_CASES)
        run_id = db.create_run(
            conn, model="cnn", mode="features", config={}, seed=0, data_hash=None,
            device="cpu", weights="none", code_version=None, packages=None,
        )  # fmt: skip
        db.save_predictions(
            conn, run_id, 0, [{"case_id": c, "p_SCC": 0.5, "p_AC": 0.3, "p_ASC": 0.2}
                              for c in cases["case_id"]],
        )  # fmt: skip
        study_id = db.create_study(
            conn, name="Pilot", case_ids=cases["case_id"], arms=("unaided", "aided"),
            model_run_id=run_id,
        )  # fmt: skip
        rng = np.random.default_rng(7)
        truth = np.array([CLASSES.index(label) for label in cases["label"]])
        for name in READERS:
            reader_id, _ = db.add_reader(conn, study_id, name, simulated=True)
            for arm, signal in (("unaided", 1.0), ("aided", 1.6)):
                scores = rng.normal(size=(len(truth), len(CLASSES)))
                scores[np.arange(len(truth)), truth] += signal
                probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
                for case_id, p in zip(cases["case_id"], probs, strict=True):
                    db.submit_read(
                        conn, study_id=study_id, reader_id=reader_id, case_id=case_id, arm=arm,
                        label=CLASSES[int(np.argmax(p))], confidences=dict(zip(CLASSES, p, strict=True)),
                        shown_at=None,
                    )  # fmt: skip
    finally:
        conn.close()
    return path, study_id


def test_the_planner_shows_the_power_core_computes_for_the_pilot(pilot_db, monkeypatch):
    path, study_id = pilot_db
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    conn = db.connect(path)
    try:
        pilot = pilot_components(load_study_data(conn, study_id), fom="auc_macro")
    finally:
        conn.close()

    admin = sign_in_admin(session())
    admin.session_state["admin_study"] = study_id
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception, admin.exception
    assert any(f"Filled from study {study_id} (3 readers" in c.value for c in admin.caption)

    def shown_power() -> str:
        (metric,) = [m for m in admin.metric if m.label == "Power"]
        return metric.value

    def expect(readers: int, cases: int, analysis: str, effect: float) -> None:
        options = {"effect_size": effect, "analysis": analysis}
        power = power_given_jk(pilot, n_readers=readers, n_cases=cases, **options).power
        assert shown_power() == f"{power:.3f}", (readers, cases, analysis)
        try:
            needed = cases_for_power(pilot, n_readers=readers, target=0.8, **options).n_cases
        except ValueError as exc:  # too small an effect: the page says so in one line
            assert [e.value for e in admin.error] == [str(exc)]
            return
        text = f"Cases needed for power 0.80 with {readers} readers: **{needed}**."
        assert any(m.value == text for m in admin.markdown), text

    expect(10, 150, "random", pilot.effect_size)  # the starting design, the pilot's effect
    admin.number_input(key="planner_effect").set_value(0.08)
    admin.number_input(key="planner_j").set_value(6)
    admin.number_input(key="planner_k_new").set_value(80)
    admin.radio(key="planner_analysis").set_value("fixed_readers")
    admin.run()
    assert not admin.exception and not admin.error, [e.value for e in admin.error]
    expect(6, 80, "fixed_readers", 0.08)


def test_a_one_arm_study_is_no_pilot_and_its_reads_are_not_read(pilot_db, tmp_path, monkeypatch):
    source, pilot_id = pilot_db
    path = tmp_path / "one_arm.db"
    shutil.copy(source, path)
    conn = db.connect(path)
    try:
        cases = db.get_study(conn, pilot_id)["case_ids"]
        study_id = db.create_study(conn, name="Unaided only", case_ids=cases, arms=("unaided",))
        reader_id, _ = db.add_reader(conn, study_id, "Reader", simulated=True)
        db.submit_read(
            conn, study_id=study_id, reader_id=reader_id, case_id=cases[0], arm="unaided",
            label="SCC", confidences={"SCC": 0.8, "AC": 0.1, "ASC": 0.1}, shown_at=None,
        )  # fmt: skip
    finally:
        conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    loaded = []
    monkeypatch.setattr(
        planner, "load_study_data", lambda *a: loaded.append(a) or load_study_data(*a)
    )

    admin = sign_in_admin(session())
    admin.session_state["admin_study"] = study_id
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception, admin.exception
    reason = f"Study {study_id} cannot serve as a pilot yet (a pilot needs reads in both the"
    assert any(c.value.startswith(reason) for c in admin.caption), [c.value for c in admin.caption]
    assert loaded == []  # the study's arms say so: none of its reads was read
