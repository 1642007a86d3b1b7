"""The machine a measurement or a test run happened on, in one line: CPU model, cores, memory,
Python and OS. Floating-point results and timings depend on it, so both say it."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's marketing name (``/proc/cpuinfo`` on Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def memory_gib() -> float | None:
    """Physical memory in GiB, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return None


def describe_machine() -> dict:
    """CPU model, usable and installed cores, memory (GiB), Python and OS of this machine."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    memory = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": usable,
        "cores_installed": os.cpu_count(),
        "memory_gib": round(memory, 1) if memory else None,
        "python": platform.python_version(),
        "os": platform.platform(terse=True),
    }


def machine_line(machine: dict | None = None) -> str:
    """``describe_machine()`` as one line, e.g. for a test report or a benchmark's header."""
    m = machine or describe_machine()
    cores = f"{m['cores']} cores"
    if m["cores_installed"] and m["cores_installed"] != m["cores"]:
        cores += f" (of {m['cores_installed']})"
    memory = f"{m['memory_gib']} GiB" if m["memory_gib"] else "memory unknown"
    return f"{m['cpu']}, {cores}, {memory}, Python {m['python']}, {m['os']}"
