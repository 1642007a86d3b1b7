"""Internal cross-validation beside external validation, for the results page and the report.

Every number comes from the same ``dashboard.loaders.compute_*`` functions the rest of the
results page uses (``core.statistics`` underneath), applied to two prediction sets of one run:
its out-of-fold predictions (``db.predictions_frame``) and the per-case predictions of one stored
external validation (``db.validation_predictions``). One row is one patient, so every bootstrap
CI resamples patients. torch never loads here: running a validation starts ``cervixscope
validate`` in a child process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

import db
from core.data.labels import CLASSES
from core.learning.validation import PROBABILITY_COLUMNS, VALIDATION_MODELS, per_site_tables
from dashboard import figures, loaders
from dashboard.figures import PROB_COLUMNS
from dashboard.store import connection

INTERNAL, EXTERNAL = "internal", "external"
ROOT = Path(__file__).resolve().parents[1]
VALIDATE_TIMEOUT_S = 1800


def validations(run_id: str) -> pd.DataFrame:
    """The stored validations of one run, newest first (``db.validations_frame``)."""
    with connection() as conn:
        return db.validations_frame(conn, run_id)


def _as_predictions(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    """Validation rows (class indices, ``p_scc``...) in the results page's shape."""
    out = pd.DataFrame({"run_id": key, "case_id": frame["case_id"].astype(str)})
    out["label"] = [CLASSES[int(i)] for i in frame["label"]]
    for name, column in zip(PROB_COLUMNS, PROBABILITY_COLUMNS, strict=True):
        out[name] = frame[column].to_numpy(dtype=float)
    return out


def compute_side_by_side(
    internal: pd.DataFrame, external: pd.DataFrame, cohort: str, *, n_boot: int = loaders.N_BOOT
) -> dict:
    """Metrics with patient-level CIs, ROC, confusion matrices and calibration of both sets.

    Parameters
    ----------
    internal : DataFrame
        One run's out-of-fold predictions (``db.predictions_frame``).
    external : DataFrame
        One validation's predictions (``db.validation_predictions``).
    cohort : str

    Returns
    -------
    dict
        ``labels``, ``tables`` (long metric tables), ``table_one``, ``roc`` (Figure),
        ``confusion`` ({key: Figure}), ``calibration`` (table) and ``reliability`` (Figure),
        ``sites`` (per-site metrics of the external cohort).
    """
    keep = internal[["case_id", "label", *PROB_COLUMNS]].assign(run_id=INTERNAL)
    frame = pd.concat([keep, _as_predictions(external, EXTERNAL)], ignore_index=True)
    labels = {INTERNAL: "internal CV (out-of-fold)", EXTERNAL: f"external: {cohort}"}
    tables = loaders.compute_metric_tables(frame, labels, n_boot=n_boot)
    confusions = loaders.compute_confusions(frame, labels)
    calibration = loaders.compute_calibration(frame, labels, n_boot=n_boot)
    return {
        "labels": labels,
        "tables": tables,
        "table_one": loaders.table_one(tables),
        "roc": figures.roc_figure(loaders.compute_roc_curves(frame, labels)),
        "confusion": {
            key: figures.confusion_figure(confusions[key], title=f"{name}: counts per case")
            for key, name in labels.items()
        },
        "calibration": loaders.calibration_table(calibration["scores"]),
        "reliability": figures.reliability_figure(calibration["reliability"]),
        "sites": site_table(external, n_boot=n_boot),
    }


def site_table(external: pd.DataFrame, *, n_boot: int = loaders.N_BOOT) -> pd.DataFrame:
    """Per site: cases, overall accuracy and macro AUC as ``value (low–high)``."""
    rows = []
    for site, found in per_site_tables(external, n_boot=n_boot).items():
        table = found["metrics"].set_index(["scope", "metric"])
        row = {"site": site, "cases": found["n_cases"]}
        for key, name in ((("overall", "accuracy"), "accuracy"), (("macro", "auc"), "macro AUC")):
            value, low, high = table.loc[key, ["value", "ci_low", "ci_high"]]
            row[name] = "undefined" if np.isnan(value) else f"{value:.3f} ({low:.3f}–{high:.3f})"
        rows.append(row)
    return pd.DataFrame(rows, columns=["site", "cases", "accuracy", "macro AUC"])


