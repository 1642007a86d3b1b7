"""`cervixscope demo-data` and `cervixscope ingest`: build the demo cohort, ingest a DICOM folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

SMALL_COUNTS = (48, 12, 6)  # --small: a quick cohort with every class present


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo-data",
        help="write the synthetic demo cohort (DICOM + manifest.csv)",
        description="Write the synthetic demo cohort: T2 sagittal pelvis MRI slices as DICOM files "
        "plus manifest.csv with lesion boxes (641 patients: 487 SCC, 116 AC, 38 ASC).",
        epilog="Example: cervixscope demo-data --out data/demo --seed 0",
    )
    p.add_argument("--out", default="data/demo", help="output folder (default: data/demo)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--small",
        action="store_true",
        help=f"a small cohort of {sum(SMALL_COUNTS)} patients {SMALL_COUNTS} for quick tries",
    )
    p.add_argument(
        "--external",
        action="store_true",
        help="instead, a small external cohort from a second synthetic scanner (40 patients, "
        "two sites, another contrast, noise and class mix) for `cervixscope validate`",
    )
    p.add_argument(
        "--series",
        action="store_true",
        help="instead, whole T2 sagittal series at real size (12 patients, 24 slices of 512x512, "
        "16-bit; the manifest names the slices through the lesion) to try the reading page on",
    )
    p.set_defaults(handler=demo_data)

    p = subparsers.add_parser(
        "ingest",
        help="read a DICOM folder + manifest into lesion crops and the case table",
        description="Read every image the manifest lists, check it, crop the lesion box and cache "
        "the crops; record cases and images in the database. Bad rows are reported, not fatal.",
        epilog="Example: cervixscope ingest data/demo --report ingest-report.csv",
    )
    p.add_argument("data_dir", help="folder of DICOM files (manifest paths are relative to it)")
    p.add_argument("--manifest", help="manifest CSV (default: DATA_DIR/manifest.csv)")
    p.add_argument("--crop-size", type=int, default=100, help="crop side in pixels (default: 100)")
    p.add_argument(
        "--margin",
        type=float,
        default=0.1,
        help="context around the lesion box, fraction of its side (default: 0.1)",
    )
    p.add_argument("--report", help="also write the ingestion report CSV here")
    p.add_argument(
        "--cohort",
        default="internal",
        help="cohort the cases belong to (default: internal; name an external test set)",
    )
    p.add_argument(
        "--allow-label-change",
        action="store_true",
        help="let this manifest change the label of cases already stored (each change is "
        "audited); without it such an ingestion is refused, naming the cases and their runs",
    )
    p.add_argument(
        "--marks-by",
        metavar="NAME",
        help="whose stored lesion marks give the box of a row without box or mask (an "
        "annotator's name, or admin); default: the admin's choice for the cohort, else the only "
        "annotator who marked the case",
    )
    p.add_argument(
        "--no-db", action="store_true", help="do not record the ingestion in the database"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=ingest)


def demo_data(args: argparse.Namespace) -> int:
    from core.data.demo_data import PAPER_COUNTS, generate_demo_cohort

    if args.external:
        from core.data.demo_data import EXTERNAL_COUNTS, generate_external_cohort

        manifest = generate_external_cohort(args.out, seed=args.seed + 1)
        print(f"wrote a synthetic external cohort {EXTERNAL_COUNTS} to {args.out}: {manifest}")
        return 0
    if args.series:
        from core.data.demo_data import (
            SERIES_COUNTS,
            SERIES_SIZE,
            SERIES_SLICES,
            generate_series_cohort,
        )

        manifest = generate_series_cohort(args.out, seed=args.seed)
        print(
            f"wrote {sum(SERIES_COUNTS)} synthetic series of {SERIES_SLICES} slices of "
            f"{SERIES_SIZE}x{SERIES_SIZE} to {args.out}: {manifest}"
        )
        return 0
    counts = SMALL_COUNTS if args.small else PAPER_COUNTS
    start = time.perf_counter()
    manifest = generate_demo_cohort(args.out, seed=args.seed, counts=counts)
    n_files = sum(1 for _ in open(manifest, encoding="utf-8")) - 1
    print(
        f"wrote {n_files} DICOM slices of {sum(counts)} synthetic patients "
        f"(SCC {counts[0]}, AC {counts[1]}, ASC {counts[2]}) to {Path(args.out)} "
        f"in {time.perf_counter() - start:.1f} s; manifest: {manifest}"
    )
    return 0


def ingest(args: argparse.Namespace) -> int:
    from core.data.ingest import ingest_folder

    conn = None
    if not args.no_db:
        import db

        if hasattr(db, "connect"):
            conn = db.connect(args.db)
        else:  # the database layer is not there yet: crops are still cached
            print("warning: db.connect is unavailable; the ingestion is not recorded in a database")
    try:
        result = ingest_folder(
            args.data_dir,
            args.manifest,
            crop_size=args.crop_size,
            margin=args.margin,
            conn=conn,
            progress=not args.quiet,
            report_csv=args.report,
            cohort=args.cohort,
            allow_label_change=args.allow_label_change,
            marks_by=args.marks_by,
        )
    finally:
        if conn is not None:
            conn.close()
    print(result.summary())
    if result.crops.n_images == 0:
        print("nothing usable was ingested: see the report above")
        return 1
    return 0
