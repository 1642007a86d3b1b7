"""Overview: the cohort in the database and the cross-validation runs recorded so far."""

import streamlit as st

from dashboard import auth, loaders, widgets

auth.require_role("admin")
st.title("Overview")

try:
    cohort = loaders.load_cohort(loaders.cohort_version())
    runs = loaders.runs()
except Exception as exc:  # a broken or missing database: say so, no traceback
    st.error(str(exc))
    st.stop()

st.subheader("Cohort")
cases, images = cohort["cases"], cohort["images"]
if cases.empty:
    st.info(
        "No cohort is ingested yet: `cervixscope demo-data --out data/demo && "
        "cervixscope ingest data/demo`, or `make demo`."
    )
else:
    counts = loaders.cohort_counts(cases, images)
    cols = st.columns(4)
    cols[0].metric("Patients (cases)", len(cases))
    cols[1].metric("Images (slices)", len(images))
    cols[2].metric("Synthetic cases", int(cases["synthetic"].sum()))
    cols[3].metric("Ingestion warnings", len(cohort["issues"]))
    if cases["synthetic"].any():
        st.warning("This cohort is synthetic (generated demo data), not patient images.")
    st.dataframe(counts, hide_index=True, key="class_counts")
    sites = loaders.cohort_site_counts(cases)
    if len(sites) > 1 or (sites["site"] != "-").any():
        st.markdown("**Cohorts and sites**")
        st.dataframe(sites, hide_index=True, key="cohort_sites")
    if not cohort["issues"].empty:
        with st.expander(f"Ingestion warnings ({len(cohort['issues'])})"):
            st.dataframe(cohort["issues"], hide_index=True)

st.subheader("Runs")
if runs.empty:
    widgets.no_runs_message()
else:
    table = loaders.runs_overview(runs, loaders.case_counts())
    st.dataframe(table, hide_index=True, key="runs_table")
    st.caption(
        "weights_used: what the backbone really started from (`auto` falls back to random "
        "initialisation offline). auc_macro_95ci: case-level macro AUC of the out-of-fold "
        "predictions with its 95% bootstrap CI (patients resampled)."
    )