def shift_table(shift) -> pd.DataFrame:
    """The stored shift checks as a table: check, differs (yes/no), detail."""
    rows = [
        {"check": c["check"], "differs": "yes" if c["flagged"] else "no", "detail": c["detail"]}
        for c in shift or []
    ]
    return pd.DataFrame(rows, columns=["check", "differs", "detail"])


@st.cache_data(show_spinner="External validation metrics and bootstrap CIs…", max_entries=16)
def load_side_by_side(run_id: str, validation_id: int, version: str) -> dict:
    """``compute_side_by_side`` of a run and one of its validations (``version`` keys the cache)."""
    with connection() as conn:
        internal = db.predictions_frame(conn, [run_id])
        external = db.validation_predictions(conn, int(validation_id))
        row = db.validations_frame(conn, run_id).set_index("validation_id").loc[int(validation_id)]
    found = compute_side_by_side(internal, external, row["cohort"])
    found["shift"] = shift_table(row["shift"])
    found["source"] = (row["provenance"] or {}).get("source", row["model"])
    return found


def run_validation(run_id: str, folder: str, cohort: str, model: str) -> tuple[bool, str]:
    """Run ``cervixscope validate`` in a child process (torch stays out of the server).

    Returns
    -------
    (bool, str)
        Whether it worked, and its printed summary or its one-line error.
    """
    if model not in VALIDATION_MODELS:
        return False, f"model {model!r} is not one of {', '.join(VALIDATION_MODELS)}"
    if not str(folder).strip():
        return False, "give the external cohort's folder"
    argv = [sys.executable, "-m", "core.cli", "-q", "validate", "--run", run_id]
    argv += ["--data", str(folder).strip(), "--cohort", cohort.strip() or "external"]
    argv += ["--model", model]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=VALIDATE_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False, f"validation took over {VALIDATE_TIMEOUT_S} s and was stopped"
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return False, lines[-1] if lines else f"validation failed (exit {done.returncode})"
    return True, done.stdout.strip()


def validation_label(frame: pd.DataFrame, validation_id) -> str:
    """``#3 external (ensemble, 40 cases, 2026-11-29 05:20)`` for a picker."""
    row = frame.set_index("validation_id").loc[validation_id]
    return (
        f"#{validation_id} {row['cohort']} ({row['model']}, {row['n_cases']} cases, "
        f"{str(row['created_at'])[:16].replace('T', ' ')})"
    )


def validated_first(run_ids) -> list[str]:
    """``run_ids`` with the ones that have a stored validation first (newest validation first)."""
    with connection() as conn:
        stored = db.validations_frame(conn)
    order = list(dict.fromkeys(r for r in stored["run_id"] if r in set(run_ids)))
    return order + [r for r in run_ids if r not in order]


def latest_validations(run_ids) -> list[dict]:
    """The newest validation of each run that has one, with its predictions, for the report:
    dicts of ``run_id, cohort, model, source, shift, predictions``."""
    found = []
    with connection() as conn:
        stored = db.validations_frame(conn)
        for run_id in run_ids:
            mine = stored[stored["run_id"] == run_id]
            if mine.empty:
                continue
            row = mine.iloc[0]  # newest first
            found.append(
                {
                    "run_id": run_id,
                    "cohort": row["cohort"],
                    "model": row["model"],
                    "source": (row["provenance"] or {}).get("source", row["model"]),
                    "shift": row["shift"],
                    "predictions": db.validation_predictions(conn, int(row["validation_id"])),
                }
            )
    return found


def internal_site_table(run_id: str, *, n_boot: int = loaders.N_BOOT) -> pd.DataFrame:
    """Per site of the run's own cases (sites recorded at ingestion): cases, accuracy and macro
    AUC of its out-of-fold predictions with patient-level 95% CIs; empty when no case has a site."""
    with connection() as conn:
        oof = db.predictions_frame(conn, [run_id])
        sites = db.cases_frame(conn).set_index("case_id")["site"]
    site = oof["case_id"].map(sites)
    if site.isna().all():
        return pd.DataFrame(columns=["site", "cases", "accuracy", "macro AUC"])
    frame = pd.DataFrame({"case_id": oof["case_id"], "site": site})
    frame["label"] = oof["label"].map({name: i for i, name in enumerate(CLASSES)})
    for name, column in zip(PROB_COLUMNS, PROBABILITY_COLUMNS, strict=True):
        frame[column] = oof[name].to_numpy(dtype=float)
    frame["predicted"] = frame[list(PROBABILITY_COLUMNS)].to_numpy().argmax(1)
    return site_table(frame, n_boot=n_boot)
