"""Database reads and the metrics computed from them, cached per run ids and database version.

Every number the results pages show comes from ``core.statistics.metrics`` applied to ``db.predictions_frame``
rows (per case) or ``db.image_predictions_frame`` rows (per image), here and nowhere else. The ``compute_*`` functions are pure (a DataFrame in, a DataFrame out)
so tests can call them; the ``load_*`` functions wrap them in ``st.cache_data`` keyed on the sorted
run ids and a ``version`` string (see ``runs_version``), so a new or finished run shows up without
restarting the server. A connection is never cached: each load opens and closes its own.
"""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pandas as pd
import streamlit as st

import db
from core.data.labels import CLASSES, class_indices
from core.learning.provenance import (
    RANDOM_WEIGHTS,
    synthetic_text,
    warnings_text,
    weights_used,
)
from core.learning.summary import summary_auc
from core.statistics import metrics
from dashboard import figures, saved
from dashboard.figures import PROB_COLUMNS, RocCurve, roc_curves_for_run
from dashboard.store import connection

AVERAGES = ("macro", "weighted")
LEVELS = ("case", "image")  # metrics per case (the mean of its slices) or per image (slice)
N_BOOT = 1000


# ---------------------------------------------------------------- uncached, always fresh
def runs() -> pd.DataFrame:
    """All runs, newest first (cheap: read on every rerun so status and progress stay live)."""
    with connection() as conn:
        frame = db.runs_frame(conn)
    if "created_at" in frame.columns:
        frame = frame.sort_values("created_at", ascending=False, kind="stable")
    return frame.reset_index(drop=True)


def runs_version(frame: pd.DataFrame, run_ids=None) -> str:
    """A short fingerprint of some runs (all by default): changes when they progress or end.

    Pass the chosen ``run_ids`` so a run progressing elsewhere does not invalidate the cache.
    """
    if run_ids is not None:
        frame = frame[frame["run_id"].isin(list(run_ids))]
    keys = ("run_id", "status", "progress", "ended_at", "n_predictions", "n_folds")
    cols = [c for c in keys if c in frame]
    text = frame[cols].astype(str).to_csv(index=False) if len(frame) else ""
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def run_labels(frame: pd.DataFrame) -> dict[str, str]:
    """A readable, unique name per run id: ``model (mode)``, plus the id when that repeats."""
    base = {r.run_id: f"{r.model} ({r.mode})" for r in frame.itertuples()}
    repeated = {v for v in base.values() if list(base.values()).count(v) > 1}
    return {k: (f"{v} · {k}" if v in repeated else v) for k, v in base.items()}


