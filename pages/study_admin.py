"""Studies and readers: create a blinded reader study, add readers, watch progress, close or
reopen it, revoke or reissue access codes, write the reader instructions, move reads."""

import functools
import tempfile
from pathlib import Path

import streamlit as st

import db
import db.repeats
from core.reader_study.model_runs import run_choices
from core.reader_study.sampling import (
    RUN_COHORT,
    cases_in_cohorts,
    default_cohorts,
    stratified_sample,
)
from dashboard import auth, safe_text, study_panels, widgets
from dashboard.power_planner import power_planner
from dashboard.store import LIBRARY_ERRORS, connection, errors_shown
from dashboard.study_panels import SLICE_OPTIONS

auth.require_role("admin")
st.title("Studies and readers")

with errors_shown(), connection() as conn:  # e.g. a broken database path: one line, no traceback
    cases = db.cases_frame(conn)
    run_names = run_choices(conn)
    studies = db.studies_frame(conn)

with st.expander("Create a study", expanded=studies.empty), st.form("create_study"):
    name = st.text_input("Study name")
    cohorts = st.multiselect(
        "Cohorts to draw the cases from",
        [RUN_COHORT, *sorted(cases["cohort"].unique())],
        default=[RUN_COHORT],
        help="A case is its cohort and patient ID. By default the study reads the model run's "
        "own cohort (the default cohort without a run): an external validation cohort is drawn "
        "only when you pick it.",
    )
    scope = st.radio("Cases", ["All cases", "Stratified random sample"], horizontal=True)
    n = st.number_input("Sample size N", 3, max(len(cases), 3), min(100, max(len(cases), 3)))
    seed = st.number_input("Seed (case sample and reading orders)", 0, 2**31 - 1, 0)
    aided = st.checkbox("Add an AI-aided second read after a washout")
    run_id = st.selectbox(
        "Model run whose out-of-fold probabilities are shown (and compared)",
        [None, *run_names],
        format_func=lambda r: "none" if r is None else run_names[r],
    )
    washout = st.number_input("Washout days between the two reads", 0, 365, 28)
    slices = st.radio(
        "Readers see",
        list(SLICE_OPTIONS),
        format_func=SLICE_OPTIONS.get,
        horizontal=True,
        help="The slices the model used (the lesion's), or every slice of the case's series with "
        "those marked, as a radiologist reads it. Recorded with the study's design.",
    )
    localise = st.checkbox(
        "Readers mark the lesion (localisation: LROC and wAFROC analysis)",
        help="A click on the slice marks where the reader sees the lesion, a drag a box. The "
        "reference ROI, the lesion crop and the Grad-CAM picture are then never shown to readers.",
    )
    radius = st.number_input(
        "Acceptance radius (mm) for a mark outside the reference ROI",
        0.0,
        100.0,
        0.0,
        step=0.5,
        help="0: a mark is a hit only inside the reference ROI of its slice.",
    )
    repeats = st.number_input(
        "Repeat N cases per reader",
        0,
        max(len(cases), 0),
        0,
        help="Each reader sees N of their cases a second time, later and under another ID, "
        "for intra-reader agreement; these reads stay out of the MRMC analysis.",
    )
    if st.form_submit_button("Create study", type="primary"):
        try:
            if not name.strip():
                raise ValueError("give the study a name")
            if aided and run_id is None:
                raise ValueError("the AI-aided arm needs a model run to show")
            with connection() as conn:
                chosen = [c for c in cohorts if c != RUN_COHORT]
                if RUN_COHORT in cohorts:
                    chosen += default_cohorts(conn, run_id)
            pool = cases_in_cohorts(cases, chosen)
            ids = (
                pool["case_id"].tolist()
                if scope == "All cases"
                else stratified_sample(pool, int(n), seed=int(seed))
            )
            if repeats > len(ids):
                raise ValueError(f"{repeats} repeat cases per reader, but the study has {len(ids)}")
            with connection() as conn:
                study_id = db.create_study(
                    conn,
                    name=name.strip(),
                    case_ids=ids,
                    arms=("unaided", "aided") if aided else ("unaided",),
                    order_seed=int(seed),
                    model_run_id=run_id,
                    washout_days=int(washout) if aided else 0,
                    cohorts=chosen,
                    slices=slices,
                    localise=localise,
                    hit_radius_mm=float(radius),
                )
                if repeats:
                    db.repeats.set_repeat_cases(conn, study_id, int(repeats))
        except LIBRARY_ERRORS as exc:
            st.error(str(exc))
        else:
            st.session_state["admin_study"] = study_id
            st.success(
                f"Study {study_id} created with {len(ids)} cases from cohort(s) "
                f"{', '.join(sorted(set(chosen)))}."
            )
            with connection() as conn:
                studies = db.studies_frame(conn)

if studies.empty:
    st.info("No study yet: create one above (or run `cervixscope demo-study`).")
    st.stop()

study_id = widgets.study_picker(studies)
study = study_panels.details_panel(study_id, run_names)
study_panels.status_controls(study)

st.subheader("Readers")
with st.form("add_reader", clear_on_submit=True):
    reader_name = st.text_input("Reader's display name (readers never see each other's names)")
    if st.form_submit_button("Add reader"):
        try:
            with connection() as conn:
                new_reader, code = db.add_reader(conn, study_id, reader_name.strip())
                db.repeats.plan_study_repeats(conn, study_id, seed=int(study["order_seed"]))
        except LIBRARY_ERRORS as exc:
            st.error(str(exc))
        else:
            auth.audit("reader_added", study_id=study_id, reader_id=new_reader)
            shown = safe_text.plain(reader_name.strip())
            st.success(f"Reader {shown} added. Their access code, shown only now:")
            st.code(code, language=None)
            st.caption("Only a hash is stored: copy the code and give it to the reader now.")

study_panels.code_controls(study_id)
study_panels.instructions_editor(study)
study_panels.security_panel(study_id)
study_panels.refused_answers_panel(study_id)

st.subheader("Reads as CSV")
export_col, import_col = st.columns(2)
with export_col:
    st.download_button(
        "Download reads CSV",
        functools.partial(study_panels.reads_csv_bytes, study_id),  # written when clicked
        f"study-{study_id}-reads.csv",
        "text/csv",
        on_click=auth.audit,
        args=("reads_exported",),
        kwargs={"study_id": study_id},
    )
with import_col:
    upload = st.file_uploader("Import reads CSV (same columns as the export)", type="csv")
    if upload is not None and st.button("Import"):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "reads.csv"
            path.write_bytes(upload.getvalue())
            try:
                with connection() as conn:
                    count = db.import_reads_csv(conn, study_id, path)
            except db.ImportValidationError as exc:
                auth.audit("reads_import_refused", study_id=study_id,
                           detail=f"{len(exc.problems)} problem(s)")  # fmt: skip
                st.error(f"Nothing was imported: {len(exc.problems)} problem(s).")
                st.code("\n".join(exc.problems[:50]), language=None)
            except LIBRARY_ERRORS as exc:
                st.error(str(exc))
            else:
                auth.audit("reads_imported", study_id=study_id, detail=f"{count} reads")
                st.success(f"Imported {count} reads.")

power_planner(study_id)
