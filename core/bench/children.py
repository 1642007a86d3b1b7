"""Benchmark steps in fresh interpreters: each prints one line ``BENCH {json}``, so its peak
memory and its imports are its own."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def peak_mb() -> float:
    """This process's peak resident memory, MB.

    Linux's ``VmHWM`` when there is one: ``ru_maxrss`` survives ``execve``, so a child started
    from a big parent would report the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(args: list[str], env: dict | None = None) -> dict:
    """Run ``python -m <args>`` from the repository root; its ``BENCH`` line as a dict."""
    done = subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("BENCH ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"benchmark step {' '.join(args)} failed: {tail[0]}")
    return json.loads(lines[-1].removeprefix("BENCH "))


def print_result(result: dict) -> None:
    """The one line a child prints for :func:`run_child`."""
    print("BENCH " + json.dumps(result))
