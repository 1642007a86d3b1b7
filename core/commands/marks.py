"""`cervixscope annotator add|list|revoke` and `cervixscope marks import|export`: annotators'
access codes, and lesion marks in and out as DICOM SEG (and NIfTI in)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    annotator = subparsers.add_parser(
        "annotator",
        help="add, list or revoke annotators (who mark lesions on the Annotate lesions page)",
        description="Example: cervixscope annotator add 'Dr Chen' (prints the access code once)",
    )
    actions = annotator.add_subparsers(dest="annotator_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an annotator and print their access code once")
    add.add_argument("name", help="display name (stored with every mark they save)")
    add.set_defaults(handler=_add)
    actions.add_parser("list", help="annotators and how many cases each marked").set_defaults(
        handler=_list
    )
    revoke = actions.add_parser("revoke", help="end an annotator's code (their marks stay)")
    revoke.add_argument("annotator_id", type=int)
    revoke.set_defaults(handler=_revoke)
    _register_marks(subparsers)


def _register_marks(subparsers: argparse._SubParsersAction) -> None:
    marks = subparsers.add_parser(
        "marks",
        help="import lesion masks (DICOM SEG, NIfTI) or export marks as DICOM SEG",
        description="Example: cervixscope marks import lesion.seg.dcm --patient P001 --author "
        "'Dr Chen'; cervixscope marks export --author 'Dr Chen' --out seg/",
    )
    actions = marks.add_subparsers(dest="marks_command", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="store a SEG or NIfTI mask as a new version of an author's marks on one case",
        description="A SEG is matched to the case's slices by the SOP Instance UIDs it "
        "references, else by position; a NIfTI by its voxel geometry. Nothing is stored unless "
        "the whole file matches.",
    )
    imp.add_argument("file", type=Path, help="a DICOM SEG (.dcm) or NIfTI (.nii, .nii.gz) file")
    imp.add_argument("--patient", required=True, help="the case's patient ID")
    imp.add_argument("--cohort", default="internal", help="its cohort (default: internal)")
    imp.add_argument("--author", default="admin", help="whose marks these are (default: admin)")
    imp.set_defaults(handler=_import)
    export = actions.add_parser(
        "export", help="write one DICOM SEG per case with the author's current marks"
    )
    export.add_argument("--author", default="admin", help="whose marks (default: admin)")
    export.add_argument("--cohort", default="internal", help="cohort (default: internal)")
    export.add_argument("--out", type=Path, required=True, help="folder to write the SEG files to")
    export.set_defaults(handler=_export)


def _add(args: argparse.Namespace) -> int:
    import db

    conn = db.connect(args.db)
    try:
        annotator_id, code = db.add_annotator(conn, args.name)
        db.record_event(conn, "annotator_added", role="admin", client="cli",
                        detail=f"annotator {annotator_id}")  # fmt: skip
    finally:
        conn.close()
    print(f"annotator {annotator_id} ({args.name.strip()}): access code {code}")
    print("The code is shown only now; hand it to the annotator (sign in on the dashboard).")
    return 0


def _list(args: argparse.Namespace) -> int:
    import db

    conn = db.connect(args.db)
    try:
        frame = db.annotators_frame(conn)
    finally:
        conn.close()
    print(frame.to_string(index=False) if not frame.empty else "no annotators yet")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    import db

    conn = db.connect(args.db)
    try:
        db.revoke_annotator_code(conn, args.annotator_id)
        db.record_event(conn, "annotator_code_revoked", role="admin", client="cli",
                        detail=f"annotator {args.annotator_id}")  # fmt: skip
    finally:
        conn.close()
    print(f"annotator {args.annotator_id}: code revoked; their marks are kept")
    return 0


def _case_slices(conn, cohort: str, patient: str):
    import db
    from core.annotation.marks import case_slices

    case_id = db.case_key(cohort, patient)
    if not (db.cases_frame(conn)["case_id"] == case_id).any():
        raise LookupError(f"no case {case_id} in the database: ingest its folder first")
    slices = case_slices(conn, case_id)
    if isinstance(slices, str):
        raise ValueError(f"case {case_id}: {slices}")
    return case_id, slices


def _import(args: argparse.Namespace) -> int:
    import db
    from core.annotation import formats

    if not args.file.is_file():
        raise FileNotFoundError(f"mask file not found: {args.file}")
    conn = db.connect(args.db)
    try:
        case_id, slices = _case_slices(conn, args.cohort, args.patient)
        nifti = args.file.name.lower().endswith((".nii", ".nii.gz"))
        reader = formats.import_nifti if nifti else formats.import_seg
        version = reader(conn, args.file, case_id, slices, args.author)
        db.record_event(conn, "marks_imported", role="admin", client="cli",
                        detail=f"{args.file.name} -> {case_id} {args.author} v{version}")  # fmt: skip
    finally:
        conn.close()
    print(f"{args.file.name}: stored as version {version} of {args.author}'s marks on {case_id}")
    return 0


def _export(args: argparse.Namespace) -> int:
    import db
    from core.annotation.formats import export_seg
    from core.annotation.marks import case_slices, marked_cases, marks_on_slices

    conn = db.connect(args.db)
    written, problems = 0, []
    try:
        for case_id in sorted(marked_cases(conn, args.cohort, args.author)):
            slices = case_slices(conn, case_id)
            if isinstance(slices, str):
                problems.append(f"{case_id}: {slices}")
                continue
            marks = marks_on_slices(conn, case_id, slices).get(args.author, [])
            name = db.split_case_key(case_id)[1].replace("/", "_")
            try:
                export_seg(marks, slices, args.out / f"{name}.seg.dcm", author=args.author)
                written += 1
            except (ValueError, OSError) as exc:  # one bad case never stops the rest
                problems.append(f"{case_id}: {exc}")
    finally:
        conn.close()
    print(f"wrote {written} DICOM SEG file(s) of {args.author}'s marks to {args.out}")
    for line in problems:
        print(f"  skipped {line}")
    return 0 if not problems else 1
