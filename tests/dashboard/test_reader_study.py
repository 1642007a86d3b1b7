"""The blinded reader study end to end, with AppTest on a real database file.

An admin signs in on the sign-in page, creates a study and two readers; each reader signs in
with the code shown once, reads, changes an answer, leaves and resumes at the first unread case;
the analysis page shows confusion matrices equal to the reads in the database.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

import db
from core.data.labels import CLASSES
from core.reader_study import reading
from tests.dashboard.reader_study_helpers import (
    ADMIN_SECRET,
    answer,
    by_label,
    current_case,
    current_position,
    desk_header,
    go,
    progress,
    queue_answer,
    session,
    settled,
    sign_in_admin,
    sign_in_reader,
    sync,
)

pytestmark = pytest.mark.timeout(600)
N_CASES = 6  # stratified sample: small enough to read in a test


def _create_study_and_readers(name: str) -> tuple[int, dict[str, str]]:
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception, admin.exception
    by_label(admin.text_input, "Study name").input(name)
    by_label(admin.radio, "Cases").set_value("Stratified random sample")
    by_label(admin.number_input, "Sample size N").set_value(N_CASES)
    by_label(admin.button, "Create study").click()
    admin.run()
    assert not admin.error, [e.value for e in admin.error]
    assert any("created with 6 cases" in s.value for s in admin.success)
    codes = {}
    for reader in ("Dr Alpha", "Dr Beta"):
        by_label(
            admin.text_input, "Reader's display name (readers never see each other's names)"
        ).input(reader)
        by_label(admin.button, "Add reader").click()
        admin.run()
        assert len(admin.code) == 1, "the new code is shown exactly once, in one st.code"
        codes[reader] = admin.code[0].value
    admin.run()  # the next rerun no longer shows the last code
    assert not admin.code
    conn = db.connect()
    try:
        studies = db.studies_frame(conn)
    finally:
        conn.close()
    study_id = int(studies.loc[studies["name"] == name, "study_id"].iloc[0])
    return study_id, codes


def test_admin_creates_study_readers_read_change_resume_and_analysis_matches_db(app_env):
    study_id, codes = _create_study_and_readers("Flow study")
    conn = db.connect()
    try:
        study = db.get_study(conn, study_id)
        cases = db.cases_frame(conn).set_index("case_id")
        stored = conn.conn.execute("SELECT code_hash FROM readers").fetchall()
    finally:
        conn.close()
    assert study["n_cases"] == N_CASES and study["arms"] == ("unaided",)
    # stratified: every class of the cohort appears in the sample
    assert set(cases.loc[study["case_ids"], "label"]) == set(CLASSES)
    # only a hash is stored, never the code itself
    assert all(code.encode() not in bytes(h[0]) for code in codes.values() for h in stored)

    # Reader Alpha: two answers (the type's default certainty, then "certain"), then changes
    # the first one
    alpha = sign_in_reader(session(), codes["Dr Alpha"])
    assert not alpha.exception, alpha.exception
    assert current_position(alpha) == 1
    answer(alpha, "SCC")
    assert current_position(alpha) == 2
    answer(alpha, "AC", "certain")
    assert current_position(alpha) == 3
    assert progress(alpha) == (2, N_CASES)  # both stored and acknowledged
    # a new session (a closed browser) resumes at the first unread case and gets each stored
    # answer back exactly as entered
    alpha = sign_in_reader(session(), codes["Dr Alpha"])
    assert current_position(alpha) == 3
    go(alpha, 2)
    assert current_case(alpha)["answer"] == {"label": "AC", "certainty": "certain"}
    go(alpha, 1)
    assert current_case(alpha)["answer"] == {"label": "SCC", "certainty": "probable"}
    answer(alpha, "ASC", "unsure")
    assert current_position(alpha) == 1  # an update keeps the reader where they were
    assert len(desk_header(alpha)["acks"]) == 1

    # leave (a new session = a closed browser) and resume from the database
    again = sign_in_reader(session(), codes["Dr Alpha"])
    assert current_position(again) == 3
    answer(again, "SCC", "certain")

    # Reader Beta reads every case
    beta = sign_in_reader(session(), codes["Dr Beta"])
    picks = ["SCC", "AC", "ASC", "SCC", "SCC", "AC"]
    for label in picks:
        answer(beta, label, "certain")
    assert progress(beta) == (N_CASES, N_CASES)

    conn = db.connect()
    try:
        reads = db.reads_frame(conn, study_id)
        audit = db.audit_frame(conn, study_id)
        alpha_id = int(reads.loc[reads["display_name"] == "Dr Alpha", "reader_id"].iloc[0])
        alpha_work = db.worklist(conn, study_id, alpha_id, "unaided")
    finally:
        conn.close()
    alpha_reads = reads[reads["display_name"] == "Dr Alpha"]
    assert len(alpha_reads) == 3 and len(reads) == 3 + N_CASES
    first_case = alpha_work.iloc[0]["case_id"]
    changed = alpha_reads[alpha_reads["case_id"] == first_case].iloc[0]
    assert changed["label"] == "ASC" and changed["revision"] == 2
    assert changed[["c_SCC", "c_AC", "c_ASC"]].astype(float).tolist() == [0.3, 0.3, 0.4]
    history = audit[(audit["reader_id"] == alpha_id) & (audit["case_id"] == first_case)]
    assert history["action"].tolist() == ["insert", "update"]
    assert history.iloc[0]["new"]["label"] == "SCC"  # the first answer is kept
    assert (reads["duration_ms"] >= 0).all() and reads["shown_at"].notna().all()

    # The analysis page's confusion matrices equal the reads in the database
    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_analysis.py").run()
    assert not admin.exception, admin.exception
    by_label(admin.selectbox, "Study").set_value(study_id)
    settled(admin.run())
    shown = {}
    headings = [h.value for h in admin.subheader if h.value.endswith(" cases)")]
    tables = [
        d.value
        for d in admin.dataframe
        if list(d.value.columns) == [f"predicted {c}" for c in CLASSES]
    ]
    for heading, table in zip(headings, tables, strict=True):
        shown[heading.rsplit(" (", 1)[0]] = table.to_numpy()
    assert set(shown) == {"Dr Alpha", "Dr Beta"}
    for name, table in shown.items():
        mine = reads[reads["display_name"] == name]
        expected = confusion_matrix(mine["truth"], mine["label"], labels=list(CLASSES))
        assert table.tolist() == expected.tolist()
    assert shown["Dr Beta"].sum() == N_CASES and shown["Dr Alpha"].sum() == 3


def test_stratified_sample_keeps_class_shares():
    import pandas as pd

    from core.reader_study.sampling import stratified_sample

    cases = pd.DataFrame(
        {
            "case_id": [f"P{i:03d}" for i in range(641)],
            "label": ["SCC"] * 487 + ["AC"] * 116 + ["ASC"] * 38,
        }
    )
    chosen = stratified_sample(cases, 100, seed=3)
    counts = cases.set_index("case_id").loc[chosen, "label"].value_counts().to_dict()
    # 100 * (487, 116, 38) / 641 = (75.97, 18.10, 5.93): floors 75/18/5, the 2 left go to the
    # largest remainders (SCC .97, ASC .93)
    assert counts == {"SCC": 76, "AC": 18, "ASC": 6}
    assert chosen == stratified_sample(cases, 100, seed=3) != stratified_sample(cases, 100, seed=4)
    with pytest.raises(ValueError, match="sample size 2 is not allowed: choose between 3"):
        stratified_sample(cases, 2)


@pytest.fixture(scope="module")
def demo_study_db(tmp_path_factory):
    """The demo study on 641 label-only cases, with a model run whose predictions we know."""
    from core.reader_study.simulate import seed_demo_study

    rng = np.random.default_rng(11)
    y = rng.permutation(np.repeat([0, 1, 2], [487, 116, 38]))
    case_ids = [f"internal/DEMO-{i:04d}" for i in range(len(y))]
    probs = rng.dirichlet([1.0, 1.0, 1.0], len(y))
    probs[np.arange(len(y)), y] += rng.uniform(0.0, 1.5, len(y))  # informative, not perfect
    probs /= probs.sum(axis=1, keepdims=True)
    path = tmp_path_factory.mktemp("demo_study") / "demo.db"
    conn = db.connect(path)
    try:
        db.upsert_cases(
            conn, [{"case_id": c, "label": CLASSES[k]} for c, k in zip(case_ids, y, strict=True)]
        )
        run_id = db.create_run(
            conn, model="resnet18", mode="features", config={}, seed=0, data_hash=None,
            device="cpu", weights="none", code_version=None, packages=None,
        )  # fmt: skip
        db.save_predictions(
            conn,
            run_id,
            0,
            [
                {"case_id": c, **{f"p_{n}": p[j] for j, n in enumerate(CLASSES)}}
                for c, p in zip(case_ids, probs, strict=True)
            ],
        )
        study_id = seed_demo_study(conn, seed=0, model_run_id=run_id)
    finally:
        conn.close()
    return {"path": path, "study_id": study_id, "y": y, "probs": probs, "case_ids": case_ids}


def _analysis_page(path, monkeypatch):
    """The reader analysis on the database at ``path``, an admin signed in, every table in."""
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    at = sign_in_admin(session())
    settled(at.switch_page("../pages/study_analysis.py").run())
    assert not at.exception, at.exception
    return at


def test_analysis_page_on_demo_study_matches_independent_computations(demo_study_db, monkeypatch):
    from core.reader_study.analysis import display_table
    from core.statistics.mrmc import standalone_vs_readers

    at = _analysis_page(demo_study_db["path"], monkeypatch)
    assert any("SIMULATED DATA" in w.value for w in at.warning)

    # "Model (641 cases)" -> "Model"; "Expert 1 (simulated, 641 cases)" -> "Expert 1 (simulated)"
    headings = [
        re.sub(r", \d+ cases\)$", ")", re.sub(r" \(\d+ cases\)$", "", h.value))
        for h in at.subheader
        if h.value.endswith(" cases)")
    ]
    tables = [
        d.value
        for d in at.dataframe
        if list(d.value.columns) == [f"predicted {c}" for c in CLASSES]
    ]
    shown = dict(zip(headings, (t.to_numpy().tolist() for t in tables), strict=True))
    assert shown["Expert 1 (simulated)"] == [[477, 0, 10], [5, 101, 10], [8, 7, 23]]
    assert shown["Expert 2 (simulated)"] == [[480, 1, 6], [1, 108, 7], [3, 2, 33]]
    y, probs = demo_study_db["y"], demo_study_db["probs"]
    assert shown["Model"] == confusion_matrix(y, probs.argmax(axis=1), labels=[0, 1, 2]).tolist()

    conn = db.connect()
    try:
        reads = db.reads_frame(conn, demo_study_db["study_id"])
    finally:
        conn.close()
    mcnemar = next(d.value for d in at.dataframe if "model right, reader wrong" in d.value.columns)
    model_right = pd.Series(probs.argmax(axis=1) == y, index=demo_study_db["case_ids"])
    for row in mcnemar.itertuples(index=False):
        mine = reads[reads["display_name"] == row.reader].set_index("case_id")
        reader_right = mine["label"] == mine["truth"]
        m = model_right.loc[reader_right.index]
        assert row[4] == int((m & ~reader_right).sum()) and row[5] == int((~m & reader_right).sum())

    # the MRMC table equals core.statistics.mrmc run directly on the database's reads and predictions
    long = pd.DataFrame(
        {"reader": reads["display_name"], "modality": reads["arm"], "case": reads["case_id"],
         "truth": reads["truth"], "label": reads["label"],
         **{f"c_{c}": reads[f"c_{c}"] for c in CLASSES}}
    )  # fmt: skip
    model = pd.DataFrame(
        {
            "case": demo_study_db["case_ids"],
            **{f"c_{c}": probs[:, j] for j, c in enumerate(CLASSES)},
        }
    )
    expected = standalone_vs_readers(long, model, fom="auc_macro").to_frame()
    mrmc = next(d.value for d in at.dataframe if "readers - model" in set(d.value.get("row", [])))
    # shown to 3 places, p-values as text, undefined cells blank
    pd.testing.assert_frame_equal(mrmc.reset_index(drop=True), display_table(expected))
    assert not mrmc.isin(["None", "nan"]).any().any()
    assert any("Mean reader auc_macro" in m.value for m in at.markdown)

    # calibration of every rater, equal to core.statistics.calibration on normalised scores
    calibration = next(d.value for d in at.dataframe if "brier macro" in d.value.columns)
    assert set(calibration.index) == {"Model", "Expert 1 (simulated)", "Expert 2 (simulated)"}
    from core.statistics.calibration import calibration_scores

    brier = calibration_scores(y, probs)["brier"].mean()
    assert calibration.loc["Model", "brier macro"].startswith(f"{brier:.3f} (")

    times = next(d.value for d in at.dataframe if "median s/case" in d.value.columns)
    for row in times.itertuples(index=False):
        mine = reads[reads["display_name"] == row.rater]
        assert row[3] == pytest.approx(mine["duration_ms"].median() / 1000.0)


def test_aided_arm_gets_real_model_probabilities_and_gradcam(eval_db, tmp_path, monkeypatch):
    """On a database with real CV runs (tests/dashboard/conftest.py), the aided arm carries the
    run's out-of-fold probabilities and a Grad-CAM overlay from its saved final model."""
    import shutil

    path = tmp_path / "copy.db"
    shutil.copy(eval_db.path, path)  # the shared fixture database stays read-only
    home = tmp_path / "home"  # its own caches; the fixture's runs/<run_id>/ (fold models) in it
    home.mkdir()
    (home / "runs").symlink_to(eval_db.workdir / "runs")
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(home))
    run_id = eval_db.run_ids[-1]
    conn = db.connect(path)
    try:
        cases = db.cases_frame(conn)["case_id"].tolist()[:3]
        study_id = db.create_study(
            conn, name="Aided", case_ids=cases, arms=("unaided", "aided"), model_run_id=run_id
        )
        reader_id, _ = db.add_reader(conn, study_id, "Reader")
        predictions = db.predictions_frame(conn, [run_id]).set_index("case_id")
        work = db.worklist(conn, study_id, reader_id, "aided")
    finally:
        conn.close()
    case = reading.case_for_reader(study_id, reader_id, "aided", 1, db_path=path)
    expected = predictions.loc[work.iloc[0]["case_id"], [f"p_{c}" for c in CLASSES]]
    assert case.model_probabilities == pytest.approx(dict(zip(CLASSES, expected, strict=True)))
    assert case.gradcam_problem is None
    assert case.gradcam.shape == (*case.crop.shape, 3) and case.gradcam.dtype == np.uint8
    # the crop is the model's own crop from the ingestion cache
    assert case.crop.shape == (100, 100) and 0.0 <= case.crop.min() <= case.crop.max() <= 1.0
    unaided = reading.case_for_reader(study_id, reader_id, "unaided", 1, db_path=path)
    assert unaided.model_probabilities is None and unaided.gradcam is None


