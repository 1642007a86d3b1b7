"""The annotation page in AppTest: an annotator signs in with their own code, saves marks the way
the viewer sends them, and moves on; a bad mark is refused with its reason and nothing is stored;
the admin manages annotators and sees their agreement."""

from __future__ import annotations

import json

import pytest

import db
from core.annotation.marks import save_drawn
from core.data.ingest import ingest_folder
from dashboard.annotation_desk import SAVE_KEY
from tests.dashboard.reader_study_helpers import (
    ADMIN_SECRET,
    by_label,
    session,
    sign_in_admin,
    sign_in_reader,
)


@pytest.fixture
def annotation_env(small_cohort_dir, tmp_path, monkeypatch):
    path = tmp_path / "annotate.db"
    conn = db.connect(path)
    ingest_folder(small_cohort_dir, conn=conn, progress=False)
    _, code = db.add_annotator(conn, "Dr Ann")
    cases = db.cases_frame(conn).sort_values("display_id")
    conn.close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    return path, code, cases


def viewer_data(at) -> dict:
    element = [e for e in at.get("bidi_component") if e.proto.component_name.endswith("viewer")]
    return json.loads(element[-1].proto.json)


def send_save(at, display_id: str, marks, move="next-unmarked"):
    at.session_state[SAVE_KEY] = {"view": f"annotate:{display_id}", "base": 0, "marks": marks,
                                  "move": move}  # fmt: skip
    return at.run()


def test_an_annotator_saves_marks_and_moves_to_the_next_unmarked_case(annotation_env):
    path, code, cases = annotation_env
    at = sign_in_reader(session(), code)
    assert [t.value for t in at.title] == ["Annotate lesions"]
    first, second = cases["display_id"].iloc[0], cases["display_id"].iloc[1]
    data = viewer_data(at)
    assert data["view_id"] == f"annotate:{first}"
    assert data["annotate"]["marks"] == [] and data["marks"] == []
    assert all(s["roi"] is None for s in data["slices"])  # the manifest box is not shown
    box = {"slice": 0, "kind": "box", "points": [[10, 12], [40, 50]]}
    at = send_save(at, first, [box])
    assert at.query_params["case"] in (second, [second])
    conn = db.connect(path)
    stored = db.current_marks_frame(conn, case_id=cases["case_id"].iloc[0])
    conn.close()
    assert stored["author"].tolist() == ["Dr Ann"] and stored["version"].tolist() == [1]
    assert stored["geometry"].iloc[0] == {"kind": "box", "points": [[10.0, 12.0], [40.0, 50.0]]}
    assert stored["annotator_id"].notna().all()
    at = send_save(at, second, [], move="previous")  # back: the saved mark comes back
    data = viewer_data(at)
    assert data["view_id"] == f"annotate:{first}"
    assert data["annotate"]["marks"] == [{**box, "points": [[10.0, 12.0], [40.0, 50.0]]}]
    assert data["annotate"]["version"] == 1


def test_a_bad_mark_is_refused_with_its_reason_and_nothing_is_stored(annotation_env):
    path, code, cases = annotation_env
    at = sign_in_reader(session(), code)
    first = cases["display_id"].iloc[0]
    bowtie = {"slice": 0, "kind": "polygon", "points": [[10, 10], [30, 30], [30, 10], [10, 30]]}
    at = send_save(at, first, [bowtie])
    note = viewer_data(at)["annotate"]["note"]
    assert note.startswith("Not saved: mark 1 (slice 1): the polygon crosses itself")
    assert viewer_data(at)["view_id"] == f"annotate:{first}"  # stays on the case
    conn = db.connect(path)
    assert db.current_marks_frame(conn).empty
    conn.close()


def test_an_annotator_sees_only_the_annotation_page_and_only_their_own_marks(annotation_env):
    path, code, cases = annotation_env
    conn = db.connect(path)
    db.save_marks(conn, cases["case_id"].iloc[0], "Dr Other", [
        {"sop_instance_uid": "x", "frame": 0, "kind": "box",
         "geometry": {"kind": "box", "points": [[1, 1], [5, 5]]}}])  # fmt: skip
    conn.close()
    at = sign_in_reader(session(), code)
    assert viewer_data(at)["marks"] == []
    for page in ("../pages/case_browser.py", "../pages/study_admin.py", "../pages/reading.py"):
        with pytest.raises(ValueError):
            at.switch_page(page)


def test_the_admin_adds_an_annotator_and_compares_two_authors(annotation_env):
    path, code, cases = annotation_env
    conn = db.connect(path)
    for author, shift in (("Dr Ann", 0), ("Dr Bo", 4)):  # 40x40 boxes 4 px apart: IoU 1440/1760
        for case_id in cases["case_id"].iloc[:3]:
            box = {"slice": 0, "kind": "box", "points": [[20 + shift, 20], [60 + shift, 60]]}
            save_drawn(conn, case_id, author, [box])
    conn.close()
    at = sign_in_admin(session())
    at.switch_page("../pages/annotate.py").run()
    assert not at.exception
    by_label(at.text_input, "New annotator's display name").input("Dr New")
    by_label(at.button, "Add annotator").click()
    at.run()
    assert any(c.value.startswith("A") and c.value.count("-") == 3 for c in at.code)
    summary = [m.value for m in at.markdown if "cases marked by both" in m.value]
    assert summary and "Mean IoU 0.818" in summary[0] and "bootstrap over patients" in summary[0]
    conn = db.connect(path)
    assert "Dr New" in db.annotators_frame(conn)["display_name"].tolist()
    conn.close()


def test_the_case_browser_shows_both_annotators_marks(eval_db, tmp_path, monkeypatch):
    import sqlite3

    copy = tmp_path / "browser.db"
    with sqlite3.connect(eval_db.path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    monkeypatch.setenv("CERVIXSCOPE_DB", str(copy))
    monkeypatch.setenv("CERVIXSCOPE_HOME", str(eval_db.workdir))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    at = sign_in_admin(session())
    at.switch_page("../pages/case_browser.py").run()
    case_id = at.selectbox(key="case_pick").value
    conn = db.connect(copy)
    for author, x in (("Dr Ann", 10), ("Dr Bo", 14)):
        save_drawn(
            conn, case_id, author, [{"slice": 0, "kind": "box", "points": [[x, 10], [40, 40]]}]
        )
    conn.close()
    at.run()
    groups = viewer_data(at)["marks"]
    assert [g["author"] for g in groups] == ["Dr Ann", "Dr Bo"]
    assert groups[0]["colour"] != groups[1]["colour"]
    assert [g["marks"][0]["points"] for g in groups] == [[[10.0, 10.0], [40.0, 40.0]],
                                                         [[14.0, 10.0], [40.0, 40.0]]]  # fmt: skip
    assert any("Lesion marks (dashed)" in c.value for c in at.caption)
