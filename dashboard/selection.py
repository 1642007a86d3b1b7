"""From a chart selection to the cases behind it: pure functions, no Streamlit, tested directly.

Predictions are out-of-fold rows as ``db.predictions_frame`` returns them: one row per run and
case with ``run_id, case_id, fold, label, p_SCC, p_AC, p_ASC``. A case's predicted class is the
class with the highest probability (ties go to the first class, as ``numpy.argmax`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.data.labels import CLASSES

PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in CLASSES)


def _check_columns(predictions: pd.DataFrame, needed: Sequence[str]) -> None:
    missing = [c for c in needed if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"predictions lack column(s) {', '.join(missing)}; have {', '.join(predictions.columns)}"
        )


def _class_name(value: str | int) -> str:
    if isinstance(value, (int, np.integer)):
        if not 0 <= int(value) < len(CLASSES):
            raise ValueError(f"class index {value} is out of range: expected 0..{len(CLASSES) - 1}")
        return CLASSES[int(value)]
    if value not in CLASSES:
        raise ValueError(f"unknown class {value!r}: expected one of {', '.join(CLASSES)}")
    return str(value)


def with_outcome(predictions: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``predicted`` (class name), ``confidence`` (its probability) and ``correct``."""
    _check_columns(predictions, ("label", *PROB_COLUMNS))
    out = predictions.copy()
    probs = out[list(PROB_COLUMNS)].to_numpy(dtype=float)
    if len(out):
        top = probs.argmax(axis=1)
        out["predicted"] = np.asarray(CLASSES, dtype=object)[top]
        out["confidence"] = probs[np.arange(len(out)), top]
    else:
        out["predicted"] = pd.Series(dtype=object)
        out["confidence"] = pd.Series(dtype=float)
    out["correct"] = out["predicted"] == out["label"]
    return out


def cases_for_confusion_cell(
    predictions: pd.DataFrame,
    true_class: str | int,
    predicted_class: str | int,
    *,
    run_id: str | None = None,
) -> pd.DataFrame:
    """The cases of one confusion-matrix cell: true label ``true_class``, predicted ``predicted_class``.

    ``run_id`` restricts the rows to one run when ``predictions`` holds several. Returns the
    matching rows (with ``predicted``, ``confidence``, ``correct``), most confident first.
    """
    true_name, pred_name = _class_name(true_class), _class_name(predicted_class)
    rows = with_outcome(_one_run(predictions, run_id))
    hit = rows[(rows["label"] == true_name) & (rows["predicted"] == pred_name)]
    return hit.sort_values(["confidence", "case_id"], ascending=[False, True]).reset_index(
        drop=True
    )


def cases_for_roc_point(
    predictions: pd.DataFrame,
    class_index: int,
    threshold: float,
    *,
    run_id: str | None = None,
) -> pd.DataFrame:
    """The cases called positive for one class at one ROC threshold (score >= ``threshold``).

    These are exactly the true and false positives behind the point's TPR and FPR. The result has
    an ``outcome`` column ("true positive" or "false positive") and a ``score`` column (the
    probability of class ``class_index``), highest score first.
    """
    name = _class_name(int(class_index))
    rows = with_outcome(_one_run(predictions, run_id))
    score = rows[f"p_{name}"].astype(float)
    hit = rows[score >= float(threshold)].copy()
    hit["score"] = hit[f"p_{name}"].astype(float)
    hit["outcome"] = np.where(hit["label"] == name, "true positive", "false positive")
    return hit.sort_values(["score", "case_id"], ascending=[False, True]).reset_index(drop=True)


def _one_run(predictions: pd.DataFrame, run_id: str | None) -> pd.DataFrame:
    if run_id is None:
        return predictions
    _check_columns(predictions, ("run_id",))
    rows = predictions[predictions["run_id"] == run_id]
    if rows.empty and len(predictions):
        known = ", ".join(sorted(map(str, predictions["run_id"].unique())))
        raise ValueError(f"run {run_id!r} has no predictions here; runs present: {known}")
    return rows


def selected_points(event: Any) -> list[Mapping[str, Any]]:
    """The selected points of a ``st.plotly_chart(on_select="rerun")`` event (or its session value)."""
    if not event:
        return []
    try:
        selection = event["selection"]
        points = selection["points"]
    except (KeyError, TypeError, AttributeError):
        return []
    return list(points or [])


def confusion_cells(event: Any) -> list[tuple[str, str, str]]:
    """``(run_id, true_class, predicted_class)`` for each selected confusion-matrix marker."""
    cells = []
    for point in selected_points(event):
        data = point.get("customdata")
        if data is not None and len(data) >= 3:
            cells.append((str(data[0]), str(data[1]), str(data[2])))
    return list(dict.fromkeys(cells))


def roc_points(event: Any) -> list[tuple[str, int, float]]:
    """``(run_id, class_index, threshold)`` for each selected ROC-curve marker."""
    found = []
    for point in selected_points(event):
        data = point.get("customdata")
        if data is not None and len(data) >= 3 and data[2] is not None:
            found.append((str(data[0]), int(data[1]), float(data[2])))
    return list(dict.fromkeys(found))


