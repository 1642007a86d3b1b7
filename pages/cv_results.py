"""Cross-validation results: metrics with 95% CIs, Table 1, ROC curves, confusion matrices, folds."""

import pandas as pd
import streamlit as st

from core.statistics.metrics import ci_methods
from dashboard import auth, case_focus, external, loaders, selection, widgets

auth.require_role("admin")
st.title("Cross-validation results")

runs = widgets.finished_runs_or_stop()

case_focus.remember_default_runs(runs, key="cv_runs")  # the newest comparison, until changed
chosen = widgets.run_picker(runs, key="cv_runs")
if not chosen:
    st.info("Choose one or more runs above.")
    st.stop()
key, version = tuple(sorted(chosen)), loaders.runs_version(runs, chosen)
labels = loaders.run_labels(runs[runs["run_id"].isin(chosen)])
for kind, note in loaders.provenance_notes(runs[runs["run_id"].isin(chosen)], labels):
    (st.warning if kind == "warning" else st.caption)(note)
level = st.radio(
    "Level", loaders.LEVELS, format_func=lambda x: f"per {x}", horizontal=True, key="cv_level"
)
shown, missing = loaders.runs_with_predictions(key, labels, version, level=level)
if missing:
    st.warning(
        f"No per-{level} predictions for {', '.join(missing)} (runs made before they were "
        "stored): run them again to see them here."
    )
if not shown:
    st.stop()
try:
    tables = loaders.load_metric_tables(tuple(sorted(shown)), shown, version, level=level)
    figs = loaders.load_figures(tuple(sorted(shown)), shown, version, level=level)
except Exception as exc:
    st.error(str(exc))
    st.stop()
# Clicks list cases, so only the per-case charts are clickable.
select = {"on_select": "rerun"} if level == "case" else {}

st.subheader("Table 1: models by metric (95% CI)")
average = st.radio("Average over classes", loaders.AVERAGES, horizontal=True, key="cv_average")
st.dataframe(loaders.table_one(tables, average=average), key="table_one")
st.caption(
    f"Accuracy is overall (correct / all {level}s). "
    + ci_methods(grouped=level != "case", n_boot=loaders.N_BOOT)
)

with st.expander("Every metric per class, macro and weighted"):
    for tab, name in zip(st.tabs(list(shown.values())), shown.values(), strict=True):
        with tab:
            widgets.metrics_table(tables, name)

st.subheader("ROC curves")
if select:
    st.caption("Click a point (or box-select) to list the cases called positive at that threshold.")
predictions = loaders.load_predictions(key, version) if select else None
roc_col, roc_cases = st.columns([3, 2]) if select else (st.container(), None)
with roc_col:
    roc_event = st.plotly_chart(
        figs["roc"], **select, selection_mode=("points", "box"), key="roc_chart"
    )
if select:
    with roc_cases:  # beside the chart, not below every other one
        found = selection.cases_for_event(predictions, roc_event=roc_event)
        case_focus.cases_panel(found, key="roc_cases", title="Cases called positive")

st.subheader("Confusion matrices")
if select:
    st.caption("Click a cell to list its cases.")
cm_events = []
charts, cm_cases = st.columns([3, 2]) if select else (st.container(), None)
with charts:
    for run_id in shown:
        pairs = zip(st.columns(2), ("counts", "share"), figs["confusion"][run_id], strict=True)
        for col, kind, fig in pairs:
            with col:
                cm_events.append(st.plotly_chart(fig, **select, key=f"cm_{kind}_{run_id}"))
if select:
    with cm_cases:
        parts = [selection.cases_for_event(predictions, confusion_event=e) for e in cm_events]
        case_focus.cases_panel(pd.concat(parts, ignore_index=True), key="selected_case")

st.subheader("Per-fold metrics (macro; accuracy overall)")
if level != "case":
    st.caption("Per case at every level: a fold is a set of patients.")
st.dataframe(
    figs["fold_summary"],
    hide_index=True,
    column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("mean", "sd")},
    key="fold_summary",
)
st.plotly_chart(figs["folds"], key="fold_chart")
if level == "case":
    st.markdown("**Pooled versus per-fold (macro; accuracy overall)**")
    pooled = loaders.pooled_vs_folds(tables, figs["fold_summary"])
    st.dataframe(pooled, hide_index=True, key="pooled_vs_folds")
    st.caption(loaders.POOLED_VS_FOLDS)

