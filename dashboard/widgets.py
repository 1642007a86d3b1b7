"""Widgets shared by the researcher pages: run picker, metrics table, the case viewer, Grad-CAM."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core.annotation import marks as annotation_marks
from core.data.labels import CLASSES
from core.reader_study import heatmaps, viewer_data, viewing
from dashboard import loaders, safe_text, selection, store
from dashboard.viewer import KEY_LEGEND, image_viewer

NO_RUNS_HELP = (
    "No cross-validation runs are in the database yet. Start one on **Run a cross-validation**, "
    "or from a shell: `make demo` (demo cohort and the three-model comparison) or "
    "`cervixscope cv --data DIR`."
)


def no_runs_message(runs: pd.DataFrame | None = None) -> None:
    """Explain the empty state: no runs at all, or none finished yet."""
    if runs is not None and not runs.empty:
        counts = runs["status"].value_counts().to_dict()
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        st.info(
            f"No finished run yet ({summary}). Results appear here when a run is done: follow "
            "it on **Run a cross-validation**, or start one there, with `make demo` or with "
            "`cervixscope cv --data DIR`."
        )
        return
    st.info(NO_RUNS_HELP)


def finished_runs_or_stop() -> pd.DataFrame:
    """All runs, or stop the page with an explanation when none has finished (or on an error)."""
    try:
        runs = loaders.runs()
    except Exception as exc:  # a broken or locked database file: say so, no traceback
        st.error(str(exc))
        st.stop()
    if runs.empty or not runs["status"].isin(["done", "partial"]).any():
        no_runs_message(runs)
        st.stop()
    return runs


def study_picker(studies: pd.DataFrame, *, newest_with_reads: bool = False) -> int:
    """Choose a study; the choice is shared by the study pages (kept in a plain session key).
    Until one is chosen: the newest study, or with ``newest_with_reads`` the newest that has
    reads, if any (an analysis of a study nobody has read yet shows nothing)."""
    ids = studies["study_id"].astype(int).tolist()
    names = dict(zip(ids, studies["name"], strict=True))
    read = studies.loc[studies["n_reads"] > 0, "study_id"].astype(int).tolist()
    default = read[-1] if newest_with_reads and read else ids[-1]
    remembered = st.session_state.get("admin_study", default)
    study_id = st.selectbox(
        "Study",
        ids,
        index=ids.index(remembered) if remembered in ids else ids.index(default),
        format_func=lambda i: f"{i} · {names[i]}",
    )
    st.session_state["admin_study"] = study_id
    return study_id


def run_picker(
    runs: pd.DataFrame,
    *,
    key: str,
    multi: bool = True,
    statuses=("done", "partial"),
    preferred: str | None = None,
) -> list[str]:
    """Choose finished runs; the choice survives page switches (kept in a plain session key).

    Defaults to ``preferred``, else the last choice, else the newest comparison (its runs share
    ``comparison_id``), else the newest run.
    """
    usable = runs[runs["status"].isin(statuses)] if "status" in runs else runs
    if usable.empty:
        return []
    labels = loaders.run_labels(usable)
    options = list(usable["run_id"])
    memory = f"_{key}_chosen"  # widget keys are dropped on page switch; this one is not
    remembered = [r for r in st.session_state.get(memory, []) if r in options]
    if preferred in options:
        remembered = [preferred] if not multi else list(dict.fromkeys([*remembered, preferred]))
        st.session_state.pop(key, None)  # let the default apply
    if not remembered:
        first = usable.iloc[0]
        group = first.get("comparison_id") if "comparison_id" in usable else None
        if group is not None and not pd.isna(group):
            remembered = list(usable.loc[usable["comparison_id"] == group, "run_id"])
        else:
            remembered = [first["run_id"]]

    def fmt(run_id: str) -> str:
        return f"{labels[run_id]} · {run_id}" if labels[run_id].find(run_id) < 0 else labels[run_id]

    if multi:
        chosen = st.multiselect("Runs", options, default=remembered, format_func=fmt, key=key)
    else:
        index = options.index(remembered[0]) if remembered else 0
        chosen = [st.selectbox("Run", options, index=index, format_func=fmt, key=key)]
    st.session_state[memory] = list(chosen)
    return list(chosen)


def case_filters(predictions: pd.DataFrame) -> pd.DataFrame:
    """The case browser's filter row; returns the matching cases (``selection.filter_cases``)."""
    c1, c2, c3, c4, c5 = st.columns([2, 2, 1.3, 2, 2])
    true_classes = c1.multiselect("True class", CLASSES, key="f_true")
    predicted = c2.multiselect("Predicted class", CLASSES, key="f_pred")
    outcome = c3.selectbox("Outcome", ["all", "correct", "wrong"], key="f_outcome")
    confidence = c4.slider("Confidence", 0.0, 1.0, (0.0, 1.0), 0.01, key="f_conf")
    folds = c5.multiselect("Fold", sorted(predictions["fold"].unique().tolist()), key="f_fold")
    return selection.filter_cases(
        predictions,
        true_classes=true_classes,
        predicted_classes=predicted,
        correct={"all": None, "correct": True, "wrong": False}[outcome],
        confidence=confidence,
        folds=folds,
    )


