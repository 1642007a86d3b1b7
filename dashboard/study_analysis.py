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
import threading
import warnings
from collections.abc import Callable, Mapping
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


@st.cache_resource(max_entries=8, show_spinner=False)
def _study_data(study_id: int, version: str) -> StudyData:
    """The study at ``version``; from the newest one read before, patched with the reads written
    since, when that is all that changed (a live study: one read at a time)."""
    where = (str(db.resolve_db_path()), int(study_id))
    with _reading(where), connection() as conn:  # a read ahead in progress: wait, then patch it
        data = load_study_data(conn, study_id, previous=_last_read().get(where))
        _last_read()[where] = data
    return data


_reading_locks: dict[tuple[str, int], threading.Lock] = {}


def _reading(where: tuple[str, int]) -> threading.Lock:
    return _reading_locks.setdefault(where, threading.Lock())


def _read_ahead(study_id: int, version: str) -> None:
    """Load the study's reads in the background unless they are at hand: after a restart every
    table is read back from the database, and the next new read would wait for all the reads
    (1 s at 128,000) instead of being patched into them."""
    if (str(db.resolve_db_path()), int(study_id)) not in _last_read():
        saved.later(f"reads of study {int(study_id)}", lambda: _load_ahead(study_id, version))


def _load_ahead(study_id: int, version: str) -> None:
    """The reads and every arm's rater frames with their digests, so that a new read patches
    one reader's frame instead of building and digesting all of them while the page waits."""
    data = dataclasses.replace(_study_data(study_id, version), version=f"{study_id}:{version}")
    for arm in data.arms:
        _raters_and_digests(f"{data.version}|{arm}", arm, data)


@st.cache_resource(show_spinner=False)
def _last_read() -> dict[tuple[str, int], StudyData]:
    """(database, study) -> the newest read of it (cleared with Streamlit's caches)."""
    return {}


class StudyView:
    """A study as the analysis page reads it: what the page shows without the reads (arms,
    raters, their digests) from a manifest kept under the reads version, and every other
    :class:`StudyData` attribute from the full data, read from the database on first use. So a
    restarted server whose tables are all saved never reads the reads. Shared data: read only."""

    def __init__(self, study_id: int, version: str):
        self.study_id, self._raw_version = int(study_id), version
        self.version = f"{study_id}:{version}"
        self._full: StudyData | None = None
        # never an older manifest: its rater digests would key new tables on old frames
        self.manifest = _memo(
            "manifest", self.version, lambda: _manifest(self.full), stale_ok=False
        )
        if self._full is None:  # drawn from saved tables: have the reads at hand for new ones
            _read_ahead(self.study_id, version)

    @property
    def full(self) -> StudyData:
        if self._full is None:
            loaded = _study_data(self.study_id, self._raw_version)
            self._full = dataclasses.replace(loaded, version=self.version)
        return self._full

    @property
    def arms(self) -> list[str]:
        return list(self.manifest["arms"])

    @property
    def simulated_readers(self) -> list[str]:
        return list(self.manifest["simulated_readers"])

    @property
    def has_reads(self) -> bool:
        return bool(self.manifest["has_reads"])

    @property
    def has_repeats(self) -> bool:
        return bool(self.manifest["has_repeats"])

    def __getattr__(self, name: str) -> Any:  # reads, model, repeats, study...: the full data
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.full, name)


def _manifest(data: StudyData) -> dict:
    """What :class:`StudyView` and :class:`RaterFrames` answer without loading the reads."""
    return {
        "arms": data.arms,
        "simulated_readers": data.simulated_readers,
        "simulated_study": bool(data.study.get("simulated")),
        "has_reads": not data.reads.empty,
        "has_repeats": data.repeats is not None and not data.repeats.empty,
        "raters": {
            arm: [[name, len(frame), digests[name]] for name, frame in frames.items()]
            for arm in data.arms
            for frames, digests in [_raters_and_digests(f"{data.version}|{arm}", arm, data)]
        },
    }


