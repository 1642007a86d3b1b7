"""`cervixscope demo-study` and `cervixscope study export-reads|import-reads`."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo-study",
        help="seed the demo reader study with the two simulated paper experts",
        description="Creates 'Demo reader study' over every case in the database, read by two "
        "simulated experts whose confusion tables equal the paper's. Re-running adds nothing. "
        "Example: cervixscope demo-study --model-run RUN_ID",
    )
    demo.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    demo.add_argument("--model-run", help="model run to compare with (default: none)")
    demo.set_defaults(handler=_demo_study)

    study = subparsers.add_parser(
        "study",
        help="export or import a reader study's reads as CSV",
        description="Example: cervixscope study export-reads --study 1 --out reads.csv",
    )
    actions = study.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    export = actions.add_parser(
        "export-reads",
        help="write every read of a study to a CSV file",
        description="Example: cervixscope study export-reads --study 1 --out reads.csv",
    )
    export.add_argument("--study", type=int, required=True, help="study id")
    export.add_argument("--out", type=Path, required=True, help="CSV file to write")
    export.set_defaults(handler=_export_reads)
    imp = actions.add_parser(
        "import-reads",
        help="add reads from a CSV file (validated first; nothing is written on any error)",
        description="Example: cervixscope study import-reads --study 1 reads.csv",
    )
    imp.add_argument("--study", type=int, required=True, help="study id")
    imp.add_argument("csv", type=Path, help="CSV file in the export-reads format")
    imp.set_defaults(handler=_import_reads)


def _demo_study(args: argparse.Namespace) -> int:
    import db
    from core.reader_study.simulate import seed_demo_study

    conn = db.connect(args.db)
    try:
        study_id = seed_demo_study(conn, seed=args.seed, model_run_id=args.model_run)
    finally:
        conn.close()
    print(f"demo study {study_id} ready (two simulated readers)")
    return 0


def _export_reads(args: argparse.Namespace) -> int:
    import db

    conn = db.connect(args.db)
    try:
        db.export_reads_csv(conn, args.study, args.out)
    finally:
        conn.close()
    print(f"wrote {args.out}")
    return 0


def _import_reads(args: argparse.Namespace) -> int:
    import db

    if not args.csv.exists():
        raise FileNotFoundError(f"no such CSV file: {args.csv}")
    conn = db.connect(args.db)
    try:
        n = db.import_reads_csv(conn, args.study, args.csv)
    finally:
        conn.close()
    print(f"imported {n} reads into study {args.study}")
    return 0
