"""The reader analysis keeps its slow tables in the database: a restarted server shows the same
tables without computing them, and one changed read recomputes only its reader's tables and the
cross-reader ones (real SQLite file, real AppTest page)."""

from __future__ import annotations

import shutil
import threading

import pytest
import streamlit as st

import db
from core.data.labels import CLASSES
from dashboard import saved
from dashboard import study_analysis as sections
from dashboard.bench_pages import answer_again
from tests.dashboard.reader_study_helpers import ADMIN_SECRET, session, settled, sign_in_admin
from tests.dashboard.test_reader_study import demo_study_db  # noqa: F401 - a shared fixture

pytestmark = pytest.mark.timeout(600)


def _restart_server() -> None:
    """What a new server process starts with: nothing held in memory."""
    saved.clear()
    st.cache_resource.clear()
    st.cache_data.clear()


def _saved(path) -> dict[str, str]:
    conn = db.connect(path)
    try:
        rows = conn.conn.execute("SELECT key, saved_at FROM saved_results").fetchall()
    finally:
        conn.close()
    return dict(rows)


def _page(path, monkeypatch, *, settle: bool = True):
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    monkeypatch.setenv("CERVIXSCOPE_ADMIN_SECRET", ADMIN_SECRET)
    at = sign_in_admin(session())
    at.switch_page("../pages/study_analysis.py").run()
    assert not at.exception, at.exception
    return settled(at) if settle else at


def _tables(at) -> list:
    return [d.value for d in at.dataframe]


@pytest.fixture
def rendered(demo_study_db, tmp_path, monkeypatch):  # noqa: F811
    """A copy of the demo study whose analysis page was rendered once (tables saved), then the
    server restarted: ``(path, study id, the tables first shown)``."""
    path = tmp_path / "study.db"
    shutil.copy(demo_study_db["path"], path)
    _restart_server()
    first = _tables(_page(path, monkeypatch))
    _restart_server()
    return path, demo_study_db["study_id"], first


ARM = " (unaided)"  # every kind of a per-arm table ends with its arm


def test_a_restart_reads_the_tables_back_and_a_new_read_recomputes_only_its_reader(
    rendered, monkeypatch
):
    path, study_id, first = rendered
    computed = _saved(path)
    readers = sorted(
        {
            k.split("|")[0].removeprefix("rater ").removesuffix(ARM)
            for k in computed
            if k.startswith("rater ")
        }
    )
    assert "Model" in readers and len(readers) >= 3
    assert any(k.startswith(f"kappa{ARM}|") for k in computed) and any(
        k.startswith("mrmc ") for k in computed
    )

    again = _tables(_page(path, monkeypatch))
    assert _saved(path) == computed, "a restarted server recomputed (and re-saved) a table"
    assert len(again) == len(first)
    for shown, before in zip(again, first, strict=True):
        assert shown.equals(before)

    conn = db.connect(path)
    try:
        changed = answer_again(conn, study_id)
    finally:
        conn.close()
    at = _page(path, monkeypatch)
    _settled(at, study_id)
    new = {k.split("|")[0] for k in set(_saved(path)) - set(computed)}
    per_rater = {
        k for k in new if k.startswith(("rater ", "calibration ")) and "calibration table" not in k
    }
    assert per_rater == {f"rater {changed}{ARM}", f"calibration {changed}{ARM}"}
    assert {f"kappa{ARM}", f"mcnemar{ARM}"} <= new  # the cross-reader tables follow every read


def _settled(at, study_id: int) -> None:
    """Rerun the page until no table is being recomputed in the background (as the page's own
    one-second refresh does)."""
    for _ in range(5):
        if not sections.updating(study_id):
            return
        assert saved.wait_until_updated(300), "background updates did not finish"
        at.run()
        assert not at.exception, at.exception
    raise AssertionError("the page kept recomputing tables")


def test_after_a_new_read_the_page_shows_the_older_tables_at_once_then_the_new_ones(
    rendered, monkeypatch
):
    path, study_id, _ = rendered
    at = _page(path, monkeypatch)
    before = dict(zip(_rater_headings(at), _confusions(at), strict=True))
    assert not _notices(at)
    conn = db.connect(path)
    try:
        changed = answer_again(conn, study_id)
    finally:
        conn.close()
    release = _hold_background_updates(monkeypatch)  # until the page was checked
    try:
        at.run()
        assert not at.exception, at.exception
        (notice,) = _notices(at)
        assert "for the newest reads" in notice
        shown = dict(zip(_rater_headings(at), _confusions(at), strict=True))
        assert all(shown[name].equals(table) for name, table in before.items())  # the older ones
        assert _export(at).disabled  # a CSV of older tables is never offered
    finally:
        release.set()
    _settled(at, study_id)
    assert not _notices(at)
    assert not _export(at).disabled
    after = dict(zip(_rater_headings(at), _confusions(at), strict=True))
    (heading,) = [h for h in after if h.startswith((f"{changed} (", f"{changed[:-1]}, "))]
    assert not after[heading].equals(before[heading])  # one answer moved to the next type
    assert int(after[heading].to_numpy().sum()) == int(before[heading].to_numpy().sum())
    assert all(after[h].equals(before[h]) for h in after if h != heading)


