"""Report export: one button, a zip with a self-contained HTML report and the CSVs behind it."""

import streamlit as st

from dashboard import auth, external, loaders, widgets
from dashboard.report import build_report
from db.clock import utc_now

auth.require_role("admin")
st.title("Report export")
st.caption(
    "The HTML file works offline (Plotly is embedded): Table 1, per-class metrics with 95% CIs, "
    "ROC curves, confusion matrices and per-fold metrics. The CSVs hold the predictions and "
    "every number in it."
)

runs = widgets.finished_runs_or_stop()

chosen = widgets.run_picker(runs, key="report_runs")
if not chosen:
    st.info("Choose one or more runs above.")
    st.stop()
version = loaders.runs_version(runs, chosen)
predictions = loaders.load_predictions(tuple(sorted(chosen)), version)
chosen_runs = runs[runs["run_id"].isin(chosen)]
missing = sorted(set(chosen) - set(predictions["run_id"]))
if missing:
    st.error(f"Run(s) {', '.join(missing)} have no predictions yet; choose finished runs.")
    st.stop()


def make_zip() -> bytes:
    validations = external.latest_validations(chosen)  # external validation beside internal CV
    return build_report(
        predictions, chosen_runs, cases=loaders.case_flags(), validations=validations
    ).to_zip()


stamp = utc_now().strftime("%Y%m%d-%H%M")
st.download_button(
    "Download report (HTML + CSV, zip)",
    data=make_zip,  # built on click, not on every rerun
    file_name=f"cervixscope-report-{stamp}.zip",
    mime="application/zip",
    type="primary",
    on_click="ignore",
    key="download_report",
)
st.dataframe(
    loaders.runs_overview(chosen_runs, loaders.case_counts()),
    hide_index=True,
    key="report_run_table",
)
