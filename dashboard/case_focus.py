"""The results page's clicked cases, listed beside the chart, and handed to the case browser.

"Open in case browser" hands over the whole list (plain session keys survive the page switch):
the browser shows only those cases, with a button to show all again.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import selection

CASE_BROWSER = "../pages/case_browser.py"  # relative to dashboard/app.py, the entry script
FOCUS_KEY = "browse_cases"  # case ids the case browser is limited to, with where they came from


def remember_default_runs(runs: pd.DataFrame, *, key: str) -> None:
    """Open a run picker on the newest complete comparison unless the user chose otherwise.

    ``dashboard.widgets.run_picker`` keeps the choice in ``_<key>_chosen``; seeding it once per
    session means the user's later choice is kept across reruns and page switches.
    """
    memory = f"_{key}_chosen"
    if memory not in st.session_state:
        st.session_state[memory] = selection.default_runs(runs)


def cases_panel(found: pd.DataFrame, *, key: str, title: str = "Selected cases") -> None:
    """The cases behind a selection, and one button to look at them in the case browser."""
    if found.empty:
        st.caption("Click the chart to list its cases here.")
        return
    found = found.drop_duplicates(subset=["run_id", "case_id", "selected_by"])
    st.markdown(f"**{title} ({found['case_id'].nunique()})**")
    shown = ["case_id", "run_id", "fold", "label", "predicted", "confidence", "selected_by"]
    st.dataframe(found[[c for c in shown if c in found]], hide_index=True, height=260, key=key)
    options = list(dict.fromkeys(zip(found["case_id"], found["run_id"], strict=True)))
    pick = st.selectbox(
        "Case", options, format_func=lambda o: f"{o[0]} ({o[1]})", key=f"{key}_pick"
    )
    if st.button("Open in case browser", key=f"open_{key}"):
        case_id, run_id = pick
        cases = found.loc[found["run_id"] == run_id, "case_id"].tolist()
        st.session_state[FOCUS_KEY] = {
            "cases": cases,
            "from": ", ".join(found["selected_by"].unique()),
        }
        st.session_state["browse_case"] = case_id
        st.session_state["browse_run"] = run_id
        st.switch_page(CASE_BROWSER)


def focused(shown: pd.DataFrame) -> pd.DataFrame:
    """In the case browser: only the cases handed over by the results page, until cleared."""
    focus = st.session_state.get(FOCUS_KEY)
    if not focus:
        return shown
    kept = shown[shown["case_id"].isin(focus["cases"])]
    note, clear = st.columns([5, 1], vertical_alignment="center")
    note.info(
        f"Showing the {len(focus['cases'])} cases selected on the results page ({focus['from']})."
    )
    clear.button("Show all cases", key="clear_case_focus", on_click=_clear_focus)
    return kept.reset_index(drop=True)


def _clear_focus() -> None:
    st.session_state.pop(FOCUS_KEY, None)  # before the rerun the click starts: no second rerun