def test_a_new_read_runs_the_page_once_and_builds_only_its_readers_frame(rendered, monkeypatch):
    """The researcher watching live waits for one page run per new read: not a second run to
    start the page's refresh, nor every reader's frame built and digested anew."""
    path, study_id, _ = rendered
    at = _page(path, monkeypatch)
    assert saved.wait_until_updated(300)  # the reads and the rater frames, read ahead
    runs, digested = [], []
    view, digest = sections.study_data, sections.frame_digest
    monkeypatch.setattr(sections, "study_data", lambda *a: runs.append(a) or view(*a))
    whose = lambda frame: sorted(set(frame["reader_id"])) if "reader_id" in frame else "model"  # noqa: E731
    monkeypatch.setattr(sections, "frame_digest", lambda f: digested.append(whose(f)) or digest(f))
    conn = db.connect(path)
    try:
        changed = answer_again(conn, study_id)
        reads = db.reads_frame(conn, study_id)
    finally:
        conn.close()
    mine = reads[reads["display_name"] == changed]
    per_arm = [sorted(set(mine["reader_id"]))] * mine["arm"].nunique()  # one frame per arm read
    release = _hold_background_updates(monkeypatch)  # the new tables: not before the checks
    try:
        at.run()
        assert not at.exception, at.exception
        assert _notices(at), "no table is being recomputed for the new read"
        assert len(runs) == 1, "the page ran again to start refreshing itself"
        assert digested == per_arm  # the changed reader's frames, no other
    finally:
        release.set()
    _settled(at, study_id)
    assert not _notices(at)


def _hold_background_updates(monkeypatch) -> threading.Event:
    """Background computations wait until the returned event is set."""
    release = threading.Event()
    real = saved._computed

    def held_back(where, compute):
        if threading.current_thread().name == "cervixscope-saved-updates":
            assert release.wait(300)
        return real(where, compute)

    monkeypatch.setattr(saved, "_computed", held_back)
    return release


def _export(at):
    (button,) = [b for b in at.get("download_button") if b.proto.label == "Analysis tables (CSV)"]
    return button


def _notices(at) -> list[str]:
    return [i.value for i in at.info if "Updating" in i.value]


def _rater_headings(at) -> list[str]:
    return [h.value for h in at.subheader if h.value.endswith(" cases)")]


def _confusions(at) -> list:
    """The confusion tables, in the order drawn: rows and columns are the three types."""
    return [
        d.value
        for d in at.dataframe
        if list(d.value.columns) == [f"predicted {c}" for c in CLASSES]
    ]


def test_saved_tables_are_those_of_a_fresh_computation(rendered):
    path, study_id, _ = rendered
    conn = db.connect(path)
    try:
        data = sections.study_data(conn, study_id)
    finally:
        conn.close()
    named = sections.rater_frames(data, data.arms[0])
    name = next(n for n in named if n != "Model")
    from core.reader_study import analysis

    kept = sections._memo(
        f"rater {name}{ARM}",
        sections._rater_key(named, name),
        lambda: pytest.fail("recomputed"),
    )
    assert kept[1].equals(analysis.metrics_table(named[name]))  # the bootstrap CIs, to the bit
    assert kept[0].equals(analysis.confusion_table(named[name]))


def test_a_restarted_server_shows_saved_tables_without_waiting_for_the_reads(rendered, monkeypatch):
    path, _, first = rendered
    threads = []
    real = sections.load_study_data

    def reads_read(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(sections, "load_study_data", reads_read)
    with saved.rendering():  # the read ahead waits, as it does for a page run in a server
        again = _tables(_page(path, monkeypatch))  # _page fails on any exception in the page
        assert threads == [], "the page read the reads although every table is saved"
    assert len(again) == len(first) and all(a.equals(b) for a, b in zip(again, first, strict=True))
    assert saved.wait_until_updated(300)
    assert threads == ["cervixscope-saved-updates"]  # read ahead, once, for the next new read


def test_a_new_read_after_a_restart_is_patched_into_the_reads_read_ahead(rendered, monkeypatch):
    path, study_id, _ = rendered
    at = _page(path, monkeypatch)
    assert saved.wait_until_updated(300)  # the reads, read ahead
    asked = []
    real = db.reads_since
    monkeypatch.setattr(db, "reads_since", lambda *a, **k: asked.append(a[2:]) or real(*a, **k))
    conn = db.connect(path)
    try:
        answer_again(conn, study_id)
    finally:
        conn.close()
    at.run()
    assert not at.exception, at.exception
    assert len(asked) == 1 and asked[0][0] is not None  # only the reads written since


def test_a_first_view_draws_the_page_at_once_and_fills_the_tables_in(
    demo_study_db,  # noqa: F811
    tmp_path,
    monkeypatch,
):
    path = tmp_path / "new.db"
    shutil.copy(demo_study_db["path"], path)
    _restart_server()
    release = _hold_background_updates(monkeypatch)  # until the first run was checked
    try:
        at = _page(path, monkeypatch, settle=False)
        (notice,) = _notices(at)
        headings = _rater_headings(at)
        assert "Model" in headings[0] and len(headings) >= 3  # every drawn rater has its place
        assert not _confusions(at)  # ... and a placeholder where its tables go
        placeholders = [c.value for c in at.caption if c.value.startswith("Computing in the")]
        assert len(placeholders) >= len(headings)
        assert _export(at).disabled
    finally:
        release.set()
    settled(at)
    assert not _notices(at) and not _export(at).disabled
    assert len(_confusions(at)) == len(_rater_headings(at)) == len(headings)
    assert not [c.value for c in at.caption if c.value.startswith("Computing in the")]
