"""``dashboard.saved.remembered(..., stale_ok=True)``: a table of older inputs at once, the new
one computed in the background, on a real SQLite file."""

from __future__ import annotations

import threading

import pytest

import db
from core.project import saved_values
from dashboard import saved


@pytest.fixture
def database(tmp_path, monkeypatch):
    path = tmp_path / "saved.db"
    db.connect(path).close()
    monkeypatch.setenv("CERVIXSCOPE_DB", str(path))
    saved.clear()
    yield path
    assert saved.wait_until_updated(60)
    saved.clear()


def test_without_an_older_value_it_computes_at_once(database):
    assert saved.remembered("study:1", "table|v1", lambda: {"n": 1}, stale_ok=True) == {"n": 1}
    assert saved.updating("study:1") == 0


def test_an_older_value_is_shown_while_the_new_one_is_computed(database):
    saved.remembered("study:1", "table|v1", lambda: {"n": 1})
    gate = threading.Event()

    def slow():
        assert gate.wait(60)
        return {"n": 2}

    assert saved.remembered("study:1", "table|v2", slow, stale_ok=True) == {"n": 1}
    assert saved.updating("study:1") == 1 and saved.updating("study:2") == 0
    # asked again meanwhile (the page's next refresh): still the older one, computed once
    assert saved.remembered("study:1", "table|v2", slow, stale_ok=True) == {"n": 1}
    gate.set()
    assert saved.wait_until_updated(60)
    assert saved.updating("study:1") == 0
    never = lambda: pytest.fail("computed again")  # noqa: E731
    assert saved.remembered("study:1", "table|v2", never, stale_ok=True) == {"n": 2}
    saved.clear()  # a restarted server reads it back from the database
    assert saved.remembered("study:1", "table|v2", never) == {"n": 2}
    # another kind is not an older value of this one
    assert saved.remembered("study:1", "other|v2", lambda: {"n": 3}, stale_ok=True) == {"n": 3}


def test_a_restarted_server_shows_the_saved_older_value(database):
    saved.remembered("study:1", "table|v1", lambda: [1, 2])
    saved.clear()
    assert saved.remembered("study:1", "table|v2", lambda: [3], stale_ok=True) == [1, 2]
    assert saved.wait_until_updated(60)
    assert saved.remembered("study:1", "table|v2", lambda: pytest.fail("again")) == [3]


def test_a_value_saved_by_other_code_is_never_shown(database, monkeypatch):
    saved.remembered("study:1", "table|v1", lambda: {"n": 1})
    saved.clear()
    monkeypatch.setattr(saved_values, "code_digest", lambda: "f" * 40)  # the code changed
    assert saved.remembered("study:1", "table|v2", lambda: {"n": 2}, stale_ok=True) == {"n": 2}
    assert saved.updating("study:1") == 0


def test_another_databases_value_is_never_shown(database, tmp_path, monkeypatch):
    saved.remembered("study:1", "table|v1", lambda: "first database")
    other = tmp_path / "other.db"
    monkeypatch.setenv("CERVIXSCOPE_DB", str(other))
    assert saved.remembered("study:1", "table|v2", lambda: "own", stale_ok=True) == "own"


def test_a_failed_background_update_fails_the_next_page_run_with_its_error(database):
    saved.remembered("study:1", "table|v1", lambda: 1)

    def broken():
        raise ValueError("the reads cannot support it")

    assert saved.remembered("study:1", "table|v2", broken, stale_ok=True) == 1
    assert saved.wait_until_updated(60)
    with pytest.raises(ValueError, match="cannot support it"):
        saved.remembered("study:1", "table|v2", broken, stale_ok=True)


def test_a_failed_update_is_computed_by_the_page_until_it_succeeds_never_queued_again(database):
    saved.remembered("study:1", "table|v1", lambda: 1)
    attempts = []

    def flaky():
        attempts.append(threading.current_thread().name)
        if len(attempts) < 4:  # the background try and two page runs
            raise ValueError("database is locked")
        return 2

    assert saved.remembered("study:1", "table|v2", flaky, stale_ok=True) == 1
    assert saved.wait_until_updated(60)
    for _ in range(2):  # each page run shows the error itself, and queues nothing
        with pytest.raises(ValueError, match="locked"):
            saved.remembered("study:1", "table|v2", flaky, stale_ok=True)
        assert saved.updating("study:1") == 0
    assert saved.remembered("study:1", "table|v2", flaky, stale_ok=True) == 2
    assert attempts[0] == "cervixscope-saved-updates" and len(attempts) == 4
    assert saved.remembered("study:1", "table|v2", lambda: pytest.fail("again")) == 2


def test_the_keys_being_updated_tell_which_table_is_done(database):
    """A page waiting for its tables can tell that one is done although as many are pending as
    when it drew them (another session queued more meanwhile)."""
    saved.remembered("study:1", "a|v1", lambda: "a1")
    saved.remembered("study:1", "b|v1", lambda: "b1")
    gate_a, gate_b = threading.Event(), threading.Event()
    try:
        assert saved.remembered("study:1", "a|v2", lambda: gate_a.wait(60) and 2, stale_ok=True)
        assert saved.remembered("study:1", "b|v2", lambda: gate_b.wait(60) and 2, stale_ok=True)
        drawn = saved.updating_keys("study:1")
        assert drawn == {"a|v2", "b|v2"}
        saved.remembered("study:1", "a|v3", lambda: 3, stale_ok=True)  # another session's
        gate_a.set()
        for _ in range(6000):
            if "a|v2" not in saved.updating_keys("study:1"):
                break
            threading.Event().wait(0.01)
        now = saved.updating_keys("study:1")
        assert now == {"b|v2", "a|v3"} and saved.updating("study:1") == len(drawn)
        assert drawn - now == {"a|v2"}
    finally:
        gate_a.set()
        gate_b.set()


def test_updates_wait_for_the_page_run_in_progress(database, monkeypatch):
    monkeypatch.setattr(saved, "MAX_DEFER_SECONDS", 60.0)
    saved.remembered("study:1", "table|v1", lambda: 1)
    started = threading.Event()
    with saved.rendering():  # the page the researcher waits for comes first
        assert (
            saved.remembered("study:1", "table|v2", lambda: started.set() or 2, stale_ok=True) == 1
        )
        assert not started.wait(0.3)
    assert saved.wait_until_updated(60) and started.is_set()
    assert saved.remembered("study:1", "table|v2", lambda: pytest.fail("again")) == 2


def test_a_page_run_that_never_ends_delays_updates_only_so_long(database, monkeypatch):
    monkeypatch.setattr(saved, "MAX_DEFER_SECONDS", 0.1)
    saved.remembered("study:1", "table|v1", lambda: 1)
    with saved.rendering():
        assert saved.remembered("study:1", "table|v2", lambda: 2, stale_ok=True) == 1
        assert saved.wait_until_updated(60)  # done while the page run is still in progress
    assert saved.remembered("study:1", "table|v2", lambda: pytest.fail("again")) == 2


def test_work_for_later_runs_in_the_background_and_is_not_an_update(database, caplog):
    done = threading.Event()
    gate = threading.Event()
    saved.later("reads", lambda: gate.wait(60) and done.set())
    saved.later("reads", lambda: pytest.fail("queued twice"))  # the same key, still pending
    assert saved.updating("study:1") == 0  # no table is older than its reads
    gate.set()
    assert saved.wait_until_updated(60) and done.is_set()
    saved.later("broken", lambda: 1 / 0)
    assert saved.wait_until_updated(60)
    assert "broken" in caplog.text and "division by zero" in caplog.text