def study_data(conn, study_id: int) -> StudyView:
    """The study for the analysis page, keyed on ``db.reads_version`` (the reads themselves
    are read only when a table must be computed)."""
    return StudyView(study_id, db.reads_version(conn, study_id))


class RaterFrames(Mapping):
    """``{name: rater frame}`` as :func:`core.reader_study.study_data.raters` gives it, plus the
    key (study, reads version, arm) that cross-rater results are kept under and each frame's
    digest, the key of its own results. Names, case counts and digests come from the manifest;
    the frames are built on first access. Shared frames: read only."""

    def __init__(self, data: StudyView, arm: str):
        self.key = f"{data.version}|{arm}"
        self._data, self.arm = data, arm
        listed = data.manifest["raters"].get(arm, [])
        self.n_cases = {name: int(n) for name, n, _ in listed}
        self.digests = {name: digest for name, _, digest in listed}

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self.digests:
            raise KeyError(name)
        return _rater_frames(self.key, self.arm, self._data.full)[name]

    def __iter__(self):
        return iter(self.digests)

    def __len__(self) -> int:
        return len(self.digests)


def _rater_frames(key: str, arm: str, data: StudyData) -> dict[str, pd.DataFrame]:
    return _raters_and_digests(key, arm, data)[0]


@st.cache_resource(max_entries=16, show_spinner=False)
def _raters_and_digests(key: str, arm: str, _data: StudyData) -> tuple[dict, dict[str, str]]:
    """The arm's rater frames and their digests; after one new read, only that reader's frame
    is built and digested anew (the others are those of the reads before)."""
    where = (str(db.resolve_db_path()), int(key.split(":", 1)[0]), arm)
    mark, frames, digests = _last_raters().get(where, (None, {}, {}))
    named = raters(_data, arm, earlier=(mark, frames) if frames else None)
    digests = {
        name: digests[name] if frames.get(name) is frame else frame_digest(frame)
        for name, frame in named.items()
    }
    _last_raters()[where] = (_data.read_mark, named, digests)
    return named, digests


@st.cache_resource(show_spinner=False)
def _last_raters() -> dict[tuple[str, int, str], tuple[int | None, dict, dict[str, str]]]:
    """(database, study, arm) -> (read_mark, rater frames, digests) of the newest read of it."""
    return {}


def rater_frames(data: StudyView, arm: str) -> RaterFrames:
    """The arm's raters, keyed for :func:`_memo`."""
    return RaterFrames(data, arm)


def _memo(what: str, key: str, compute: Callable[[], Any], *, stale_ok: bool = True) -> Any:
    """``compute()``, kept by :func:`dashboard.saved.remembered` under ``key``, which starts
    with the study id (``"<study id>:..."``, as ``StudyData.version`` does); uncached without a
    key. Unless ``stale_ok`` is False, the page does not wait: a table of the same kind from
    older reads is shown, or :data:`dashboard.saved.PENDING` (see :func:`_ready`) when there is
    none, while the new one is computed in the background (:func:`updating`)."""
    if not key:
        return compute()
    scope = f"study:{key.split(':', 1)[0]}"
    return saved.remembered(scope, f"{what}|{key}", compute, stale_ok=stale_ok, pending_ok=stale_ok)


def _ready(*values: Any) -> bool:
    """Whether every value is at hand; if not, a placeholder where they go (the page refreshes
    by itself until they are)."""
    if any(value is saved.PENDING for value in values):
        st.caption("Computing in the background: shown here as soon as it is ready.")
        return False
    return True


def updating(study_id: int) -> int:
    """How many of the study's tables are being recomputed for newer reads (those shown are
    older until then)."""
    return saved.updating(f"study:{int(study_id)}")


def updating_keys(study_id: int) -> frozenset[str]:
    """The keys of the study's tables being recomputed for newer reads."""
    return saved.updating_keys(f"study:{int(study_id)}")


def _kind(named: dict[str, pd.DataFrame], what: str) -> str:
    """``what`` and the arm: a table shown while its newer one is computed must be of the same
    arm (each arm's frames have their own digests, but the same kinds of tables)."""
    arm = getattr(named, "arm", "")
    return f"{what} ({arm})" if arm else what