st.subheader("Calibration: can the probabilities be read as probabilities?")
calibration = loaders.load_calibration(tuple(sorted(shown)), shown, version, level=level)
if "table" in calibration:
    st.dataframe(calibration["table"], key="calibration_table")
    st.caption(
        "Brier score and expected calibration error (ECE, 10 equal-width bins), one class "
        "against the rest, lower is better; 95% CIs from 1000 bootstrap resamples of patients."
    )
    st.plotly_chart(calibration["figure"], key="reliability_chart")

st.subheader("Training curves")
curves, curve_figure = loaders.load_training_curves(tuple(sorted(shown)), shown, version)
if curve_figure is None:
    st.info("No training curves: features-mode runs fit a logistic head, not epochs of a network.")
else:
    st.caption("Per fold: training loss (solid) and inner-validation loss (dashed) per epoch.")
    st.plotly_chart(curve_figure, key="training_curves")

repeats = loaders.repeat_runs(runs, chosen)
if not repeats.empty:
    st.subheader("Repeated cross-validation: spread across repeats")
    st.caption(
        "Each repeat is the whole k-fold again with the next fold seed; its metrics pool all its "
        "out-of-fold predictions (per case, macro; accuracy overall). Mean, SD and range across "
        "the repeats show how much of a result is the luck of one split."
    )
    ids = tuple(sorted(repeats["run_id"]))
    table = loaders.load_repeat_table(ids, loaders.runs_version(runs, ids))
    st.dataframe(
        table,
        hide_index=True,
        column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns[3:]},
        key="repeat_table",
    )

st.subheader("Internal cross-validation versus external validation")
ext_run = st.selectbox(
    "Run", external.validated_first(chosen), format_func=lambda r: labels.get(r, r), key="ext_run"
)
own_sites = external.internal_site_table(ext_run)
if not own_sites.empty:
    st.markdown("**Internal CV per site (out-of-fold, 95% CI resampling patients)**")
    st.dataframe(own_sites, hide_index=True, key="cv_sites")
with st.expander("Validate this run on an external cohort"):
    st.caption(
        "Ingests the folder (DICOM + manifest.csv) as its own cohort, compares its acquisition "
        "with the run's cohort, and applies the run's frozen models: the ensemble of its fold "
        "models (mean probability) or its final model. Cases the run saw are refused."
    )
    folder = st.text_input("External cohort folder", key="ext_folder")
    cohort = st.text_input("Cohort name", value="external", key="ext_cohort")
    model = st.radio("Model", external.VALIDATION_MODELS, horizontal=True, key="ext_model")
    if st.button("Run external validation", key="ext_validate"):
        with st.spinner("Validating on the external cohort…"):
            ok, text = external.run_validation(ext_run, folder, cohort, model)
        if ok:
            st.success(text.splitlines()[0])
        else:
            st.error(text)
try:
    done = external.validations(ext_run)
except Exception as exc:
    st.error(str(exc))
    st.stop()
if done.empty:
    st.info("No external validation of this run yet: `cervixscope validate --run RUN --data DIR`.")
    st.stop()
validation_id = st.selectbox(
    "Validation",
    done["validation_id"].tolist(),
    format_func=lambda v: external.validation_label(done, v),
    key="ext_validation",
)
try:
    side = external.load_side_by_side(ext_run, int(validation_id), str(validation_id))
except Exception as exc:
    st.error(str(exc))
    st.stop()
st.caption(f"External predictions by the {side['source']}.")
flagged = side["shift"][side["shift"]["differs"] == "yes"]
if not flagged.empty:
    st.warning(
        f"The external cohort differs in {len(flagged)} acquisition check(s): "
        + ", ".join(flagged["check"])
        + ". Read the external numbers with that in mind."
    )
st.dataframe(side["table_one"], key="ext_table_one")
st.caption(ci_methods(grouped=False, n_boot=loaders.N_BOOT))
st.plotly_chart(side["roc"], key="ext_roc")
for col, key in zip(st.columns(2), side["confusion"], strict=True):
    with col:
        st.plotly_chart(side["confusion"][key], key=f"ext_cm_{key}")
st.markdown("**Calibration (Brier, ECE; 95% CI)**")
st.dataframe(side["calibration"], key="ext_calibration")
st.plotly_chart(side["reliability"], key="ext_reliability")
st.markdown("**External cohort per site (95% CI)**")
st.dataframe(side["sites"], hide_index=True, key="ext_sites")
st.markdown("**Shift checks: external against the run's cohort**")
st.dataframe(side["shift"], hide_index=True, key="ext_shift")