def test_mrmc_aided_vs_unaided_uses_only_fully_crossed_cases():
    from core.reader_study import mrmc_inputs
    from core.reader_study.study_data import SCORE_COLUMNS, StudyData
    from core.statistics.mrmc import or_analysis

    rng = np.random.default_rng(5)
    truth = np.array(CLASSES)[rng.permutation(np.repeat([0, 1, 2], [20, 12, 8]))]
    rows = []
    for r, reader in enumerate(["A", "B", "C"]):
        for arm, skill in (("unaided", 0.6), ("aided", 1.2)):
            for k, t in enumerate(truth):
                conf = rng.dirichlet([1.0, 1.0, 1.0])
                conf[CLASSES.index(t)] += skill * rng.uniform()
                conf /= conf.sum()
                rows.append(
                    {"reader": reader, "reader_id": r, "simulated": False, "case_id": f"K{k:02d}",
                     "arm": arm, "truth": t, "label": CLASSES[int(conf.argmax())],
                     **{f"c_{c}": conf[j] for j, c in enumerate(CLASSES)}, "seconds": 20.0}
                )  # fmt: skip
    reads = pd.DataFrame(rows)
    # reader C has not read case K00 in the aided arm yet: K00 must drop out of the analysis
    reads = reads[
        ~((reads["reader"] == "C") & (reads["arm"] == "aided") & (reads["case_id"] == "K00"))
    ]
    data = StudyData({"arms": ["unaided", "aided"]}, reads.reset_index(drop=True), None)
    result = mrmc_inputs.mrmc_aided_vs_unaided(data, fom="auc_macro")
    crossed = reads[reads["case_id"] != "K00"]
    long = crossed.rename(columns={"arm": "modality", "case_id": "case"})
    expected = or_analysis(
        long[["reader", "modality", "case", "truth", "label", *SCORE_COLUMNS]], fom="auc_macro"
    )
    assert result.n_cases == 39
    pd.testing.assert_frame_equal(result.to_frame(), expected.to_frame())
    assert result.modality_means["aided"] > result.modality_means["unaided"]
    text = mrmc_inputs.imrmc_text(data, "ASC")
    body = text.split("BEGIN DATA:")[1].strip().splitlines()
    assert sum(line.startswith("-1,") for line in body) == 39  # one truth row per crossed case
    assert len(body) == 39 + 3 * 2 * 39  # plus one row per reader, arm and case
    with pytest.raises(ValueError, match="no model run"):
        mrmc_inputs.mrmc_model_vs_readers(data, "unaided")
    one_reader = StudyData({"arms": ["unaided"]}, reads[reads["reader"] == "A"], None)
    with pytest.raises(ValueError, match="at least 2 readers"):
        mrmc_inputs.mrmc_aided_vs_unaided(one_reader)


