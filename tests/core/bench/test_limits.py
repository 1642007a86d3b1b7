"""`cervixscope bench` parts c, m and p on small inputs: they report what they say, against
counts we know; no timing is asserted."""

from __future__ import annotations

import pytest

from core.bench import memory, scaling


def test_features_cv_against_one_embedding_pass(small_cohort_dir):
    row = scaling.cv_at_scale(str(small_cohort_dir), "cnn", "none", "cpu", 3)
    assert row["images"] > row["patients"] > 0
    assert row["embed_seconds"] + row["heads_seconds"] <= row["cv_seconds"]
    assert row["limit_ratio"] == pytest.approx(row["cv_seconds"] / row["embed_seconds"])
    assert row["limit_ratio"] >= 1.0  # one embedding pass is the floor
    table = scaling.scaling_table([{"scale": 1, **row}, {"scale": 2, **row}])
    assert "| 2x |" in table and "(1.00)" in table


def test_the_bootstrap_memory_part_runs_the_table_it_names():
    out = memory.table_memory(n=400, n_boot=20)
    assert out["table_cases"] == 400 and out["table_resamples"] == 20
    assert 0 < out["table_traced_peak_mb"] < out["table_process_peak_mb"]


def test_an_unknown_part_is_named():
    from core.bench.runner import run_bench
    from tests.core.cropsets import synthetic_crops

    with pytest.raises(ValueError, match="expected letters of the parts a, b, c, m, p"):
        run_bench(synthetic_crops((4, 4, 4), size=32), skip="x")
