"""Annotate lesions: the signed-in annotator (or the admin) marks each case's lesion with boxes and
polygons; the admin also manages annotators, compares their marks, chooses whose marks ingestion
uses, and moves marks in and out as DICOM SEG or NIfTI."""

import streamlit as st

import db
from core.annotation import marks as marks_lib
from dashboard import annotation_desk, annotation_panels, auth, safe_text
from dashboard.store import connection, errors_shown

me = auth.require_role("admin", "annotator")
author = annotation_desk.author_of(me)
st.title("Annotate lesions")

with errors_shown(), connection() as conn:
    cases = db.cases_frame(conn).sort_values("display_id")
if cases.empty:
    st.info("No case is in the database yet: ingest a folder first (`cervixscope ingest DIR`).")
    st.stop()
cohorts = sorted(cases["cohort"].unique())
cohort = st.selectbox("Cohort", cohorts, key="annotate_cohort") if len(cohorts) > 1 else cohorts[0]
worklist = cases.loc[cases["cohort"] == cohort, ["case_id", "display_id"]].reset_index(drop=True)
display_ids = worklist["display_id"].tolist()

wanted = st.query_params.get(annotation_desk.CASE_PARAM)
position = display_ids.index(wanted) if wanted in display_ids else 0
case_id, display_id = worklist.loc[position, "case_id"], display_ids[position]

move = annotation_desk.handle_save(author, case_id, display_id)
with errors_shown(), connection() as conn:
    marked = marks_lib.marked_cases(conn, cohort, author.name)
if move:
    position = marks_lib.next_position([c in marked for c in worklist["case_id"]], position, move)
    if display_ids[position] != display_id:
        st.query_params[annotation_desk.CASE_PARAM] = display_ids[position]
        st.rerun()
if st.query_params.get(annotation_desk.CASE_PARAM) != display_id:
    st.query_params[annotation_desk.CASE_PARAM] = display_id  # a reload comes back here

st.subheader(f"Case {safe_text.plain(display_id)} · {position + 1} of {len(worklist)}")
st.caption(
    f"Marking as {safe_text.plain(author.name)} · {len(marked)} of {len(worklist)} cases "
    "of this cohort marked by you"
)
with errors_shown(), connection() as conn:
    slices = marks_lib.case_slices(conn, case_id)
if isinstance(slices, str):
    st.warning(slices)
else:
    annotation_desk.annotation_view(author, case_id, display_id, slices)

if me.role == "admin":
    annotation_panels.admin_panels(cohort, case_id, display_id, slices)
