"""`cervixscope demo-study`, `cervixscope study export-reads|import-reads|export-sr|model-marks` and
`cervixscope power given|cases|table` (planning a study from a pilot's variance components)."""

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
    sr = actions.add_parser(
        "export-sr",
        help="write every read as a DICOM SR measurement report (TID 1500), marks included",
        description="One Comprehensive 3D SR file per read, referencing the slices it marks; a "
        "read that cannot be written is named and the others are still written. "
        "Example: cervixscope study export-sr --study 1 --out reports/",
    )
    sr.add_argument("--study", type=int, required=True, help="study id")
    sr.add_argument("--out", type=Path, required=True, help="folder to write the SR files to")
    sr.set_defaults(handler=_export_sr)
    marks = actions.add_parser(
        "model-marks",
        help="mark every case of a localisation study with the model's Grad-CAM peak per type",
        description="The model as one more localisation reader: for each case and type, the "
        "peak of its fold model's Grad-CAM, mapped back to the slice. Runs torch (a few "
        "seconds per 100 cases on CPU). Example: cervixscope study model-marks --study 1",
    )
    marks.add_argument("--study", type=int, required=True, help="study id")
    marks.add_argument("--run", help="model run (default: the study's)")
    marks.set_defaults(handler=_model_marks)
    _register_power(subparsers)


def _pilot_options(parser: argparse.ArgumentParser) -> None:
    """Where the variance components come from: a study, an iMRMC file, or typed in."""
    src = parser.add_argument_group(
        "pilot (one of --study, --imrmc, or all of --var ... --pilot-cases)"
    )
    src.add_argument("--study", type=int, help="a pilot study in the database (aided vs unaided)")
    src.add_argument("--imrmc", type=Path, help="a pilot's reads in iMRMC format (2 modalities)")
    src.add_argument(
        "--fom", default="auc_macro", help="FOM of a --study pilot (default auc_macro)"
    )
    for name, what in (
        ("var", "Var, error variance"),
        ("cov1", "Cov1"),
        ("cov2", "Cov2"),
        ("cov3", "Cov3"),
        ("var-tr", "Var(T*R)"),
    ):
        src.add_argument(f"--{name}", type=float, help=f"typed-in OR component: {what}")
    src.add_argument("--pilot-cases", type=int, help="typed in: the pilot's number of cases K*")
    parser.add_argument(
        "--effect", type=float, help="AUC difference to detect (default: the pilot's)"
    )
    parser.add_argument(
        "--analysis",
        default="random",
        choices=["random", "fixed_readers", "fixed_cases"],
        help="random readers and cases (default), fixed readers, or fixed cases",
    )
    parser.add_argument("--alpha", type=float, default=0.05, help="two-sided level (default 0.05)")


def _register_power(subparsers: argparse._SubParsersAction) -> None:
    power = subparsers.add_parser(
        "power",
        help="plan a reader study: power and cases needed, from a pilot's variance components",
        description="Hillis, Obuchowski & Berbaum (2011), as RJafroc. "
        "Example: cervixscope power cases --imrmc pilot.imrmc --readers 10 --target 0.8",
    )
    actions = power.add_subparsers(dest="power_command", required=True, metavar="ACTION")
    given = actions.add_parser(
        "given",
        help="power for J readers and K cases",
        description="Example: cervixscope power given --study 1 --readers 10 --cases 165",
    )
    given.add_argument("--readers", type=int, required=True, help="readers J")
    given.add_argument("--cases", type=int, required=True, help="cases K")
    cases = actions.add_parser(
        "cases",
        help="the smallest number of cases reaching a target power",
        description="Example: cervixscope power cases --study 1 --readers 10 --target 0.8",
    )
    cases.add_argument("--readers", type=int, required=True, help="readers J")
    cases.add_argument("--target", type=float, default=0.8, help="target power (default 0.8)")
    table = actions.add_parser(
        "table",
        help="a readers x cases power table",
        description="Example: cervixscope power table --study 1 --readers 4,6,8,10 "
        "--cases 50,100,200",
    )
    table.add_argument("--readers", required=True, help="comma-separated readers, e.g. 4,6,8")
    table.add_argument("--cases", required=True, help="comma-separated cases, e.g. 50,100,200")
    for sub, handler in ((given, _power_given), (cases, _power_cases), (table, _power_table)):
        _pilot_options(sub)
        sub.set_defaults(handler=handler)


