"""`cervixscope` command line: a thin shell over the library, one module per group of commands."""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "core.commands.data",  # demo-data, ingest
    "core.commands.train",  # cv, compare, predict, bench
    "core.commands.study",  # demo-study, study export/import
    "core.commands.app",  # demo, dashboard
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
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
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
    except (ValueError, FileNotFoundError, LookupError) as exc:
        print(f"cervixscope {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
