"""Global options (--db, --home, --quiet) work before or after every subcommand."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

import db
from core.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _required_arguments(sub: argparse.ArgumentParser) -> list[str]:
    """Placeholder values for what ``sub`` requires, so that it parses."""
    argv: list[str] = []
    for action in sub._actions:
        if isinstance(action, argparse._SubParsersAction):
            name = next(iter(action.choices))
            return [*argv, name, *_required_arguments(action.choices[name])]
        if not action.option_strings and action.nargs not in ("?", "*"):
            argv.append("x")
        elif action.required:
            argv += [action.option_strings[0], "1"]
    return argv


SUBCOMMANDS = sorted(_subcommands())


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_db_home_and_quiet_after_the_subcommand(command):
    sub = _subcommands()[command]
    argv = [command, *_required_arguments(sub), "--db", "after.db", "--home", "h", "--quiet"]
    args = build_parser().parse_args(argv)
    assert (args.db, args.home, args.quiet) == ("after.db", "h", True)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_db_before_the_subcommand_is_not_hidden_by_its_defaults(command):
    argv = ["--db", "before.db", "-q", command, *_required_arguments(_subcommands()[command])]
    args = build_parser().parse_args(argv)
    assert (args.db, args.home, args.quiet) == ("before.db", None, True)


@pytest.mark.parametrize("where", ["before", "after"])
def test_ingest_records_into_the_database_named_either_side(small_cohort_dir, tmp_path, where):
    target = tmp_path / f"{where}.db"
    options = ["--db", str(target), "--quiet"]
    argv = ["ingest", str(small_cohort_dir)]
    argv = [*options, *argv] if where == "before" else [*argv, *options]
    assert main(argv) == 0
    with db.connect(target) as conn:
        assert len(db.cases_frame(conn)) == 40


def test_help_loads_no_torch():
    probe = (
        "import sys\n"
        "from core.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
