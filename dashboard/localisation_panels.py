"""The reader-analysis section of a localisation study: LROC and wAFROC per type, their OR
analyses and figures (Streamlit and Plotly over :mod:`core.reader_study.localisation`)."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

import db
from core.data.labels import CLASSES
from core.reader_study import localisation
from dashboard.figures import PALETTE
from dashboard.store import connection


@st.cache_data(max_entries=16, show_spinner=False)
def _analysis(study_id: int, version: str, cls: str) -> localisation.TypeLocalisation:
    return localisation.study_localisation(study_id, cls)


def localisation_figure(result: localisation.TypeLocalisation) -> go.Figure:
    """LROC (correct localisation against false positives) and weighted AFROC, one trace per
    reader and arm, its figure of merit in the legend."""
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.08,
        subplot_titles=[f"LROC: {result.type} called and localised", f"wAFROC: {result.type}"],
    )  # fmt: skip
    foms = result.foms.set_index(["reader", "arm"])
    for i, ((reader, arm), curves) in enumerate(result.curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        name = f"{reader} ({arm})" if result.foms["arm"].nunique() > 1 else str(reader)
        lroc, (fpf, wllf) = curves["lroc"], curves["afroc"]
        row = foms.loc[(reader, arm)]
        fig.add_trace(go.Scatter(
            x=lroc.fpf, y=lroc.pcl, mode="lines+markers", line={"color": colour, "shape": "linear"},
            name=f"{name}: ALROC {row['ALROC']:.3f}", legendgroup=name,
        ), row=1, col=1)  # fmt: skip
        fig.add_trace(go.Scatter(
            x=fpf, y=wllf, mode="lines", line={"color": colour, "dash": "dot"},
            name=f"{name}: wAFROC {row['wAFROC']:.3f}", legendgroup=name,
        ), row=1, col=2)  # fmt: skip
    for col, y in ((1, "correct localisation fraction"), (2, "weighted lesion localisation")):
        fig.update_xaxes(title_text="false positive fraction", range=[0, 1], row=1, col=col)
        fig.update_yaxes(title_text=y, range=[0, 1.02], row=1, col=col)
    fig.update_layout(height=420, margin={"t": 40, "b": 40}, legend={"font": {"size": 11}})
    return fig


def localisation_section(study_id: int, out: dict) -> None:
    """Shown only for a study whose readers mark the lesion."""
    with connection() as conn:
        study = db.get_study(conn, study_id)
        version = db.reads_version(conn, study_id)
    if not study.get("localise"):
        return
    st.header("Where: localisation (LROC and wAFROC)")
    cls = st.radio("Type scored", CLASSES, horizontal=True, key="localisation_type")
    result = _analysis(study_id, version, cls)
    st.caption(
        f"Scoring: {result.rule}. For {cls}, the {cls} cases count as lesion present and each "
        f"read's rating is its confidence in {cls}; LROC uses each read's first mark, wAFROC "
        "every mark (RJafroc's definitions). Obuchowski-Rockette analysis over the arms, "
        f"jackknife covariances, on the {len(result.readers)} reader(s) who read every case."
    )
    if result.note:
        st.info(result.note)
        return
    st.plotly_chart(localisation_figure(result), key=f"localisation_figure_{cls}")
    st.dataframe(result.foms, hide_index=True)
    out[f"Localisation figures of merit ({cls})"] = result.foms
    for name, test in (("wAFROC", result.wafroc_or), ("ALROC", result.alroc_or)):
        if test is None:
            continue
        table = test.to_frame()
        st.markdown(f"**{name}**: {test.summary()}")
        st.dataframe(table, hide_index=True)
        out[f"Localisation OR {name} ({cls})"] = pd.DataFrame(table)
