"""The bootstrap's draws, shared: how many times each of ``size`` cases (or patients) is drawn
in each of ``n_boot`` resamples with replacement, from a seeded generator.

Every rater of a reader study is resampled over the same cases with the same seed, and so are
the metrics (500 resamples), the calibration (1,000) and Fleiss' kappa (2,000): the draws are one
stream, so each of those is a prefix of the longest. They are drawn once per (cases, seed) and
kept, compactly, for the next table, instead of being drawn again by each one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import pandas as pd

KEPT_ROWS = 2000  # resamples drawn at least, so that every table's draws are a prefix
_KEPT_ENTRIES = 16_000_000  # per kept draw (one byte an entry); larger draws are not kept
_KEPT_DRAWS = 4
_STEP_ENTRIES = 500_000  # entries drawn at once: memory stays flat in n_boot

_kept: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
_lock = threading.Lock()


def bootstrap_counts(size: int, n_boot: int, seed: int) -> np.ndarray:
    """``(n_boot, size)`` int array: row ``b`` counts how often each case is drawn in resample
    ``b`` (each row sums to ``size``). Resample ``b`` depends only on ``size``, ``seed`` and
    ``b``, so a shorter bootstrap is a prefix of a longer one. Read only (shared)."""
    kept = _kept_counts(size, n_boot, seed)
    if kept is not None:
        return kept[:n_boot]
    return np.concatenate(list(_drawn(size, n_boot, seed, _step(size))))


def count_chunks(size: int, n_boot: int, seed: int, step: int | None = None):
    """The rows of :func:`bootstrap_counts`, ``step`` at a time (default: about half a million
    entries), so that a caller's float copies stay small whatever ``n_boot``."""
    step = step or _step(size)
    kept = _kept_counts(size, n_boot, seed)
    if kept is None:
        yield from _drawn(size, n_boot, seed, step)
        return
    for start in range(0, n_boot, step):
        yield kept[start : min(start + step, n_boot)]


def weight_chunks(n: int, n_boot: int, seed: int, groups=None):
    """Case multiplicities of a bootstrap that resamples the ``n`` cases, or whole ``groups``
    (e.g. the patient of each row), as float arrays ``(b, n)`` a few hundred thousand entries
    at a time, so that callers' weight matrices stay tens of MB whatever ``n_boot``."""
    codes, size = None, n
    if groups is not None:
        codes, uniques = pd.factorize(pd.Series(np.asarray(groups)))
        if codes.size != n:
            raise ValueError(f"groups has {codes.size} entries but there are {n} cases")
        size = uniques.size
    for counts in count_chunks(size, n_boot, seed, _step(n)):
        yield (counts if codes is None else counts[:, codes]).astype(float)


def _step(size: int) -> int:
    return max(1, _STEP_ENTRIES // max(size, 1))


def _kept_counts(size: int, n_boot: int, seed: int) -> np.ndarray | None:
    """The kept draws for ``(size, seed)`` with at least ``n_boot`` rows (drawn now if need be);
    None when they are too large to keep or a count does not fit in a byte."""
    key = (int(size), int(seed))
    with _lock:
        kept = _kept.get(key)
        if kept is not None and len(kept) >= n_boot:
            _kept.move_to_end(key)
            return kept
    rows = max(n_boot, KEPT_ROWS)
    if rows * size > _KEPT_ENTRIES:
        return None
    counts = np.empty((rows, size), dtype=np.uint8)
    start = 0
    for chunk in _drawn(size, rows, seed, _step(size)):
        if chunk.max(initial=0) > np.iinfo(np.uint8).max:  # over 255 draws of one case
            return None
        counts[start : start + len(chunk)] = chunk
        start += len(chunk)
    counts.setflags(write=False)
    with _lock:
        _kept[key] = counts
        _kept.move_to_end(key)
        while len(_kept) > _KEPT_DRAWS:
            _kept.popitem(last=False)
    return counts


def _drawn(size: int, n_boot: int, seed: int, step: int):
    """The counts of ``n_boot`` resamples drawn from a fresh generator, ``step`` rows at a time."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        draws = rng.integers(0, size, size=(b, size))
        offsets = (np.arange(b) * size)[:, None]
        yield np.bincount((draws + offsets).ravel(), minlength=b * size).reshape(b, size)
