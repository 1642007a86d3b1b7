"""The bootstrap's shared draws: one seeded stream per (cases, seed), so a shorter bootstrap is a
prefix of a longer one and every table over the same cases resamples the same way; kept or
drawn anew, the counts are the same."""

from __future__ import annotations

import numpy as np
import pytest

from core.statistics import resampling
from core.statistics.stats import fleiss_kappa, fleiss_kappa_ci


@pytest.fixture(autouse=True)
def nothing_kept():
    resampling._kept.clear()
    yield
    resampling._kept.clear()


def _plain_bootstrap(size: int, n_boot: int, seed: int) -> np.ndarray:
    """What anyone would write: draw indices with replacement, count them."""
    idx = np.random.default_rng(seed).integers(0, size, size=(n_boot, size))
    return np.stack([np.bincount(row, minlength=size) for row in idx])


@pytest.mark.parametrize("kept", [True, False], ids=["kept", "drawn"])
def test_counts_are_a_plain_seeded_bootstrap_and_shorter_ones_are_prefixes(monkeypatch, kept):
    if not kept:
        monkeypatch.setattr(resampling, "_KEPT_ENTRIES", 0)
    long = resampling.bootstrap_counts(97, 300, seed=5)
    short = resampling.bootstrap_counts(97, 40, seed=5)
    np.testing.assert_array_equal(long, _plain_bootstrap(97, 300, 5))
    np.testing.assert_array_equal(short, long[:40])
    assert (long.sum(axis=1) == 97).all()
    assert not np.array_equal(resampling.bootstrap_counts(97, 40, seed=6), short)


def test_kept_draws_are_read_only_and_drawn_once(monkeypatch):
    first = resampling.bootstrap_counts(50, 100, seed=1)
    with pytest.raises(ValueError):
        first[0, 0] = 9  # another table's resamples must not change under it
    calls = []
    real = resampling._drawn
    monkeypatch.setattr(resampling, "_drawn", lambda *a: calls.append(a) or real(*a))
    again = resampling.bootstrap_counts(50, resampling.KEPT_ROWS, seed=1)
    assert calls == [] and np.shares_memory(first, again)


def test_chunks_of_weights_map_patients_to_their_rows():
    groups = np.repeat(["p1", "p2", "p3", "p4"], [1, 2, 3, 1])
    chunks = list(resampling.weight_chunks(groups.size, 30, 2, groups))
    weights = np.concatenate(chunks)
    per_patient = resampling.bootstrap_counts(4, 30, seed=2)
    np.testing.assert_array_equal(weights[:, [1, 2]], per_patient[:, [1, 1]])
    np.testing.assert_array_equal(weights[:, 3:6], per_patient[:, [2, 2, 2]])
    with pytest.raises(ValueError, match="groups has 7 entries but there are 8 cases"):
        next(resampling.weight_chunks(8, 30, 2, groups))


def test_fleiss_interval_is_that_of_a_plain_bootstrap_over_subjects():
    rng = np.random.default_rng(3)
    truth = rng.integers(0, 3, 200)
    ratings = np.where(rng.random((200, 4)) < 0.7, truth[:, None], rng.integers(0, 3, (200, 4)))
    got = fleiss_kappa_ci(ratings, n_boot=300, seed=4)
    idx = np.random.default_rng(4).integers(0, 200, size=(300, 200))
    draws = np.array([fleiss_kappa(ratings[row]) for row in idx])
    low, high = np.quantile(draws[np.isfinite(draws)], [0.025, 0.975])
    assert got.low == pytest.approx(low, abs=1e-12) and got.high == pytest.approx(high, abs=1e-12)