def test_reading_time_is_the_browsers_measure_from_display_to_enter(app_env):
    """The browser measures how long the case was on screen and when Enter was pressed relative
    to the send: the stored times do not depend on the browser's clock or the save's delay."""
    conn = db.connect()
    try:
        case_ids = db.cases_frame(conn)["case_id"].tolist()[:3]
        study_id = db.create_study(conn, name="Timing", case_ids=case_ids)
        _, code = db.add_reader(conn, study_id, "Dr Timing")
    finally:
        conn.close()
    at = sign_in_reader(session(), code)
    queue_answer(at, "SCC")  # the emulated browser measured 1,500 ms on screen
    before = datetime.now(UTC)
    sync(at)
    conn = db.connect()
    try:
        read = db.reads_frame(conn, study_id).iloc[0]
    finally:
        conn.close()
    assert int(read["duration_ms"]) == 1500

    def parsed(text) -> datetime:
        value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    submitted, shown = parsed(read["submitted_at"]), parsed(read["shown_at"])
    assert submitted - shown == timedelta(milliseconds=1500)
    assert submitted <= before + timedelta(seconds=1)  # Enter, 10 ms before the send: not later


def test_with_many_readers_the_chosen_raters_are_drawn_and_the_export_keeps_all(
    demo_study_db, tmp_path, monkeypatch
):
    from core.bench.pages import add_simulated_readers
    from dashboard.study_analysis import DETAILED_RATERS

    path = tmp_path / "many.db"
    shutil.copy(demo_study_db["path"], path)
    conn = db.connect(path)
    add_simulated_readers(conn, demo_study_db["study_id"], 7)
    conn.close()
    at = _analysis_page(path, monkeypatch)
    (pick,) = [m for m in at.multiselect if m.label.startswith("Raters shown in detail")]
    assert len(pick.options) == 8  # the model and 7 readers
    assert len(pick.value) == DETAILED_RATERS
    drawn = [h.value for h in at.subheader if h.value.endswith(" cases)")]
    assert len(drawn) == DETAILED_RATERS
    last = pick.options[-1]
    settled(pick.set_value([*pick.value, last]).run())
    drawn = [h.value for h in at.subheader if h.value.endswith(" cases)")]
    assert len(drawn) == DETAILED_RATERS + 1 and drawn[-1].startswith(last.split(" (")[0])
    # the calibration table lists the raters drawn; every rater still reaches the tables that
    # list them all
    calibration = next(d.value for d in at.dataframe if "brier macro" in d.value.columns)
    assert len(calibration) == DETAILED_RATERS + 1 and last in calibration.index
    kappa = next(d.value for d in at.dataframe if "kappa" in " ".join(map(str, d.value.columns)))
    assert len(kappa) == 7 * 8 // 2
    # the CSV export holds every rater's confusion table and metrics, drawn or not
    from core.reader_study import exports
    from dashboard import study_analysis as sections

    conn = db.connect(path)
    data = sections.study_data(conn, demo_study_db["study_id"])
    conn.close()
    named = sections.rater_frames(data, data.arms[0])
    tables: dict = {}
    sections.confusion_and_metrics(named, tables)  # bare mode: the default raters are drawn
    text = exports.tables_csv({t: v() if callable(v) else v for t, v in tables.items()})
    titles = [line[2:] for line in text.splitlines() if line.startswith("# confusion ")]
    assert titles == [f"confusion {name}" for name in named]
    sections.calibration_section(named, tables)
    calibration = tables["calibration"]()
    assert set(calibration["rater"]) == set(named)  # not only the raters drawn
    own = tables[f"confusion {last}"]
    own = own() if callable(own) else own
    assert int(own.to_numpy().sum()) == len(named[last])


def test_the_analysis_opens_on_the_newest_study_with_reads(demo_study_db, tmp_path, monkeypatch):
    """`make demo` ends with a study nobody has read yet (for trying the workstation): the
    analysis opens on the one with reads instead, while the study admin opens on the newest."""
    path = tmp_path / "two_studies.db"
    shutil.copy(demo_study_db["path"], path)
    conn = db.connect(path)
    try:
        cases = db.get_study(conn, demo_study_db["study_id"])["case_ids"][:5]
        empty = db.create_study(conn, name="Nobody has read this", case_ids=cases)
    finally:
        conn.close()
    at = _analysis_page(path, monkeypatch)
    (picker,) = [s for s in at.selectbox if s.label == "Study"]
    assert picker.value == demo_study_db["study_id"]
    assert any(h.value.endswith(" cases)") for h in at.subheader)  # its tables, drawn

    admin = sign_in_admin(session())
    admin.switch_page("../pages/study_admin.py").run()
    assert not admin.exception, admin.exception
    (picker,) = [s for s in admin.selectbox if s.label == "Study"]
    assert picker.value == empty