def _rater_key(named: dict[str, pd.DataFrame], name: str) -> str:
    """The key of what ``name``'s frame alone gives: its study and digest, not the reads
    version, so another reader's new read leaves it valid."""
    digests = getattr(named, "digests", None)
    key = getattr(named, "key", "")
    if not key or not digests:
        return ""
    return f"{key.split(':', 1)[0]}:{name}|{digests[name]}"


def simulated_warning(data: StudyView) -> None:
    """Say loudly when the readers (or the whole study) are simulated."""
    if data.manifest["simulated_study"] or data.simulated_readers:
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
    for name in named:
        compute = lambda name=name: _rater(named[name], name)  # noqa: E731
        key = _rater_key(named, name)
        # exported when clicked: computed then if need be, never an older table
        out[f"confusion {name}"] = lambda c=compute, k=key, n=name: _memo(
            _kind(named, f"rater {n}"), k, c, stale_ok=False
        )[0]
        out[f"metrics {name}"] = lambda c=compute, k=key, n=name: _memo(
            _kind(named, f"rater {n}"), k, c, stale_ok=False
        )[1]
        if name not in shown:
            continue
        st.subheader(analysis.rater_heading(name, _n_cases(named, name)))
        drawn = _memo(_kind(named, f"rater {name}"), key, compute)
        if not _ready(drawn):
            continue
        table, metrics, wide, figure = drawn
        out[f"confusion {name}"] = table
        out[f"metrics {name}"] = metrics
        left, right = st.columns([2, 3])
        left.dataframe(table, key=f"cm_{name}")
        left.plotly_chart(figure, key=f"cmfig_{name}")
        right.dataframe(wide, key=f"metrics_{name}")
    return shown


def _n_cases(named: dict[str, pd.DataFrame], name: str) -> int:
    counts = getattr(named, "n_cases", None)
    return counts[name] if counts is not None else len(named[name])


def _rater(rater: pd.DataFrame, name: str) -> tuple:
    """One rater's confusion table, metrics (long and wide) and confusion figure."""
    table = analysis.confusion_table(rater)
    metrics = analysis.metrics_table(rater)
    figure = confusion_figure(table.to_numpy(), title=name)
    return table, metrics, analysis.metrics_wide(metrics), figure


def calibration_section(
    named: dict[str, pd.DataFrame], out: Exports, shown: list[str] | None = None
) -> None:
    """Brier and ECE (patient-bootstrap CIs) and the reliability diagram of the raters shown in
    detail (all of them when few); every rater's scores go into the CSV export, computed when
    it is downloaded."""
    st.header("Calibration")
    st.caption(
        "Can the scores be read as probabilities? Readers' confidences are normalised to sum to 1 "
        "per case. Brier score and expected calibration error (10 bins), one class against the "
        "rest; lower is better; 95% CIs by percentile bootstrap over patients."
    )
    chosen = [name for name in named if shown is None or name in shown]
    out["calibration"] = lambda: _calibration_of(named, list(named), stale_ok=False)[0]
    of_chosen = _calibration_of(named, chosen)
    if not _ready(of_chosen):
        return
    scores, points = of_chosen
    if scores.empty:
        st.info("No rater shown has confidences for every case yet.")
        return
    key = getattr(named, "key", "")
    drawn = ",".join(chosen)
    by_rater = scores.rename(columns={"rater": "model"})  # value (95% CI) per metric and class
    table = _memo(
        _kind(named, f"calibration table {drawn}"), key, lambda: loaders.calibration_table(by_rater)
    )
    if _ready(table):
        st.dataframe(table, key="calibration_table")
    figure = _memo(_kind(named, f"reliability {drawn}"), key, lambda: reliability_figure(points))
    if _ready(figure):
        st.plotly_chart(figure, key="reliability")


