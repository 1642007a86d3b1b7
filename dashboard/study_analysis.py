"""The reader-analysis screen's sections and its ROC figure: Streamlit and Plotly glue over the
tables of ``core.reader_study``. Each section shows its tables and adds them to ``exports``
(title -> table), which the export section offers as one CSV.

Everything derived from the reads is kept by ``dashboard.saved`` (in this process and in the
database): what one rater's frame gives (confusion table, bootstrap metrics, calibration) under that
frame's digest, what all raters give under the study's ``db.reads_version``. So a rerun with no new
read recomputes nothing, a restarted server reads every table back, and a new read recomputes its
reader's tables and the cross-reader ones only. The export payloads are built only when their
button is clicked.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

import db
from core.data.labels import CLASS_INDEX, CLASSES
from core.project.saved_values import frame_digest
from core.reader_study import analysis, exports, mrmc_inputs
from core.reader_study.study_data import MODEL, SCORE_COLUMNS, StudyData, load_study_data, raters
from dashboard import loaders, saved
from dashboard.figures import (
    PALETTE,
    confusion_figure,
    reliability_figure,
    roc_curves_for_run,
    roc_figure,
)
from dashboard.store import connection

Exports = dict[str, pd.DataFrame]


class RaterFrames(dict):
    """``{name: rater frame}`` as :func:`core.reader_study.study_data.raters` gives it, plus the
    key (study, reads version, arm) that cross-rater results are kept under and each frame's
    digest, the key of its own results. Shared between sessions: read only."""

    key: str = ""
    digests: dict[str, str]


@st.cache_resource(max_entries=8, show_spinner=False)
def _study_data(study_id: int, version: str) -> StudyData:
    with connection() as conn:
        return load_study_data(conn, study_id)


def study_data(conn, study_id: int) -> StudyData:
    """The study's reads and model predictions, re-read only when ``db.reads_version`` moved
    (shared between sessions: read only)."""
    version = db.reads_version(conn, study_id)
    return dataclasses.replace(_study_data(study_id, version), version=f"{study_id}:{version}")


@st.cache_resource(max_entries=16, show_spinner=False)
def _rater_frames(key: str, arm: str, _data: StudyData) -> RaterFrames:
    named = RaterFrames(raters(_data, arm))
    named.key = key
    named.digests = {name: frame_digest(frame) for name, frame in named.items()}
    return named


def rater_frames(data: StudyData, arm: str) -> RaterFrames:
    """The arm's raters, keyed for :func:`_memo` (built once per reads version)."""
    return _rater_frames(f"{data.version}|{arm}", arm, data)