def case_page(shown: pd.DataFrame, wanted=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Search, order and page the filtered cases on the server: only one page goes to the
    browser. Returns (every matching case in order, the page shown); a ``wanted`` case (handed
    over from another page) opens its page."""
    c1, c2, c3 = st.columns([3, 2, 1.2])
    text = c1.text_input("Case ID contains", key="f_case_text")
    sort = c2.selectbox("Sort by", list(selection.SORTS), key="f_sort")
    rows = selection.sort_cases(selection.search_cases(shown, text), sort)
    pages = selection.n_pages(len(rows))
    asked = (text, sort, len(shown), len(rows))
    if st.session_state.get("f_page_for") != asked:  # another search: back to its first page
        st.session_state["f_page_for"] = asked
        st.session_state["f_page"] = 1
    holding = selection.page_holding(rows, wanted) if wanted is not None else None
    if holding is not None:
        st.session_state["f_page"] = holding
    number = c3.number_input(f"Page (of {pages})", 1, pages, key="f_page")
    page = selection.page_of(rows, number)
    first = (int(number) - 1) * selection.PAGE_SIZE
    st.caption(
        f"Cases {first + 1 if len(page) else 0}-{first + len(page)} of {len(rows):,} matching "
        f"({len(shown):,} after the filters above)"
    )
    return rows, page


def probability_table(frame: pd.DataFrame) -> None:
    """Every model's out-of-fold probabilities for one case (3 decimals)."""
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        frame,
        hide_index=True,
        column_config={"run_id": None, **{c: number for c in ("p_SCC", "p_AC", "p_ASC")}},
        key="case_probs",
    )


def metrics_table(tables: pd.DataFrame, model: str) -> None:
    """One model's ``classification_table`` rows: value and 95% CI per class and average."""
    rows = tables[tables["model"] == model][
        ["model", "scope", "metric", "value", "ci_low", "ci_high"]
    ]
    number = st.column_config.NumberColumn(format="%.3f")
    st.dataframe(
        rows.reset_index(drop=True),
        hide_index=True,
        column_config={"value": number, "ci_low": number, "ci_high": number},
        key=f"metrics_{model}",
    )


CASE_BROWSER = "../pages/case_browser.py"  # relative to dashboard/app.py, the entry script


def open_in_case_browser(case_id: str, run_id: str | None = None) -> None:
    """Hand a case to the case browser (plain session keys survive the page switch) and go."""
    st.session_state["browse_case"] = case_id
    if run_id:
        st.session_state["browse_run"] = run_id
    st.switch_page(CASE_BROWSER)


def selected_cases(predictions: pd.DataFrame, confusion_events: list, roc_event) -> None:
    """The cases behind the clicked confusion cells and ROC points, one click from the browser."""
    parts = [selection.cases_for_event(predictions, confusion_event=e) for e in confusion_events]
    parts.append(selection.cases_for_event(predictions, roc_event=roc_event))
    found = pd.concat([p for p in parts if not p.empty] or parts[:1], ignore_index=True)
    if found.empty:
        return
    found = found.drop_duplicates(subset=["run_id", "case_id", "selected_by"])
    st.subheader(f"Selected cases ({found['case_id'].nunique()})")
    shown = ["case_id", "run_id", "fold", "label", "predicted", "confidence", "selected_by"]
    st.dataframe(found[[c for c in shown if c in found]], hide_index=True, key="selected_cases")
    options = list(dict.fromkeys(zip(found["case_id"], found["run_id"], strict=True)))
    pick = st.selectbox(
        "Case", options, format_func=lambda o: f"{o[0]} ({o[1]})", key="selected_case_pick"
    )
    if st.button("Open in case browser", key="open_selected_case"):
        open_in_case_browser(*pick)


def case_viewer(case_id: str, *, key: str) -> np.ndarray | None:
    """Every slice of a case in the shared image viewer, its crop beside; returns the crop."""
    with store.connection() as conn:
        shown = viewing.case_image(conn, case_id)
    if "slices" not in shown:
        st.warning(shown.get("image_problem") or f"Case {case_id} has no image.")
        return None
    payload = viewer_data.viewer_payload(
        shown["slices"],
        shown["rois"],
        window_center=shown["window_center"],
        window_width=shown["window_width"],
        view_id=f"browser:{case_id}",
        crop=shown["crop"],
    )
    with store.connection() as conn:
        payload["marks"] = annotation_marks.viewer_mark_groups(conn, case_id)
    image_viewer(payload, key=key, size=420, side_size=130)
    st.caption(KEY_LEGEND)
    if payload["marks"]:
        st.caption(
            "Lesion marks (dashed): "
            + ", ".join(f"{safe_text.plain(g['author'])} {g['colour']}" for g in payload["marks"])
        )
    return shown["crop"]


def gradcam_panel(
    run_id: str, crop: np.ndarray, class_index: int, *, caption: str, case_id: str | None = None
) -> None:
    """Grad-CAM over the crop for one class (made by a worker process, cached on disk: torch
    never loads into the server), or a clear message when it cannot be computed. With
    ``case_id``, from the fold model that never saw the case, like its out-of-fold probabilities.

    A map not made yet does not hold the page: the worker starts in the background and a
    fragment looks for its result every second, then redraws the page once with it."""
    crop = np.ascontiguousarray(crop)
    state, value = heatmaps.overlay_status(run_id, crop, int(class_index), case_id)
    if state == "making":
        _gradcam_pending(run_id, crop, int(class_index), case_id)
    elif state == "failed":
        st.info(f"No Grad-CAM for this run: {value}")  # the worker's own one-line reason
    else:
        st.image(np.asarray(value), caption=caption, width="stretch", clamp=True)


@st.fragment(run_every=1.0)
def _gradcam_pending(run_id: str, crop: np.ndarray, class_index: int, case_id) -> None:
    state, _ = heatmaps.overlay_status(run_id, crop, class_index, case_id)
    if state != "making":
        st.rerun(scope="app")  # the page draws the map (or the reason) from the cache
    st.caption("Grad-CAM: a worker process is loading the fold model (a few seconds, once)…")
