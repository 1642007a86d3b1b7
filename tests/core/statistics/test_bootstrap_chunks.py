"""The bootstrap of ``classification_table`` runs in chunks: the same intervals for the same seed
whatever the chunk size, and memory that does not grow with the number of resamples."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from core.statistics import metrics, resampling


def _inputs(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    t = rng.integers(0, 3, n)
    score = rng.dirichlet([1, 1, 1], n)
    return t, score.argmax(1), score


@pytest.mark.parametrize("groups", [False, True], ids=["cases", "patients"])
def test_chunked_bootstrap_equals_one_pass(monkeypatch, groups):
    t, p, s = _inputs(301)
    g = np.arange(t.size) // 3 if groups else None
    monkeypatch.setattr(resampling, "_KEPT_ENTRIES", 0)  # drawn as needed, not kept
    monkeypatch.setattr(resampling, "_STEP_ENTRIES", 10**9)  # every resample in one chunk
    whole = metrics.classification_table(t, p, s, n_boot=200, seed=7, groups=g)
    monkeypatch.setattr(resampling, "_STEP_ENTRIES", 301 * 7)  # 7 resamples a chunk, ragged end
    chunked = metrics.classification_table(t, p, s, n_boot=200, seed=7, groups=g)
    pd.testing.assert_frame_equal(whole, chunked)
    monkeypatch.setattr(resampling, "_KEPT_ENTRIES", 10**9)  # drawn once, kept, then reused
    resampling._kept.clear()
    for _ in range(2):
        kept = metrics.classification_table(t, p, s, n_boot=200, seed=7, groups=g)
        pd.testing.assert_frame_equal(whole, kept)


def test_memory_stays_flat_in_the_number_of_resamples():
    t, p, s = _inputs(10_000)
    peaks = []
    for n_boot in (100, 1000):
        tracemalloc.start()
        metrics.classification_table(t, p, s, n_boot=n_boot, seed=0)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    # Ten times the resamples: only the (n_boot, classes) results grow, not a resamples x cases
    # matrix (1,000 x 10,000 float64 alone is 80 MB).
    assert peaks[1] < 1.5 * peaks[0] + 5 * 2**20, [x / 2**20 for x in peaks]
    assert peaks[1] < 100 * 2**20