def _calibration_of(
    named: dict[str, pd.DataFrame], names: list[str], *, stale_ok: bool = True
) -> tuple:
    """The calibration scores and reliability points of ``names``, each rater's kept under its
    own frame's digest; empty frames when none has confidences for every case; PENDING while
    one of them is being computed for the first time."""
    parts = [
        _memo(
            _kind(named, f"calibration {name}"),
            _rater_key(named, name),
            lambda name=name: analysis.rater_calibration({name: named[name]}),
            stale_ok=stale_ok,
        )
        for name in names
    ]
    if any(part is saved.PENDING for part in parts):
        return saved.PENDING
    parts = [(scores, points) for scores, points in parts if not scores.empty]
    if not parts:
        return pd.DataFrame(), pd.DataFrame()
    return (
        pd.concat([p[0] for p in parts], ignore_index=True),
        pd.concat([p[1] for p in parts], ignore_index=True),
    )


def roc_section(named: dict[str, pd.DataFrame], shown: list[str] | None = None) -> None:
    """The ROC figure of the raters shown in detail (all of them when few)."""
    st.header("ROC curves and operating points")
    chosen = [name for name in named if shown is None or name in shown]
    keys = [_rater_key(named, name) for name in chosen]
    key = all(keys) and "|".join(keys)
    figure = _memo(
        _kind(named, f"roc {','.join(chosen)}"),
        key,
        lambda: roc_with_operating_points({n: named[n] for n in chosen}),
    )
    if _ready(figure):
        st.plotly_chart(figure, key="roc")


def mcnemar_section(named: dict[str, pd.DataFrame], out: Exports) -> None:
    st.header("Model against each reader (McNemar)")
    compute = lambda: analysis.mcnemar_table(named)  # noqa: E731
    key = getattr(named, "key", "")
    mcnemar = _memo(_kind(named, "mcnemar"), key, compute)
    out["mcnemar"] = lambda: _memo(_kind(named, "mcnemar"), key, compute, stale_ok=False)
    if not _ready(mcnemar):
        return
    if mcnemar.empty:
        st.info("The study has no model run, or no case read by both.")
    else:
        p_text = mcnemar["p-value"].map(analysis.format_p_value)  # never a cut-off 0.0000…
        st.dataframe(mcnemar.assign(**{"p-value": p_text}), hide_index=True)


def agreement_section(named: dict[str, pd.DataFrame], out: Exports) -> None:
    st.header("Agreement")
    key = getattr(named, "key", "")
    compute = lambda: analysis.kappa_tables(named)  # noqa: E731
    kappas = _memo(_kind(named, "kappa"), key, compute)
    out["cohen kappa"] = lambda: _memo(_kind(named, "kappa"), key, compute, stale_ok=False)[0]
    if not _ready(kappas):
        return
    pairwise, fleiss, n_common = kappas
    if pairwise.empty:
        st.info("Agreement needs two raters who read the same cases.")
        return
    st.caption("Cohen's kappa with a 95% CI (asymptotic, Fleiss-Cohen-Everitt).")
    st.dataframe(pairwise, hide_index=True)
    interval = _memo(_kind(named, "fleiss"), key, lambda: analysis.fleiss_interval(named))
    if _ready(interval) and interval is not None:
        st.metric(
            f"Fleiss' kappa, readers, {n_common} common cases",
            f"{interval.kappa:.3f} (95% CI {interval.low:.3f} to {interval.high:.3f}, bootstrap)",
        )


def repeat_section(data: StudyView, out: Exports) -> None:
    """Intra-reader agreement from repeat reads (they never enter the other tables)."""
    if not data.has_repeats:
        return
    st.header("Intra-reader agreement (repeat reads)")
    st.caption(
        "Each reader's first read against their repeat read of the same case, shown again later "
        "under another display ID. Kappa 95% CI: asymptotic."
    )
    compute = lambda: analysis.intra_reader_agreement(pd.concat([data.reads, data.repeats]))  # noqa: E731
    table = _memo("intra-reader", data.version, compute)
    out["intra-reader agreement"] = lambda: _memo(
        "intra-reader", data.version, compute, stale_ok=False
    )
    if _ready(table):
        st.dataframe(table, hide_index=True)


