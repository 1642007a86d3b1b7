"""The machine line that heads every test report and benchmark names what results depend on."""

from __future__ import annotations

import os
import platform

from core.bench.machine import describe_machine, machine_line


def test_the_machine_line_names_cpu_cores_memory_python_and_os():
    machine = describe_machine()
    line = machine_line(machine)
    assert 1 <= machine["cores"] <= os.cpu_count()
    assert machine["memory_gib"] is None or machine["memory_gib"] > 0
    assert line.startswith(machine["cpu"])
    assert f"{machine['cores']} cores" in line
    assert f"Python {platform.python_version()}" in line
    assert platform.system() in line


def test_cores_this_process_may_not_use_are_shown_apart():
    machine = {**describe_machine(), "cores": 2, "cores_installed": 64, "memory_gib": None}
    assert "2 cores (of 64), memory unknown" in machine_line(machine)
