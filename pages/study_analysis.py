"""Reader analysis (researchers only): the model against each reader on the same cases, live."""

import pandas as pd
import streamlit as st

import db
from core.labels import CLASSES
from dashboard import auth, widgets
from dashboard import study_analysis as sa
from dashboard.figures import confusion_figure
from dashboard.store import connection, errors_shown

auth.require_role("admin")
st.title("Reader analysis")

with errors_shown(), connection() as conn:  # e.g. a broken database path: one line, no traceback
    studies = db.studies_frame(conn)
if studies.empty:
    st.info("No reader study yet: create one on **Studies and readers** or run `make demo`.")
    st.stop()
study_id = widgets.study_picker(studies)
# the bootstrap is the slow part: recompute only when a rater's reads changed
cached_metrics_table = st.cache_data(sa.metrics_table, max_entries=64, show_spinner=False)
live = st.toggle("Live: re-read the database every 15 s", help="Or press R to rerun now.")


@st.fragment(run_every=15 if live else None)
def analysis() -> None:
    """Everything below is read from the database on each run, so new reads show up."""
    with errors_shown(), connection() as conn:
        data = sa.load_study_data(conn, study_id)
    if data.study.get("simulated") or data.simulated_readers:
        st.warning(
            "SIMULATED DATA: the readers "
            + ", ".join(data.simulated_readers or ["of this study"])
            + " are simulated (labels reproduce the paper's expert tables; confidences and times are "
            "invented)."
        )
    if data.reads.empty:
        st.info("No reads yet. Tables appear here as readers submit answers.")
        return
    arm = st.radio("Arm", data.arms, horizontal=True) if len(data.arms) > 1 else data.arms[0]
    named = sa.raters(data, arm)
    exports: dict[str, pd.DataFrame] = {}

    st.header("Confusion matrices and metrics")
    st.caption("Rows: true type; columns: predicted type (the paper's layout). 95% CIs: bootstrap.")
    for name, rater in named.items():
        st.subheader(f"{name} ({len(rater)} cases)")
        table = sa.confusion_table(rater)
        metrics = cached_metrics_table(rater)
        exports[f"confusion {name}"] = table
        exports[f"metrics {name}"] = metrics
        left, right = st.columns([2, 3])
        left.dataframe(table, key=f"cm_{name}")
        left.plotly_chart(confusion_figure(table.to_numpy(), title=name), key=f"cmfig_{name}")
        right.dataframe(sa.metrics_wide(metrics), key=f"metrics_{name}")

    st.header("ROC curves and operating points")
    st.plotly_chart(sa.roc_with_operating_points(named), key="roc")

    st.header("Model against each reader (McNemar)")
    mcnemar = sa.mcnemar_table(named)
    exports["mcnemar"] = mcnemar
    if mcnemar.empty:
        st.info("The study has no model run, or no case read by both.")
    else:
        st.dataframe(mcnemar, hide_index=True)

    st.header("Agreement")
    pairwise, fleiss, n_common = sa.kappa_tables(named)
    exports["cohen kappa"] = pairwise
    if pairwise.empty:
        st.info("Agreement needs two raters who read the same cases.")
    else:
        st.dataframe(pairwise, hide_index=True)
        if fleiss is not None:
            st.metric(f"Fleiss' kappa, readers, {n_common} common cases", f"{fleiss:.3f}")

    st.header("Time per case")
    times = sa.time_table(data)
    exports["time per case"] = times
    st.dataframe(times, hide_index=True)

    if {"unaided", "aided"} <= set(data.reads["arm"]):
        st.header("Aided minus unaided")
        diff = sa.aided_minus_unaided(data)
        exports["aided minus unaided"] = diff
        st.dataframe(diff, hide_index=True)

    st.header("MRMC analysis")
    st.caption(
        "Obuchowski-Rockette with Hillis' degrees of freedom: random readers and random cases, "
        "jackknife covariances. Only cases that every reader has read (in every arm compared) count."
    )
    fom = st.selectbox("Figure of merit", list(sa.MRMC_FOMS), format_func=sa.MRMC_FOMS.get)
    comparisons = {
        "Model against the readers": lambda: sa.mrmc_model_vs_readers(data, arm, fom=fom)
    }
    if {"unaided", "aided"} <= set(data.reads["arm"]):
        comparisons["AI-aided against unaided reading"] = lambda: sa.mrmc_aided_vs_unaided(
            data, fom=fom
        )
    for title, compute in comparisons.items():
        st.markdown(f"**{title}**")
        try:
            result = compute()
        except ValueError as exc:
            st.info(f"Not available yet: {exc}")
            continue
        table = result.to_frame()  # the model comparison's table already lists each reader's FOM
        exports[f"mrmc {title}"] = table
        st.dataframe(table, hide_index=True, key=f"mrmc_{title}")
        if hasattr(result, "foms"):  # two modalities: FOM per reader (rows) and modality (columns)
            exports[f"mrmc per-reader {title}"] = result.foms
            st.dataframe(result.foms, key=f"mrmc_readers_{title}")
        st.markdown(result.summary())

    st.header("Export")
    with errors_shown(), connection() as conn:
        reads_csv = sa.reads_csv(conn, study_id)
    st.download_button("Reads (CSV)", reads_csv, f"study-{study_id}-reads.csv", "text/csv")
    st.download_button(
        "Analysis tables (CSV)",
        sa.tables_csv(exports),
        f"study-{study_id}-analysis.csv",
        "text/csv",
    )
    positive = st.selectbox("iMRMC export: positive class (one-vs-rest, from confidences)", CLASSES)
    try:
        imrmc = sa.imrmc_text(data, positive)
    except ValueError as exc:
        st.caption(f"iMRMC export not available: {exc}")
    else:
        st.download_button(
            "Reads for iMRMC / RJafroc",
            imrmc,
            f"study-{study_id}-imrmc-{positive}.imrmc",
            "text/plain",
        )


analysis()