def _memo(what: str, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, kept by :func:`dashboard.saved.remembered` under ``key``, which starts
    with the study id (``"<study id>:..."``, as ``StudyData.version`` does); uncached without a
    key."""
    if not key:
        return compute()
    return saved.remembered(f"study:{key.split(':', 1)[0]}", f"{what}|{key}", compute)


def _rater_key(named: dict[str, pd.DataFrame], name: str) -> str:
    """The key of what ``name``'s frame alone gives: its study and digest, not the reads
    version, so another reader's new read leaves it valid."""
    digests = getattr(named, "digests", None)
    key = getattr(named, "key", "")
    if not key or not digests:
        return ""
    return f"{key.split(':', 1)[0]}:{name}|{digests[name]}"


def simulated_warning(data: StudyData) -> None:
    """Say loudly when the readers (or the whole study) are simulated."""
    if data.study.get("simulated") or data.simulated_readers:
        st.warning(
            "SIMULATED DATA: the readers "
            + ", ".join(data.simulated_readers or ["of this study"])
            + " are simulated (labels reproduce the paper's expert tables; confidences and times are "
            "invented)."
        )


DETAILED_RATERS = 5  # raters whose confusion table, figure and metrics are drawn at first


def confusion_and_metrics(named: dict[str, pd.DataFrame], out: Exports) -> list[str]:
    """Per rater: the confusion table, its figure and the metrics with CIs. With many readers
    only the chosen raters are drawn (the model and the first readers by default); every rater's
    tables still go into the CSV export, computed when it is downloaded."""
    st.header("Confusion matrices and metrics")
    st.caption("Rows: true type; columns: predicted type (the paper's layout). 95% CIs: bootstrap.")
    names = list(named)
    shown = names
    if len(names) > DETAILED_RATERS:
        shown = st.multiselect(
            f"Raters shown in detail ({len(names)} in the study; all are in the CSV export)",
            names,
            default=names[:DETAILED_RATERS],
            key="analysis_detailed_raters",
        )
    for name, rater in named.items():
        compute = lambda rater=rater, name=name: _rater(rater, name)  # noqa: E731
        key = _rater_key(named, name)
        if name not in shown:
            out[f"confusion {name}"] = lambda c=compute, k=key, n=name: _memo(f"rater {n}", k, c)[0]
            out[f"metrics {name}"] = lambda c=compute, k=key, n=name: _memo(f"rater {n}", k, c)[1]
            continue
        st.subheader(analysis.rater_heading(name, len(rater)))
        table, metrics, wide, figure = _memo(f"rater {name}", key, compute)
        out[f"confusion {name}"] = table
        out[f"metrics {name}"] = metrics
        left, right = st.columns([2, 3])
        left.dataframe(table, key=f"cm_{name}")
        left.plotly_chart(figure, key=f"cmfig_{name}")
        right.dataframe(wide, key=f"metrics_{name}")
    return shown


def _rater(rater: pd.DataFrame, name: str) -> tuple:
    """One rater's confusion table, metrics (long and wide) and confusion figure."""
    table = analysis.confusion_table(rater)
    metrics = analysis.metrics_table(rater)
    figure = confusion_figure(table.to_numpy(), title=name)
    return table, metrics, analysis.metrics_wide(metrics), figure


def calibration_section(
    named: dict[str, pd.DataFrame], out: Exports, shown: list[str] | None = None
) -> None:
    """Brier and ECE (patient-bootstrap CIs) and the reliability diagram per rater."""
    st.header("Calibration")
    st.caption(
        "Can the scores be read as probabilities? Readers' confidences are normalised to sum to 1 "
        "per case. Brier score and expected calibration error (10 bins), one class against the "
        "rest; lower is better; 95% CIs by percentile bootstrap over patients."
    )
    parts = [
        _memo(
            f"calibration {name}",
            _rater_key(named, name),
            lambda name=name, rater=rater: analysis.rater_calibration({name: rater}),
        )
        for name, rater in named.items()
    ]
    parts = [(scores, points) for scores, points in parts if not scores.empty]
    if not parts:
        st.info("No rater has confidences for every case yet.")
        return
    scores = pd.concat([p[0] for p in parts], ignore_index=True)
    points = pd.concat([p[1] for p in parts], ignore_index=True)
    out["calibration"] = scores
    key = getattr(named, "key", "")
    by_rater = scores.rename(columns={"rater": "model"})  # value (95% CI) per metric and class
    table = _memo("calibration table", key, lambda: loaders.calibration_table(by_rater))
    st.dataframe(table, key="calibration_table")
    if shown is not None:  # the diagram of the raters shown in detail; the table has them all
        points = points.loc[points["model"].isin(shown)]
    drawn = ",".join(shown) if shown is not None else "*"
    figure = _memo(f"reliability {drawn}", key, lambda: reliability_figure(points))
    st.plotly_chart(figure, key="reliability")


def roc_section(named: dict[str, pd.DataFrame], shown: list[str] | None = None) -> None:
    """The ROC figure of the raters shown in detail (all of them when few)."""
    st.header("ROC curves and operating points")
    chosen = {n: r for n, r in named.items() if shown is None or n in shown}
    keys = [_rater_key(named, name) for name in chosen]
    key = all(keys) and "|".join(keys)
    st.plotly_chart(_memo("roc", key, lambda: roc_with_operating_points(chosen)), key="roc")


def mcnemar_section(named: dict[str, pd.DataFrame], out: Exports) -> None:
    st.header("Model against each reader (McNemar)")
    mcnemar = _memo("mcnemar", getattr(named, "key", ""), lambda: analysis.mcnemar_table(named))
    out["mcnemar"] = mcnemar
    if mcnemar.empty:
        st.info("The study has no model run, or no case read by both.")
    else:
        p_text = mcnemar["p-value"].map(analysis.format_p_value)  # never a cut-off 0.0000…
        st.dataframe(mcnemar.assign(**{"p-value": p_text}), hide_index=True)


def agreement_section(named: dict[str, pd.DataFrame], out: Exports) -> None:
    st.header("Agreement")
    key = getattr(named, "key", "")
    pairwise, fleiss, n_common = _memo("kappa", key, lambda: analysis.kappa_tables(named))
    out["cohen kappa"] = pairwise
    if pairwise.empty:
        st.info("Agreement needs two raters who read the same cases.")
        return
    st.caption("Cohen's kappa with a 95% CI (asymptotic, Fleiss-Cohen-Everitt).")
    st.dataframe(pairwise, hide_index=True)
    interval = _memo("fleiss", key, lambda: analysis.fleiss_interval(named))
    if interval is not None:
        st.metric(
            f"Fleiss' kappa, readers, {n_common} common cases",
            f"{interval.kappa:.3f} (95% CI {interval.low:.3f} to {interval.high:.3f}, bootstrap)",
        )


def repeat_section(data: StudyData, out: Exports) -> None:
    """Intra-reader agreement from repeat reads (they never enter the other tables)."""
    if data.repeats is None or data.repeats.empty:
        return
    st.header("Intra-reader agreement (repeat reads)")
    st.caption(
        "Each reader's first read against their repeat read of the same case, shown again later "
        "under another display ID. Kappa 95% CI: asymptotic."
    )
    table = _memo(
        "intra-reader",
        data.version,
        lambda: analysis.intra_reader_agreement(pd.concat([data.reads, data.repeats])),
    )
    out["intra-reader agreement"] = table
    st.dataframe(table, hide_index=True)


def time_sections(data: StudyData, out: Exports) -> None:
    """Time per case and, when both arms hold reads, aided minus unaided."""
    st.header("Time per case")
    times = _memo("times", data.version, lambda: analysis.time_table(data))
    out["time per case"] = times
    st.dataframe(times, hide_index=True)
    if {"unaided", "aided"} <= set(data.arms):
        st.header("Aided minus unaided")
        diff = _memo(
            "aided minus unaided", data.version, lambda: analysis.aided_minus_unaided(data)
        )
        out["aided minus unaided"] = diff
        st.dataframe(diff, hide_index=True)


def mrmc_section(data: StudyData, arm: str, out: Exports) -> None:
    """The OR analyses: model against the readers and, with both arms, aided against unaided;
    which reads they use and why, and non-inferiority at a margin the researcher sets."""
    st.header("MRMC analysis")
    st.caption(
        "Obuchowski-Rockette with Hillis' degrees of freedom: random readers and random cases, "
        "jackknife covariances. Split-plot studies (reader groups with their own cases) use "
        "every group's reads."
    )
    few = _memo(f"few readers {arm}", data.version, lambda: mrmc_inputs.few_readers(data, arm))
    if few:
        st.warning(
            f"Fewer than {mrmc_inputs.FEW_READERS} readers: an MRMC result that generalises to "
            "new readers rests on very few of them and is weak. Read the per-reader results first."
        )
    fom = st.selectbox(
        "Figure of merit", list(mrmc_inputs.MRMC_FOMS), format_func=mrmc_inputs.MRMC_FOMS.get
    )
    margin = st.number_input(
        "Non-inferiority margin (largest acceptable loss in the figure of merit)",
        0.001,
        0.5,
        0.05,
        0.005,
        format="%.3f",
    )
    comparisons = {
        "Model against the readers": (
            [arm],
            lambda: mrmc_inputs.mrmc_model_vs_readers(data, arm, fom=fom),
        )
    }
    if {"unaided", "aided"} <= set(data.arms):
        comparisons["AI-aided against unaided reading"] = (
            ["aided", "unaided"],
            lambda: mrmc_inputs.mrmc_aided_vs_unaided(data, fom=fom),
        )
    for title, (arms, compute) in comparisons.items():
        st.markdown(f"**{title}**")
        st.caption(
            _memo(
                f"read selection {arms}",
                data.version,
                lambda arms=arms: mrmc_inputs.read_selection(data, arms).explanation,
            )
        )
        try:
            result = _memo(f"mrmc {title} {fom} {arm}", data.version, compute)
        except ValueError as exc:
            st.info(f"Not available yet: {exc}")
            continue
        _mrmc_result(title, result, margin, few, out)


def _mrmc_result(title: str, result, margin: float, readers_first: bool, out: Exports) -> None:
    per_reader = result.foms if hasattr(result, "foms") else None  # two modalities
    if readers_first and per_reader is not None:
        st.dataframe(per_reader, key=f"mrmc_readers_first_{title}")
    table = result.to_frame()  # the model comparison's table already lists each reader's FOM
    out[f"mrmc {title}"] = table
    st.dataframe(analysis.display_table(table), hide_index=True, key=f"mrmc_{title}")
    if per_reader is not None:
        out[f"mrmc per-reader {title}"] = per_reader
        if not readers_first:
            st.dataframe(per_reader, key=f"mrmc_readers_{title}")
    st.markdown(result.summary())
    ni = mrmc_inputs.noninferiority(result, margin=margin)
    out[f"non-inferiority {title}"] = pd.DataFrame([vars(ni)])
    st.markdown(ni.summary())


def export_section(data: StudyData, study_id: int, tables: Exports) -> None:
    """Downloads: the reads, the tables shown above, and the iMRMC input for one class."""
    st.header("Export")
    # The payloads are built when a button is clicked (on Streamlit's own thread), not per rerun.
    st.download_button(
        "Reads (CSV)", lambda: _reads_csv(study_id), f"study-{study_id}-reads.csv", "text/csv"
    )
    st.download_button(
        "Analysis tables (CSV)",
        lambda: exports.tables_csv({t: v() if callable(v) else v for t, v in tables.items()}),
        f"study-{study_id}-analysis.csv",
        "text/csv",
    )
    positive = st.selectbox("iMRMC export: positive class (one-vs-rest, from confidences)", CLASSES)
    crossed = _memo(
        "imrmc reads", data.version, lambda: len(mrmc_inputs.mrmc_reads(data, data.arms))
    )
    if not crossed:  # the message imrmc_text raises, without building the file
        st.caption(
            "iMRMC export not available: no case has been read by every reader in every arm yet"
        )
    else:
        st.download_button(
            "Reads for iMRMC / RJafroc",
            lambda: mrmc_inputs.imrmc_text(data, positive),
            f"study-{study_id}-imrmc-{positive}.imrmc",
            "text/plain",
        )


def _reads_csv(study_id: int) -> str:
    with connection() as conn:
        return exports.reads_csv(conn, study_id)


ROC_POINTS = 300  # per curve drawn: at 6,410 cases a full curve is ~6,000 points, 20x the pixels


def roc_with_operating_points(named: dict[str, pd.DataFrame]) -> go.Figure:
    """The model's one-vs-rest ROC curves, each reader's own ROC from confidences, and each
    reader's operating point (from their labels) as a large marker on every class panel."""
    curves = []
    for name, rater in named.items():
        scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
        if len(rater) and np.isfinite(scores).all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                predictions = analysis.as_predictions(rater)
                class_curves = roc_curves_for_run(predictions, run_id="", name=name)
            curves.extend(c.thinned(ROC_POINTS) for c in class_curves if c.class_index is not None)
    fig = roc_figure(
        curves, title="One-vs-rest ROC: model curves, reader curves and operating points"
    )
    panels = [c for c in CLASSES if any(cv.class_index == CLASS_INDEX[c] for cv in curves)]
    names = list(dict.fromkeys(c.name for c in curves))
    markers, cols = [], []
    for name, rater in named.items():
        if name == MODEL or not len(rater):
            continue
        colour = PALETTE[(names.index(name) if name in names else len(names)) % len(PALETTE)]
        for col, cls in enumerate(panels, start=1):
            markers.append(_operating_point_marker(rater, name, cls, colour))
            cols.append(col)
    if markers:  # one call: adding traces one by one re-validates the whole figure each time
        fig.add_traces(markers, rows=[1] * len(markers), cols=cols)
    return fig


def _operating_point_marker(rater: pd.DataFrame, name: str, cls: str, colour: str) -> go.Scatter:
    fpr, tpr = analysis.operating_point(rater, CLASS_INDEX[cls])
    return go.Scatter(
        x=[fpr],
        y=[tpr],
        mode="markers",
        marker={"size": 13, "symbol": "star", "color": colour},
        name=f"{name} · {cls} operating point",
        legendgroup=name,
        hovertemplate=f"{name}<br>1 - specificity %{{x:.3f}}<br>sensitivity %{{y:.3f}}<extra></extra>",
    )
