"""Part (m): ``classification_table`` on 10,000 cases with 1,000 resamples, its traced peak
allocation and the process's peak resident memory (target < 300 MB).

Child usage: python -m core.bench.memory (prints one line ``BENCH {json}``).
"""

from __future__ import annotations

import time

import numpy as np

from core.bench.children import peak_mb, print_result


def table_memory(n: int = 10_000, n_boot: int = 1000) -> dict:
    """Part (m): the bootstrap's traced peak and this process's peak resident memory."""
    import tracemalloc

    from core.statistics.metrics import classification_table

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n)
    score = rng.dirichlet([1, 1, 1], n)
    baseline = peak_mb()
    tracemalloc.start()
    t0 = time.perf_counter()
    classification_table(y, score.argmax(1), score, n_boot=n_boot, seed=0)
    seconds = time.perf_counter() - t0
    traced = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "table_cases": n,
        "table_resamples": n_boot,
        "table_seconds": seconds,
        "table_traced_peak_mb": traced,
        "table_process_peak_mb": peak_mb(),
        "table_process_baseline_mb": baseline,
    }


if __name__ == "__main__":
    print_result(table_memory())