def _components(args: argparse.Namespace):
    from core.statistics import mrmc
    from core.statistics.power import VarianceComponents

    typed = [args.var, args.cov1, args.cov2, args.cov3, args.var_tr, args.pilot_cases]
    given = sum(x is not None for x in (args.study, args.imrmc)) + any(v is not None for v in typed)
    if given != 1:
        raise ValueError(
            "give the pilot one way: --study ID, --imrmc FILE, or all of --var --cov1 --cov2 "
            "--cov3 --var-tr --pilot-cases"
        )
    if args.imrmc is not None:
        reads = mrmc.read_imrmc(args.imrmc.read_text(encoding="utf-8"))
        return VarianceComponents.from_or_result(mrmc.or_analysis(reads))
    if args.study is not None:
        import db
        from core.reader_study.mrmc_inputs import pilot_components
        from core.reader_study.study_data import load_study_data

        conn = db.connect(args.db)
        try:
            return pilot_components(load_study_data(conn, args.study), fom=args.fom)
        finally:
            conn.close()
    if any(v is None for v in typed):
        raise ValueError(
            "typed-in components need all of --var --cov1 --cov2 --cov3 --var-tr --pilot-cases"
        )
    return VarianceComponents(
        var_tr=args.var_tr,
        var=args.var,
        cov1=args.cov1,
        cov2=args.cov2,
        cov3=args.cov3,
        n_cases=args.pilot_cases,
    )


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"--{what} {text!r} is not a comma-separated list of integers") from None
    if not values:
        raise ValueError(f"--{what} is empty: give e.g. 4,6,8")
    return values


def _power_given(args: argparse.Namespace) -> int:
    from core.statistics.power import power_given_jk

    result = power_given_jk(
        _components(args),
        n_readers=args.readers,
        n_cases=args.cases,
        effect_size=args.effect,
        analysis=args.analysis,
        alpha=args.alpha,
    )
    print(f"power {result.power:.8f}")
    print(result.summary())
    return 0


def _power_cases(args: argparse.Namespace) -> int:
    from core.statistics.power import cases_for_power

    result = cases_for_power(
        _components(args),
        n_readers=args.readers,
        effect_size=args.effect,
        target=args.target,
        analysis=args.analysis,
        alpha=args.alpha,
    )
    print(f"cases {result.n_cases} (power {result.power:.8f})")
    print(result.summary())
    return 0


def _power_table(args: argparse.Namespace) -> int:
    from core.statistics.power import power_table

    table = power_table(
        _components(args),
        readers=_int_list(args.readers, "readers"),
        cases=_int_list(args.cases, "cases"),
        effect_size=args.effect,
        analysis=args.analysis,
        alpha=args.alpha,
    )
    print(table.round(4).to_csv())
    return 0


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


def _export_sr(args: argparse.Namespace) -> int:
    from core.reader_study.structured_reports import export_study_reports

    result = export_study_reports(args.study, args.out, db_path=args.db)
    for line in result.problems:
        print(f"not written: {line}")
    print(f"wrote {len(result.files)} SR file(s) to {args.out}")
    return 1 if result.problems and not result.files else 0


def _model_marks(args: argparse.Namespace) -> int:
    from core.reader_study.model_marks import compute_model_marks

    stored, problems = compute_model_marks(args.study, run_id=args.run, db_path=args.db)
    for line in problems:
        print(f"not marked: {line}")
    print(f"stored {stored} model mark(s) for study {args.study}")
    return 1 if problems and not stored else 0


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
