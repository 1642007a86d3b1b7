"""make demo reuses a finished comparison on the same data and re-trains otherwise."""

import db
from core.demo import DEMO_MODELS, _finished_comparison


def _run(conn, model, *, comparison_id, data_hash, status="done"):
    run_id = db.create_run(
        conn, model=model, mode="features", config={}, seed=0, data_hash=data_hash,
        device="cpu", weights="none", code_version="test", packages={},
        comparison_id=comparison_id,
    )  # fmt: skip
    db.update_run(conn, run_id, status=status)
    return run_id


def test_a_complete_finished_comparison_on_the_same_data_is_reused(tmp_path):
    conn = db.connect(tmp_path / "t.db")
    assert _finished_comparison(conn, "h1") is None
    runs = {model: _run(conn, model, comparison_id="c1", data_hash="h1") for model in DEMO_MODELS}
    assert _finished_comparison(conn, "h1") == runs
    assert _finished_comparison(conn, "other-data") is None


def test_an_incomplete_or_failed_comparison_is_not_reused(tmp_path):
    conn = db.connect(tmp_path / "t.db")
    _run(conn, DEMO_MODELS[0], comparison_id="c1", data_hash="h1")
    _run(conn, DEMO_MODELS[1], comparison_id="c1", data_hash="h1")
    _run(conn, DEMO_MODELS[2], comparison_id="c1", data_hash="h1", status="failed")
    assert _finished_comparison(conn, "h1") is None
