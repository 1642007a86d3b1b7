"""Commands that build or run no model never load torch: each runs in a fresh interpreter through
the CLI's own ``main`` (every subcommand's --help, demo-data, ingest fresh and cached, demo-study),
which then reports whether ``torch`` or ``torchvision`` entered ``sys.modules``. The dashboard's
pages are covered by tests/dashboard/test_no_torch_in_server.py (every admin page rendered)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import json, sys\n"
    "from core.cli import main\n"
    "try:\n    rc = main(json.loads(sys.argv[1]))\nexcept SystemExit as exc:\n    rc = exc.code\n"
    "print('PROBE', json.dumps({'rc': rc, 'torch': 'torch' in sys.modules,"
    " 'torchvision': 'torchvision' in sys.modules}))\n"
)


def _run(argv: list[str], home: Path) -> dict:
    env = {**os.environ, "CERVIXSCOPE_HOME": str(home), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True, text=True, cwd=ROOT, env=env, check=False, timeout=600,
    )  # fmt: skip
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("PROBE ")]
    assert lines, done.stderr[-2000:]
    return json.loads(lines[-1].removeprefix("PROBE "))


def _subcommands() -> list[str]:
    action = next(a for a in build_parser()._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", _subcommands())
def test_every_subcommands_help_loads_no_torch(command, tmp_path):
    out = _run([command, "--help"], tmp_path)
    assert out == {"rc": 0, "torch": False, "torchvision": False}


def test_demo_data_ingest_and_demo_study_load_no_torch(tmp_path):
    data, path = tmp_path / "demo", str(tmp_path / "t.db")
    steps = {
        "demo-data": ["demo-data", "--out", str(data)],  # the full cohort: demo-study needs it
        "ingest": ["--db", path, "ingest", str(data), "--quiet"],
        "ingest (cached)": ["--db", path, "ingest", str(data), "--quiet"],
        "demo-study": ["--db", path, "demo-study"],
    }
    results = {name: _run(argv, tmp_path / "home") for name, argv in steps.items()}
    expected = {"rc": 0, "torch": False, "torchvision": False}
    assert results == dict.fromkeys(steps, expected)
