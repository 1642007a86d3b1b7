"""`cervixscope` command line: a thin shell over the library, one module per group of commands."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

import db
from core.commands import app, data, marks, study, train
from core.data.dicom_io import DicomReadError
from core.project import home

COMMAND_MODULES = (
    data,  # demo-data, ingest
    train,  # cv, compare, predict, bench
    study,  # demo-study, study export/import
    marks,  # annotator add/list/revoke, marks import/export
    app,  # demo, dashboard, prefetch-weights, unlock-admin
)
# What a bad input or a bad file raises: one line on stderr, exit status 2, no traceback.
USER_ERRORS = (
    ValueError,
    LookupError,
    OSError,  # FileNotFoundError, PermissionError, ...
    db.CervixScopeDBError,
    DicomReadError,
    sqlite3.DatabaseError,
)


# Accepted before or after the subcommand: (flags, argparse keywords, value when absent).
GLOBAL_OPTIONS = (
    (
        ("--db",),
        {"help": "SQLite database file (default: $CERVIXSCOPE_DB or ./cervixscope.db)"},
        None,
    ),
    (
        ("--home",),
        {
            "help": "folder for runs and caches (default: $CERVIXSCOPE_HOME or the database's folder)"
        },
        None,
    ),
    (("--quiet", "-q"), {"action": "store_true", "help": "no progress bars"}, False),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cervixscope",
        description="Classify cervical cancer type from T2 sagittal MRI, cross-validate it, "
        "and compare it with expert readers.",
        epilog="Example: cervixscope demo-data --out data/demo && cervixscope ingest data/demo",
    )
    for flags, options, default in GLOBAL_OPTIONS:
        parser.add_argument(*flags, default=default, **options)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    for sub in subparsers.choices.values():
        _accept_global_options(sub)
    return parser


def _accept_global_options(sub: argparse.ArgumentParser) -> None:
    """Let ``sub`` take the global options too, without hiding a value given before it.

    A subparser's defaults overwrite the main parser's values, so here they are SUPPRESS: an
    option absent after the subcommand keeps what was given (or defaulted) before it.
    """
    for flags, options, _ in GLOBAL_OPTIONS:
        own = [sub._option_string_actions[f] for f in flags if f in sub._option_string_actions]
        if own:
            own[0].default = argparse.SUPPRESS
        else:
            sub.add_argument(*flags, default=argparse.SUPPRESS, **options)
    for action in sub._actions:
        if isinstance(action, argparse._SubParsersAction):  # e.g. `study export`
            for nested in action.choices.values():
                _accept_global_options(nested)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _paths_in_environment(args):
            _log_to_home()
            return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"cervixscope {args.command}: error: {exc}", file=sys.stderr)
        return 2


def _log_to_home() -> None:
    """Library warnings (e.g. pydicom's, per ingested file) go to ``<home>/cervixscope.log``, not
    through the progress bars; they are also in the ingestion report."""
    root = logging.getLogger()
    if root.handlers:  # configured by the caller (a test, an embedding program)
        return
    try:
        path = home.project_home() / "cervixscope.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
    except OSError:  # a read-only home: drop them rather than break the command
        handler = logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


@contextmanager
def _paths_in_environment(args: argparse.Namespace):
    """``--db`` and ``--home`` through the environment while the command runs, so a dashboard or
    background run started from here agrees on where things are; restored afterwards."""
    chosen = {"CERVIXSCOPE_DB": args.db, "CERVIXSCOPE_HOME": args.home}
    saved = {name: os.environ.get(name) for name in chosen}
    try:
        for name, value in chosen.items():
            if value:
                os.environ[name] = str(Path(value).expanduser().absolute())
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


if __name__ == "__main__":
    sys.exit(main())