def cases_for_event(
    predictions: pd.DataFrame, *, confusion_event: Any = None, roc_event: Any = None
) -> pd.DataFrame:
    """All cases behind the selected confusion cells and ROC points, one row per (run, case).

    The ``selected_by`` column says which selection brought each row in.
    """
    parts = []
    for run_id, true_name, pred_name in confusion_cells(confusion_event):
        rows = cases_for_confusion_cell(predictions, true_name, pred_name, run_id=run_id)
        parts.append(rows.assign(selected_by=f"true {true_name}, predicted {pred_name}"))
    for run_id, class_index, threshold in roc_points(roc_event):
        rows = cases_for_roc_point(predictions, class_index, threshold, run_id=run_id)
        label = f"{CLASSES[class_index]} score >= {threshold:.3f}"
        parts.append(rows.assign(selected_by=label))
    if not parts:
        return with_outcome(predictions.iloc[0:0]).assign(selected_by=pd.Series(dtype=object))
    found = pd.concat(parts, ignore_index=True)
    return found.drop_duplicates(subset=["run_id", "case_id"]).reset_index(drop=True)


def filter_cases(
    predictions: pd.DataFrame,
    *,
    true_classes: Sequence[str] | None = None,
    predicted_classes: Sequence[str] | None = None,
    correct: bool | None = None,
    confidence: tuple[float, float] = (0.0, 1.0),
    folds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """The case browser's filters; ``None`` (or an empty list) means no filter on that field.

    ``confidence`` is the inclusive range of the predicted class's probability.
    """
    rows = with_outcome(predictions)
    keep = rows["confidence"].between(float(confidence[0]), float(confidence[1]))
    if true_classes:
        keep &= rows["label"].isin([_class_name(c) for c in true_classes])
    if predicted_classes:
        keep &= rows["predicted"].isin([_class_name(c) for c in predicted_classes])
    if correct is not None:
        keep &= rows["correct"] == bool(correct)
    if folds:
        keep &= rows["fold"].isin([int(f) for f in folds])
    return rows[keep].reset_index(drop=True)


PAGE_SIZE = 100  # cases per page of the case browser: the browser gets one page, not every row
SORTS = {
    "case": ("case_id", True),
    "confidence, lowest first": ("confidence", True),
    "confidence, highest first": ("confidence", False),
    "fold": ("fold", True),
}


def search_cases(rows: pd.DataFrame, text: str) -> pd.DataFrame:
    """Cases whose case ID contains ``text`` (case-insensitive, literal); all when it is blank."""
    text = str(text or "").strip()
    if not text:
        return rows
    keep = rows["case_id"].astype(str).str.contains(text, case=False, regex=False)
    return rows[keep].reset_index(drop=True)


def sort_cases(rows: pd.DataFrame, sort: str) -> pd.DataFrame:
    """Rows in one of the :data:`SORTS` orders, ties by case ID (a stable, repeatable order)."""
    if sort not in SORTS:
        raise ValueError(f"sort {sort!r} is not one of {', '.join(SORTS)}")
    column, ascending = SORTS[sort]
    keys = [column, "case_id"] if column != "case_id" else ["case_id"]
    return rows.sort_values(
        keys, ascending=[ascending, True][: len(keys)], kind="stable"
    ).reset_index(drop=True)


def n_pages(n_rows: int, size: int = PAGE_SIZE) -> int:
    return max(1, -(-int(n_rows) // int(size)))


def page_of(rows: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> pd.DataFrame:
    """Rows of 1-based ``page`` (clamped to the pages there are)."""
    page = min(max(int(page), 1), n_pages(len(rows), size))
    return rows.iloc[(page - 1) * size : page * size]


def page_holding(rows: pd.DataFrame, case_id, size: int = PAGE_SIZE) -> int | None:
    """The 1-based page on which ``case_id`` is, or None."""
    hits = rows.index[rows["case_id"] == case_id]
    return None if not len(hits) else int(rows.index.get_loc(hits[0])) // size + 1


def default_runs(runs: pd.DataFrame) -> list[str]:
    """The runs a results page opens on: every run of the newest complete comparison (all its
    runs ``done``), else the newest finished run (``done`` or ``partial``), else none.

    ``runs`` is ``db.runs_frame`` (newest first): ``run_id, status, comparison_id, created_at``.
    A single run started later does not displace the comparison: comparing models is the point.
    """
    if runs.empty:
        return []
    ordered = runs.sort_values("created_at", ascending=False, kind="stable")
    grouped = (
        ordered.dropna(subset=["comparison_id"]) if "comparison_id" in ordered else ordered[:0]
    )
    for _, group in grouped.groupby("comparison_id", sort=False):
        if len(group) > 1 and (group["status"] == "done").all():
            return list(group["run_id"])
    finished = ordered[ordered["status"].isin(["done", "partial"])]
    return list(finished["run_id"][:1])