# ---------------------------------------------------------------- pure computations
def y_arrays(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(y_true, y_pred, y_score)`` as class indices and probabilities; ``y_pred`` is the argmax."""
    y_true = class_indices(predictions["label"])
    y_score = predictions[PROB_COLUMNS].to_numpy(dtype=float)
    y_pred = y_score.argmax(axis=1) if len(y_score) else np.zeros(0, dtype=np.int64)
    return y_true, y_pred, y_score


TABLE_ONE_METRICS = ("precision", "sensitivity", "specificity", "f1", "accuracy", "auc")
OVERALL_METRICS = ("accuracy", "error_rate")  # paper's accuracy is overall (trace / N)


def _quiet_table(y_true, y_pred, y_score, *, ci: bool, n_boot: int, groups=None) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined metrics are NaN and shown as "undefined"
        return metrics.classification_table(
            y_true, y_pred, y_score, ci=ci, n_boot=n_boot, groups=groups
        )


def _check_level(level: str) -> None:
    if level not in LEVELS:
        raise ValueError(f"level={level!r}; expected one of {', '.join(LEVELS)}")


def compute_metric_tables(
    predictions: pd.DataFrame,
    labels: dict[str, str],
    *,
    n_boot: int = N_BOOT,
    level: str = "case",
) -> pd.DataFrame:
    """``core.statistics.metrics.classification_table`` per run, stacked with ``run_id`` and ``model``.

    With ``level="image"`` the rows are images and the bootstrap resamples whole patients
    (``groups=case_id``): a patient's slices are not independent.

    Columns ``run_id, model, scope, metric, value, ci_low, ci_high``.
    """
    _check_level(level)
    parts = []
    for run_id, name in labels.items():
        rows = predictions[predictions["run_id"] == run_id]
        if rows.empty:
            continue
        groups = rows["case_id"].to_numpy() if level == "image" else None
        table = _quiet_table(*y_arrays(rows), ci=True, n_boot=n_boot, groups=groups)
        parts.append(table.assign(run_id=run_id, model=name))
    columns = ["run_id", "model", "scope", "metric", "value", "ci_low", "ci_high"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def table_one_rows(tables: pd.DataFrame, *, average: str = "macro") -> pd.DataFrame:
    """The rows behind Table 1: ``average`` scope per metric, overall scope for accuracy."""
    scope = np.where(tables["metric"].isin(OVERALL_METRICS), "overall", average)
    rows = tables[(tables["scope"] == scope) & tables["metric"].isin(TABLE_ONE_METRICS)]
    return rows


def table_one(tables: pd.DataFrame, *, average: str = "macro", digits: int = 3) -> pd.DataFrame:
    """The paper's Table 1: models as rows, metrics as columns, ``value (ci_low–ci_high)``."""
    rows = table_one_rows(tables, average=average)

    def fmt(r) -> str:
        if pd.isna(r.value):
            return "undefined"
        if pd.isna(r.ci_low):
            return f"{r.value:.{digits}f}"
        return f"{r.value:.{digits}f} ({r.ci_low:.{digits}f}–{r.ci_high:.{digits}f})"

    cells = rows.assign(text=[fmt(r) for r in rows.itertuples()])
    order = [m for m in TABLE_ONE_METRICS if m in set(rows["metric"])]
    wide = cells.pivot(index="model", columns="metric", values="text")
    return wide.reindex(index=list(dict.fromkeys(rows["model"])), columns=order)


def compute_confusions(predictions: pd.DataFrame, labels: dict[str, str]) -> dict[str, np.ndarray]:
    """``core.statistics.metrics.confusion_matrix`` per run id (rows true, columns predicted)."""
    out = {}
    for run_id in labels:
        rows = predictions[predictions["run_id"] == run_id]
        y_true, y_pred, _ = y_arrays(rows)
        out[run_id] = np.asarray(metrics.confusion_matrix(y_true, y_pred, n_classes=len(CLASSES)))
    return out


def compute_roc_curves(predictions: pd.DataFrame, labels: dict[str, str]) -> list[RocCurve]:
    """ROC curves (per class and macro) of every run, for one shared figure."""
    curves = []
    for run_id, name in labels.items():
        rows = predictions[predictions["run_id"] == run_id]
        if rows.empty:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            curves.extend(roc_curves_for_run(rows, run_id=run_id, name=name))
    return curves


def compute_fold_metrics(predictions: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Table 1 metrics (macro; overall accuracy) per run and fold, from ``classification_table``.

    Long: ``run_id, model, fold, metric, value``. A fold without some class gives NaN where the
    metric is undefined there.
    """
    parts = []
    for run_id, name in labels.items():
        rows = predictions[predictions["run_id"] == run_id]
        for fold, part in rows.groupby("fold", sort=True):
            table = _quiet_table(*y_arrays(part), ci=False, n_boot=2)
            picked = table_one_rows(table, average="macro")
            parts.append(picked.assign(run_id=run_id, model=name, fold=int(fold)))
    columns = ["run_id", "model", "fold", "metric", "value"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def fold_summary(per_fold: pd.DataFrame) -> pd.DataFrame:
    """Mean and SD over folds per model and metric (``core.statistics.metrics.per_fold_summary``)."""
    columns = ["model", "metric", "mean", "sd", "n_folds", "n_undefined"]
    if per_fold.empty:
        return pd.DataFrame(columns=columns)
    parts = [
        metrics.per_fold_summary(part[["metric", "value"]]).assign(model=name)
        for name, part in per_fold.groupby("model", sort=False)
    ]
    return pd.concat(parts, ignore_index=True)[columns]


# ---------------------------------------------------------------- cached loaders
def _key(run_ids) -> tuple[str, ...]:
    return tuple(sorted(map(str, run_ids)))


@st.cache_data(show_spinner=False, max_entries=64)
def load_predictions(run_ids: tuple[str, ...], version: str, level: str = "case") -> pd.DataFrame:
    """Out-of-fold predictions of the given runs, one row per case or per image (``level``).

    ``version`` only keys the cache.
    """
    _check_level(level)
    with connection() as conn:
        if level == "image":
            return db.image_predictions_frame(conn, list(run_ids))
        return db.predictions_frame(conn, list(run_ids))


def runs_with_predictions(
    run_ids: tuple[str, ...], labels: dict[str, str], version: str, *, level: str = "case"
) -> tuple[dict[str, str], list[str]]:
    """Split ``labels`` into runs with predictions at ``level`` and the names of those without.

    Runs made before per-image predictions were stored have none at image level.
    """
    present = set(load_predictions(_key(run_ids), version, level)["run_id"])
    have = {k: v for k, v in labels.items() if k in present}
    return have, [v for k, v in labels.items() if k not in present]


@st.cache_data(show_spinner="Computing metrics and bootstrap confidence intervals…", max_entries=32)
def load_metric_tables(
    run_ids: tuple[str, ...],
    labels: dict[str, str],
    version: str,
    n_boot: int = N_BOOT,
    level: str = "case",
) -> pd.DataFrame:
    def compute() -> pd.DataFrame:
        predictions = load_predictions(_key(run_ids), version, level)
        return compute_metric_tables(predictions, labels, n_boot=n_boot, level=level)

    chosen = json.dumps([run_ids, sorted(labels.items()), n_boot, level])
    return saved.remembered("runs", f"metric tables {chosen}|{version}", compute)


@st.cache_data(show_spinner=False, max_entries=32)
def load_confusions(
    run_ids: tuple[str, ...], labels: dict[str, str], version: str, level: str = "case"
) -> dict[str, np.ndarray]:
    return compute_confusions(load_predictions(_key(run_ids), version, level), labels)


@st.cache_data(show_spinner=False, max_entries=32)
def load_roc_curves(
    run_ids: tuple[str, ...], labels: dict[str, str], version: str, level: str = "case"
):
    return compute_roc_curves(load_predictions(_key(run_ids), version, level), labels)


@st.cache_data(show_spinner=False, max_entries=32)
def load_fold_metrics(run_ids: tuple[str, ...], labels: dict[str, str], version: str):
    return compute_fold_metrics(load_predictions(_key(run_ids), version), labels)


@st.cache_data(show_spinner=False, max_entries=8)
def load_cohort(version: str) -> dict:
    """Cases, image counts, the latest ingestion and its issues."""
    with connection() as conn:
        cases = db.cases_frame(conn)
        images = db.images_frame(conn)
        ingestion = db.latest_ingestion(conn)
        issues = (
            db.ingestion_issues_frame(conn, ingestion["ingestion_id"])
            if ingestion and "ingestion_id" in ingestion
            else pd.DataFrame()
        )
    return {"cases": cases, "images": images, "ingestion": ingestion, "issues": issues}


def cohort_version() -> str:
    """Changes when a new ingestion is recorded."""
    with connection() as conn:
        ingestion = db.latest_ingestion(conn)
    return str(sorted(ingestion.items())) if ingestion else "none"


# ---------------------------------------------------------------- overview tables
def cohort_counts(cases: pd.DataFrame, images: pd.DataFrame) -> pd.DataFrame:
    """Patients and images per class (and in total)."""
    per_case = cases.groupby("label")["case_id"].nunique()
    per_image = images.groupby("label")["image_id"].count()  # images_frame carries the label
    frame = pd.DataFrame(
        {
            "class": list(CLASSES),
            "patients": [int(per_case.get(c, 0)) for c in CLASSES],
            "images": [int(per_image.get(c, 0)) for c in CLASSES],
        }
    )
    total = pd.DataFrame({"class": ["all"], "patients": [len(cases)], "images": [len(images)]})
    return pd.concat([frame, total], ignore_index=True)


def cohort_site_counts(cases: pd.DataFrame) -> pd.DataFrame:
    """Patients per cohort and site (``-`` where the manifest named no site), per class too."""
    if cases.empty:
        return pd.DataFrame(columns=["cohort", "site", "patients", *CLASSES])
    frame = cases.assign(
        cohort=cases.get("cohort", pd.Series("internal", index=cases.index)).fillna("internal"),
        site=cases.get("site", pd.Series(None, index=cases.index)).fillna("-"),
    )
    table = pd.crosstab([frame["cohort"], frame["site"]], frame["label"])
    table = table.reindex(columns=list(CLASSES), fill_value=0)
    table.insert(0, "patients", table.sum(axis=1))
    return table.reset_index()


def case_cohort(case_id: str) -> dict:
    """``cohort`` and ``site`` of one case (``site`` None when the manifest named none)."""
    cases = load_cohort(cohort_version())["cases"].set_index("case_id")
    if case_id not in cases.index or "cohort" not in cases.columns:
        return {"cohort": None, "site": None}
    row = cases.loc[case_id]
    return {"cohort": row["cohort"], "site": None if pd.isna(row["site"]) else row["site"]}


def case_counts() -> pd.DataFrame:
    """Per run: cases predicted and how many are synthetic (``db.run_case_counts``)."""
    with connection() as conn:
        return db.run_case_counts(conn)


def case_flags() -> pd.DataFrame:
    """``case_id, synthetic`` of every case (the report labels synthetic data)."""
    return load_cohort(cohort_version())["cases"][["case_id", "synthetic"]]


def counts_from(predictions: pd.DataFrame, cases: pd.DataFrame | None) -> pd.DataFrame | None:
    """``run_id, n_cases, n_synthetic`` of the runs in ``predictions`` (None without ``cases``)."""
    if cases is None:
        return None
    flags = cases.set_index("case_id")["synthetic"].astype(int)
    rows = predictions.assign(synthetic=predictions["case_id"].map(flags).fillna(0))
    grouped = rows.groupby("run_id").agg(
        n_cases=("case_id", "nunique"), n_synthetic=("synthetic", "sum")
    )
    return grouped.reset_index()


def with_provenance(frame: pd.DataFrame, counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """``frame`` (``db.runs_frame`` rows) plus how each run's numbers were made, spelled out:
    ``weights_used`` (from the model's own record: ``auto`` may have fallen back to random),
    ``auc_macro_95ci`` (case level, from the run's summary), ``warnings`` as text and ``data``
    (synthetic or not)."""
    out = frame.copy()
    configs = out["config"] if "config" in out else [None] * len(out)
    requested = out["weights"] if "weights" in out else [None] * len(out)
    out["weights_used"] = [weights_used(c, w) for c, w in zip(configs, requested, strict=True)]
    out["auc_macro_95ci"] = [summary_auc(str(r)) for r in out["run_id"]]
    listed = out["warnings"] if "warnings" in out else [None] * len(out)
    out["warnings"] = [warnings_text(w if isinstance(w, list) else None) for w in listed]
    if counts is not None:
        by_run = counts.set_index("run_id")
        out["data"] = [
            synthetic_text(*by_run.loc[r, ["n_cases", "n_synthetic"]]) if r in by_run.index else ""
            for r in out["run_id"]
        ]
    return out


RUN_TABLE_COLUMNS = (
    "run_id", "status", "progress", "model", "mode", "weights_used", "auc_macro_95ci", "warnings",
    "data", "device", "duration_s", "n_folds", "n_predictions", "created_at", "message",
)  # fmt: skip


def runs_overview(frame: pd.DataFrame, counts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The runs table as shown: status, model, mode, the weights really used, macro AUC with
    its 95% CI, warnings spelled out, synthetic data, device and duration; empty cells blank."""
    out = with_provenance(frame, counts)
    if {"started_at", "ended_at"} <= set(out.columns):
        start = pd.to_datetime(out["started_at"], errors="coerce", utc=True, format="ISO8601")
        end = pd.to_datetime(out["ended_at"], errors="coerce", utc=True, format="ISO8601")
        out["duration_s"] = (end - start).dt.total_seconds().round(1)
    out = out[[c for c in RUN_TABLE_COLUMNS if c in out.columns]]
    text = [c for c in out.columns if out[c].dtype == object]
    out[text] = out[text].fillna("")
    return out


def provenance_notes(frame: pd.DataFrame, labels: dict[str, str]) -> list[tuple[str, str]]:
    """One line per run saying how its numbers were made, and each run's warnings:
    ``[("caption" | "warning", text), ...]`` for the header of a results page."""
    notes = []
    for row in with_provenance(frame).itertuples():
        name = labels.get(row.run_id, row.run_id)
        config = row.config if isinstance(getattr(row, "config", None), dict) else {}
        folds = config.get("n_folds", "?")
        notes.append(
            (
                "caption",
                f"{name}: run {row.run_id}, {folds}-fold cross-validation grouped by patient, "
                f"seed {row.seed}, backbone weights: {row.weights_used or 'not recorded'}, "
                f"code {str(getattr(row, 'code_version', '') or 'unknown')[:12]}.",
            )
        )
        if row.weights_used == RANDOM_WEIGHTS:
            notes.append(("warning", f"{name}: the backbone was randomly initialised, not "
                          "pretrained: its numbers do not show what pretrained weights give."))  # fmt: skip
        if row.warnings:
            notes.append(("warning", f"{name}: {row.warnings}"))
    return notes


@st.cache_data(show_spinner=False, max_entries=64)
def load_case_images(case_id: str, version: str) -> pd.DataFrame:
    """The images (slices, ROI, crop cache position) of one case."""
    with connection() as conn:
        return db.images_frame(conn, case_id)


def case_probabilities(predictions: pd.DataFrame, case_id: str, labels: dict[str, str]):
    """Every run's out-of-fold probabilities for one case, one row per model."""
    rows = predictions[predictions["case_id"] == case_id].copy()
    rows["model"] = rows["run_id"].map(labels)
    return rows[["model", "run_id", "fold", *PROB_COLUMNS]].reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=16)
def load_figures(
    run_ids: tuple[str, ...], labels: dict[str, str], version: str, level: str = "case"
) -> dict:
    """The results page's figures, built once per run set (Plotly figure building is slow).

    ``{"roc": Figure, "confusion": {run_id: (counts, row_normalised)}, "folds": Figure,
    "fold_summary": DataFrame}``. ROC curves and confusion matrices are per ``level``; the
    per-fold metrics stay per case.
    """
    key = _key(run_ids)
    confusions = load_confusions(key, labels, version, level)
    per_fold = load_fold_metrics(key, labels, version)
    return {
        "roc": figures.roc_figure(load_roc_curves(key, labels, version, level)),
        "confusion": {
            run_id: tuple(
                figures.confusion_figure(
                    confusions[run_id],
                    normalise=normalise,
                    title=f"{name}: {'row-normalised' if normalise else 'counts'} per {level}",
                    run_id=run_id,
                )
                for normalise in (False, True)
            )
            for run_id, name in labels.items()
        },
        "folds": figures.fold_metrics_figure(per_fold),
        "fold_summary": fold_summary(per_fold),
    }


# ---------------------------------------------------------------- calibration and training
def compute_calibration(
    predictions: pd.DataFrame, labels: dict[str, str], *, n_boot: int = N_BOOT, level="case"
) -> dict[str, pd.DataFrame]:
    """Brier score and ECE (95% CIs resampling patients) and reliability points per run.

    ``{"scores": model, scope, metric, value, ci_low, ci_high;
    "reliability": model, class, bin, mean_predicted, observed, count}``.
    """
    from core.statistics import calibration

    _check_level(level)
    scores, points = [], []
    for run_id, name in labels.items():
        rows = predictions[predictions["run_id"] == run_id]
        if rows.empty:
            continue
        y_true, _, y_score = y_arrays(rows)
        groups = rows["case_id"].to_numpy() if level == "image" else None
        summary = calibration.calibration_summary(y_true, y_score, groups=groups, n_boot=n_boot)
        scores.append(summary.assign(model=name))
        points.append(calibration.reliability_table(y_true, y_score).assign(model=name))
    if not scores:
        return {"scores": pd.DataFrame(), "reliability": pd.DataFrame()}
    return {"scores": pd.concat(scores, ignore_index=True), "reliability": pd.concat(points)}


def calibration_table(scores: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Models as rows; Brier and ECE (macro and per class) as ``value (low–high)`` columns."""
    text = [
        f"{r.value:.{digits}f}"
        + ("" if pd.isna(r.ci_low) else f" ({r.ci_low:.{digits}f}–{r.ci_high:.{digits}f})")
        for r in scores.itertuples()
    ]
    cells = scores.assign(column=scores["metric"] + " " + scores["scope"], text=text)
    order = list(dict.fromkeys(cells["column"]))
    wide = cells.pivot(index="model", columns="column", values="text")
    return wide.reindex(index=list(dict.fromkeys(cells["model"])), columns=order)


def compute_training_curves(folds: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Per-epoch losses stored with each fold of fine-tuning runs, long:
    ``run_id, model, fold, epoch, train_loss, val_loss`` (empty for features-mode runs)."""
    rows = [
        {"run_id": r.run_id, "model": labels.get(r.run_id, r.run_id), "fold": int(r.fold), **e}
        for r in folds.itertuples()
        for e in (r.metrics or {}).get("history") or []
    ]
    columns = ["run_id", "model", "fold", "epoch", "train_loss", "val_loss"]
    return pd.DataFrame(rows, columns=columns)


@st.cache_data(show_spinner="Calibration and its bootstrap CIs…", max_entries=32)
def load_calibration(
    run_ids: tuple[str, ...], labels: dict[str, str], version: str, level: str = "case"
) -> dict:
    """``compute_calibration`` of the runs' predictions, with the reliability figure (kept in
    the database too: the bootstrap is the slow part of the CV results page)."""

    def compute() -> dict:
        found = compute_calibration(
            load_predictions(_key(run_ids), version, level), labels, level=level
        )
        if not found["scores"].empty:
            found["figure"] = figures.reliability_figure(found["reliability"])
            found["table"] = calibration_table(found["scores"])
        return found

    chosen = json.dumps([run_ids, sorted(labels.items()), level])
    return saved.remembered("runs", f"calibration {chosen}|{version}", compute)


@st.cache_data(show_spinner=False, max_entries=32)
def load_training_curves(run_ids: tuple[str, ...], labels: dict[str, str], version: str):
    """The per-epoch losses of the runs' folds and their figure (None when there are none)."""
    with connection() as conn:
        curves = compute_training_curves(db.folds_frame(conn, list(run_ids)), labels)
    return curves, (figures.training_curves_figure(curves) if len(curves) else None)


POOLED_VS_FOLDS = (
    "Pooled: computed once over every out-of-fold prediction together. Per-fold mean: the "
    "metric in each fold, then averaged, so a small fold (few ASC cases) counts as much as a "
    "large one and each fold's scores are ranked only among themselves; the two can therefore "
    "differ, and even order the models differently."
)


def pooled_vs_folds(tables: pd.DataFrame, summary: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Per model and Table 1 metric (macro; accuracy overall): the pooled value beside the mean
    and SD over folds, as text (blank where undefined)."""
    pooled = table_one_rows(tables, average="macro")[["model", "metric", "value"]]
    both = pooled.merge(summary, on=["model", "metric"], how="outer")

    def fmt(v) -> str:
        return "" if pd.isna(v) else f"{v:.{digits}f}"

    return pd.DataFrame(
        {
            "model": both["model"],
            "metric": both["metric"],
            "pooled": [fmt(v) for v in both["value"]],
            "per-fold mean ± SD": [
                "" if pd.isna(m) else f"{m:.{digits}f} ± {fmt(s) or '–'}"
                for m, s in zip(both["mean"], both["sd"], strict=True)
            ],
        }
    )


# ---------------------------------------------------------------- repeated cross-validation
def repeat_runs(frame: pd.DataFrame, chosen) -> pd.DataFrame:
    """The finished runs of every repeat group that one of the ``chosen`` runs belongs to."""
    if "repeat_group" not in frame:
        return frame.iloc[:0]
    groups = frame.loc[frame["run_id"].isin(list(chosen)), "repeat_group"].dropna().unique()
    return frame[frame["repeat_group"].isin(groups) & (frame["status"] == "done")]


def compute_repeat_table(predictions: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Each repeat's pooled metrics and their mean and spread (``core.learning.repeats``)."""
    from core.learning.repeats import repeat_metrics, repeat_table

    return repeat_table(repeat_metrics(predictions, runs))


@st.cache_data(show_spinner=False, max_entries=32)
def load_repeat_table(run_ids: tuple[str, ...], version: str) -> pd.DataFrame:
    """``compute_repeat_table`` for these runs (all repeats of their groups); ``version`` keys."""
    with connection() as conn:
        frame = db.runs_frame(conn)
        predictions = db.predictions_frame(conn, list(run_ids))
    return compute_repeat_table(predictions, frame[frame["run_id"].isin(list(run_ids))])
