"""`cervixscope` command line: a thin shell over the library, one module per group of commands."""

from __future__ import annotations

import argparse
import sqlite3
import sys

import db
from core.commands import app, data, study, train
from core.data.dicom_io import DicomReadError

COMMAND_MODULES = (
    data,  # demo-data, ingest
    train,  # cv, compare, predict, bench
    study,  # demo-study, study export/import
    app,  # demo, dashboard
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cervixscope",
        description="Classify cervical cancer type from T2 sagittal MRI, cross-validate it, "
        "and compare it with expert readers.",
        epilog="Example: cervixscope demo-data --out data/demo && cervixscope ingest data/demo",
    )
    parser.add_argument(
        "--db", help="SQLite database file (default: $CERVIXSCOPE_DB or ./cervixscope.db)"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        print(f"cervixscope {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
