"""make demo reuses a finished comparison on the same data and re-trains otherwise."""

import db
from core.commands.demo_pipeline import DEMO_MODELS, _finished_comparison


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


def test_the_demo_summary_prints_the_auc_table_the_warnings_and_a_reader_code(
    small_cohort_dir, tmp_path
):
    """On real runs of a real small cohort: what `make demo` ends with."""
    import re

    import pandas as pd

    from core.commands.demo_pipeline import demo_summary
    from core.data.ingest import ingest_folder
    from core.learning.artifacts import run_dir
    from core.learning.config import RunConfig
    from core.learning.cv import run_cv
    from core.reader_study.simulate import demo_reader_code

    conn = db.connect(tmp_path / "t.db")
    crops = ingest_folder(small_cohort_dir, conn=conn, progress=False).crops
    runs = {
        model: run_cv(
            crops, RunConfig(model=model, weights="none", n_folds=3), conn=conn, cache_dir=False
        )
        for model in ("cnn", "resnet18")
    }
    offline = "ImageNet weights unavailable (offline): resnet18 uses random initialisation"
    db.add_run_warning(conn, runs["resnet18"], offline)
    code = demo_reader_code(conn, model_run_id=runs["resnet18"])
    text = demo_summary(
        conn, runs, url="http://localhost:8501", secrets_path=".streamlit/secrets.toml",
        reader_code=code,
    )  # fmt: skip
    for model, run_id in runs.items():
        summary = pd.read_csv(run_dir(run_id) / "summary.csv")
        auc = summary[(summary["scope"] == "macro") & (summary["metric"] == "auc")].iloc[0]
        expected = f"{auc['value']:.3f} ({auc['ci_low']:.3f}–{auc['ci_high']:.3f})"
        assert re.search(rf"^  {model} +{re.escape(expected)} ", text, re.M), text
    assert re.search(r"resnet18 .* random initialisation$", text, re.M)
    assert re.search(r"cnn .* none \(trained from scratch\)$", text, re.M)
    assert f"resnet18: {offline}" in text
    assert f"Data: synthetic (all {len(db.cases_frame(conn))} cases)" in text
    assert "http://localhost:8501" in text and ".streamlit/secrets.toml" in text
    assert f"demo reader code {code}" in text
    assert db.authenticate_reader(conn, code).display_name == "Demo reader"  # it signs in