def time_sections(data: StudyView, out: Exports) -> None:
    """Time per case and, when both arms hold reads, aided minus unaided."""
    st.header("Time per case")
    compute = lambda: analysis.time_table(data.full)  # noqa: E731
    times = _memo("times", data.version, compute)
    out["time per case"] = lambda: _memo("times", data.version, compute, stale_ok=False)
    if _ready(times):
        st.dataframe(times, hide_index=True)
    if {"unaided", "aided"} <= set(data.arms):
        st.header("Aided minus unaided")
        compute_diff = lambda: analysis.aided_minus_unaided(data.full)  # noqa: E731
        diff = _memo("aided minus unaided", data.version, compute_diff)
        out["aided minus unaided"] = lambda: _memo(
            "aided minus unaided", data.version, compute_diff, stale_ok=False
        )
        if _ready(diff):
            st.dataframe(diff, hide_index=True)


def mrmc_section(data: StudyView, arm: str, out: Exports) -> None:
    """The OR analyses: model against the readers and, with both arms, aided against unaided;
    which reads they use and why, and non-inferiority at a margin the researcher sets."""
    st.header("MRMC analysis")
    st.caption(
        "Obuchowski-Rockette with Hillis' degrees of freedom: random readers and random cases, "
        "jackknife covariances. Split-plot studies (reader groups with their own cases) use "
        "every group's reads."
    )
    few = _memo(f"few readers {arm}", data.version, lambda: mrmc_inputs.few_readers(data.full, arm))
    few = few is not saved.PENDING and few
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
            lambda: mrmc_inputs.mrmc_model_vs_readers(data.full, arm, fom=fom),
        )
    }
    if {"unaided", "aided"} <= set(data.arms):
        comparisons["AI-aided against unaided reading"] = (
            ["aided", "unaided"],
            lambda: mrmc_inputs.mrmc_aided_vs_unaided(data.full, fom=fom),
        )
    for title, (arms, compute) in comparisons.items():
        st.markdown(f"**{title}**")
        selection = _memo(
            f"read selection {arms}",
            data.version,
            lambda arms=arms: mrmc_inputs.read_selection(data.full, arms).explanation,
        )
        if selection is not saved.PENDING:
            st.caption(selection)
        result = _memo(f"mrmc {title} {fom} {arm}", data.version, lambda c=compute: _or_why(c))
        if not _ready(result):
            continue
        if isinstance(result, str):  # kept too: the reads cannot support it until one changes
            st.info(f"Not available yet: {result}")
            continue
        _mrmc_result(title, result, margin, few, out)


def _or_why(compute: Callable[[], Any]) -> Any:
    """``compute()``, or the reason it cannot be computed (its ValueError's text)."""
    try:
        return compute()
    except ValueError as exc:
        return str(exc)


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


def export_section(data: StudyView, study_id: int, tables: Exports) -> None:
    """Downloads: the reads, the tables shown above, and the iMRMC input for one class."""
    st.header("Export")
    # The payloads are built when a button is clicked (on Streamlit's own thread), not per rerun.
    st.download_button(
        "Reads (CSV)", lambda: _reads_csv(study_id), f"study-{study_id}-reads.csv", "text/csv"
    )
    pending = updating(study_id)  # some tables above are of older reads: never export those
    st.download_button(
        "Analysis tables (CSV)",
        lambda: exports.tables_csv({t: v() if callable(v) else v for t, v in tables.items()}),
        f"study-{study_id}-analysis.csv",
        "text/csv",
        disabled=bool(pending),
        help="Available once the tables are updated for the newest reads." if pending else None,
    )
    positive = st.selectbox("iMRMC export: positive class (one-vs-rest, from confidences)", CLASSES)
    crossed = _memo(
        "imrmc reads", data.version, lambda: len(mrmc_inputs.mrmc_reads(data.full, data.arms))
    )
    if not _ready(crossed):
        return
    if not crossed:  # the message imrmc_text raises, without building the file
        st.caption(
            "iMRMC export not available: no case has been read by every reader in every arm yet"
        )
    else:
        st.download_button(
            "Reads for iMRMC / RJafroc",
            lambda: mrmc_inputs.imrmc_text(data.full, positive),
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
