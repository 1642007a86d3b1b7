"""Cross-validation results: metrics with 95% CIs, Table 1, ROC curves, confusion matrices, folds."""

import streamlit as st

from dashboard import auth, loaders, widgets

auth.require_role("admin")
st.title("Cross-validation results")

runs = widgets.finished_runs_or_stop()

chosen = widgets.run_picker(runs, key="cv_runs")
if not chosen:
    st.info("Choose one or more runs above.")
    st.stop()
key, version = tuple(sorted(chosen)), loaders.runs_version(runs, chosen)
labels = loaders.run_labels(runs[runs["run_id"].isin(chosen)])
try:
    tables = loaders.load_metric_tables(key, labels, version)
    figs = loaders.load_figures(key, labels, version)
except Exception as exc:
    st.error(str(exc))
    st.stop()

st.subheader("Table 1: models by metric (95% CI)")
average = st.radio("Average over classes", loaders.AVERAGES, horizontal=True, key="cv_average")
st.dataframe(loaders.table_one(tables, average=average), key="table_one")
st.caption(
    "Accuracy is overall (correct / all cases); AUC CIs per class from DeLong, others bootstrap."
)

with st.expander("Every metric per class, macro and weighted"):
    for tab, name in zip(st.tabs(list(labels.values())), labels.values(), strict=True):
        with tab:
            widgets.metrics_table(tables, name)

st.subheader("ROC curves")
st.caption("Click a point (or box-select) to list the cases called positive at that threshold.")
roc_event = st.plotly_chart(
    figs["roc"], on_select="rerun", selection_mode=("points", "box"), key="roc_chart"
)

st.subheader("Confusion matrices")
st.caption("Click a cell to list its cases.")
cm_events = []
for run_id in labels:
    pairs = zip(st.columns(2), ("counts", "share"), figs["confusion"][run_id], strict=True)
    for col, kind, fig in pairs:
        with col:
            cm_events.append(st.plotly_chart(fig, on_select="rerun", key=f"cm_{kind}_{run_id}"))

widgets.selected_cases(loaders.load_predictions(key, version), cm_events, roc_event)

st.subheader("Per-fold metrics (macro; accuracy overall)")
st.dataframe(
    figs["fold_summary"],
    hide_index=True,
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "sd")},
    key="fold_summary",
)
st.plotly_chart(figs["folds"], key="fold_chart")
