"""The results page keeps the model selection, lists a clicked cell's cases beside the chart, and
hands exactly those cases to the case browser (AppTest on the real two-run database)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

import db
from dashboard.auth import Identity
from dashboard.selection import default_runs

ROOT = Path(__file__).resolve().parents[2]


def _results(click: tuple[str, str, str] | None = None) -> AppTest:
    """The results page; ``click`` = (run, true class, predicted class) of a clicked cell."""
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.session_state["auth"] = Identity(role="admin", name="admin")
    at.run()
    at.switch_page("../pages/cv_results.py")
    if click is not None:  # a chart's selection, as the browser would send it
        at.session_state[f"cm_counts_{click[0]}"] = {
            "selection": {
                "points": [{"customdata": [*click, 0]}],
                "point_indices": [0],
                "box": [],
                "lasso": [],
            }
        }
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_default_is_the_newest_complete_comparison():
    runs = pd.DataFrame(
        {
            "run_id": ["new", "a", "b", "old1", "old2", "half1", "half2"],
            "status": ["done", "done", "done", "done", "done", "done", "running"],
            "comparison_id": [None, "c2", "c2", "c1", "c1", "c3", "c3"],
            "created_at": ["9", "5", "5", "1", "1", "7", "7"],
        }
    )
    assert default_runs(runs) == ["a", "b"]  # c3 is still running; "new" is alone
    assert default_runs(runs[runs["comparison_id"].isna()]) == ["new"]
    assert default_runs(runs.iloc[0:0]) == []


def test_a_new_single_run_does_not_displace_the_comparison_and_a_choice_is_kept(
    eval_env, tmp_path, monkeypatch
):
    path = tmp_path / "copy.db"
    shutil.copy(eval_env.path, path)
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    conn = db.connect(path)
    newer = db.create_run(conn, model="cnn", mode="features", config={}, seed=3)
    db.finish_run(conn, newer, status="done")
    conn.close()
    at = _results()
    assert set(at.multiselect(key="cv_runs").value) == set(eval_env.run_ids)
    at.multiselect(key="cv_runs").set_value([eval_env.run_ids[1]]).run()
    at.run()  # any rerun, e.g. the chart's
    assert at.multiselect(key="cv_runs").value == [eval_env.run_ids[1]]


def test_a_clicked_cell_lists_its_cases_beside_the_chart_and_the_browser_shows_only_them(eval_env):
    run_id = eval_env.run_ids[0]
    conn = db.connect(eval_env.path)
    oof = db.predictions_frame(conn, [run_id])
    conn.close()
    pred = np.array(["SCC", "AC", "ASC"])[oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(1)]
    wrong = oof[pred != oof["label"]]
    true_name = wrong["label"].mode()[0]
    pred_name = pd.Series(pred[(pred != oof["label"]) & (oof["label"] == true_name)]).mode()[0]
    expected = set(oof.loc[(oof["label"] == true_name) & (pred == pred_name), "case_id"])
    at = _results(click=(run_id, true_name, pred_name))
    beside = [
        d.value
        for col in at.columns
        for d in col.dataframe
        if {"case_id", "selected_by"} <= set(d.value.columns)
    ]
    assert len(beside) == 1, ([c.value for c in at.caption], expected, run_id, true_name, pred_name)
    assert set(beside[0]["case_id"]) == expected  # in a column by the chart

    at.button(key="open_selected_case").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Case browser"
    (table,) = [d.value for d in at.dataframe if {"case_id", "correct"} <= set(d.value.columns)]
    assert set(table["case_id"]) == expected
    assert any(f"the {len(expected)} cases selected" in i.value for i in at.info)
    at.switch_page("../pages/case_browser.py")  # AppTest reruns its own page, not st.switch_page's
    at.run()
    (table,) = [d.value for d in at.dataframe if {"case_id", "correct"} <= set(d.value.columns)]
    assert set(table["case_id"]) == expected  # the focus survives reruns
    at.button(key="clear_case_focus").click().run()
    assert at.title[0].value == "Case browser", [t.value for t in at.title]
    assert not at.exception and not at.error, [e.value for e in at.error]
    (table,) = [d.value for d in at.dataframe if {"case_id", "correct"} <= set(d.value.columns)]
    assert set(table["case_id"]) == set(oof["case_id"])
