"""`cervixscope cv | compare | predict | bench`: cross-validation, model comparison, prediction."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from core.commands.progress import ProgressBars
from core.data.labels import CLASSES


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", default="data/demo", help="ingested DICOM folder (default data/demo)")
    p.add_argument("--manifest", help="manifest CSV (default DATA/manifest.csv)")
    p.add_argument(
        "--cohort",
        default="internal",
        help="the cohort DATA is ingested as (default internal): a case is cohort + patient ID",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of folds, SMOTE and weights (0)")
    p.add_argument("--folds", type=int, default=10, help="number of folds (default 10)")
    p.add_argument("--balance", choices=("smote", "weights", "none"), default="smote")
    p.add_argument(
        "--weights",
        default="auto",
        help="auto (ImageNet if cached/downloadable, else random init with a warning), "
        "imagenet, none, or a state_dict PATH (default auto)",
    )
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--epochs", type=int, help="finetune mode: epochs (default 30)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_scale_out(p)


def _add_scale_out(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where the folds run: local (here, one after the other; default) or ray (each "
        "model, fold and seed one Ray task; needs pip install 'cervixscope[ray]')",
    )
    p.add_argument(
        "--ray-address",
        help="an existing Ray cluster (e.g. auto or ray://head:10001); default a local Ray",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="repeated cross-validation: the whole k-fold N times, fold seeds SEED, SEED+1, ... (1)",
    )


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "cv",
        help="cross-validate one model (patient-grouped, stratified folds) into the database",
        description="Cross-validate one model: frozen-backbone embeddings + logistic head per fold "
        "(features, the CPU default) or fine-tuning (finetune, for a GPU). SMOTE only ever sees "
        "a training fold. Every case gets one out-of-fold prediction, stored with the run.",
        epilog="Example: cervixscope cv --data data/demo --model resnet18 --mode features "
        "--folds 10 --seed 0 --balance smote --weights auto\n"
        "Run a subset of folds with --only-folds (--folds is the number of folds), and merge\n"
        "the jobs by giving them the same --run-id, on this machine or another:\n"
        "  cervixscope cv --folds 10 --only-folds 0,3 --run-id r1\n"
        "  cervixscope cv --folds 10 --only-folds 1,2,4,5,6,7,8,9 --run-id r1",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common(p)
    from core.learning.config import MODELS

    p.add_argument("--model", choices=MODELS, default="resnet18")
    p.add_argument("--mode", choices=("features", "finetune"), default="features")
    p.add_argument(
        "--group-by",
        choices=("patient", "site"),
        default="patient",
        help="patient: stratified patient-grouped folds (default); site: leave one site out "
        "(when sites <= --folds) or whole sites per fold, from the manifest's site column",
    )
    p.add_argument(
        "--only-folds",
        help="run only these folds, e.g. 0,3 (numbered from 0; --folds is the number of folds); "
        "jobs with the same --run-id merge into one run",
    )
    p.add_argument("--run-id", help="continue (or create) the run with this id")
    p.add_argument("--input-size", type=int, help="resize crops to this size (default: native)")
    p.add_argument("--compile", action="store_true", help="torch.compile in finetune mode")
    p.add_argument(
        "--bundle",
        metavar="DIR",
        help="write this job's folds to a result bundle folder instead of the database (needs "
        "--run-id); join the jobs' bundles with `cervixscope merge`",
    )
    p.set_defaults(handler=cmd_cv)

    p = subparsers.add_parser(
        "merge",
        help="import result bundles of --only-folds jobs into the database (the one writer)",
        description="Import the bundles that `cervixscope cv --only-folds ... --run-id R --bundle "
        "DIR` jobs wrote (e.g. a SLURM array), after checking that they belong together: the "
        "same config, data hash and code version, and no fold twice (also against what the "
        "database holds). Refused bundles write nothing.",
        epilog="Example: cervixscope merge bundles/fold-*   (then cervixscope dashboard)",
    )
    p.add_argument("bundles", nargs="+", help="bundle folders")
    p.set_defaults(handler=cmd_merge)

    p = subparsers.add_parser(
        "compare",
        help="cross-validate CNN, VGG16-BN and ResNet-18 on the same folds (Table 1)",
        description="Cross-validate several models on identical patient-grouped folds; they share "
        "a comparison id. --preset demo trains the CNN in a short schedule and embeds VGG16-BN "
        "at 64x64 so it fits 2 CPU cores; --preset gpu fine-tunes every model.",
        epilog="Example: cervixscope compare --data data/demo --preset demo --seed 0",
    )
    _add_common(p)
    p.add_argument("--models", default="cnn,vgg16_bn,resnet18", help="comma-separated models")
    p.add_argument("--preset", choices=("demo", "gpu", "none"), default="demo")
    p.set_defaults(handler=cmd_compare)

    p = subparsers.add_parser(
        "predict",
        help="class probabilities of a new case from a run's final model",
        description="Crop the lesion box of one DICOM slice exactly as ingestion does and "
        "classify it with the final model of a run (trained on all data after its folds).",
        epilog="Example: cervixscope predict data/demo/DEMO-0001/IM0001.dcm --roi 58,68,78,86 "
        "--run-id RUN_ID\n(after `make demo`: the file's lesion box is its row in "
        "data/demo/manifest.csv; RUN_ID is a finished run's id, e.g. from the Overview page)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", help="DICOM file")
    p.add_argument("--roi", required=True, help="lesion box x0,y0,x1,y1 in pixels")
    p.add_argument("--run-id", required=True, help="run whose final model to use")
    p.add_argument("--frame", type=int, default=0, help="frame of a multi-frame file (0)")
    p.add_argument(
        "--model",
        choices=("final", "ensemble"),
        default="final",
        help="final: the model trained on all data (default); ensemble: the mean of the fold models",
    )
    p.set_defaults(handler=cmd_predict)

    p = subparsers.add_parser(
        "bench",
        help="measure training-loop efficiency and CV speed against the obvious implementation",
        description="(a) images/s of the fine-tuning loop vs a bare forward/backward loop on "
        "random tensors of the same shape; (b) wall time of features-mode CV end to end vs a "
        "DataLoader + PIL pipeline that re-extracts features every fold, with both AUCs and the "
        "speed-up's ceiling; (c) features CV over one embedding pass (the limit, 1.0) at 1x, 2x "
        "and 4x the demo cohort, with time and peak memory; (m) classification_table's memory "
        "on 10,000 cases x 1,000 resamples; (p) every page's first render and the reader "
        "analysis with 20 readers on the database (--db), when it exists.",
        epilog="Example: cervixscope bench --data data/demo --skip b --json bench.json",
    )
    p.add_argument("--data", default="data/demo", help="ingested DICOM folder (default data/demo)")
    p.add_argument("--model", default="resnet18", help="backbone (default resnet18)")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--steps", type=int, default=20, help="(a) training steps to time (20)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-images", type=int, help="use only the first N images (quick tries)")
    p.add_argument("--skip", default="", help="letters of the parts to skip, e.g. b or a,b,p")
    p.add_argument("--json", help="also write the results here")
    p.add_argument(
        "--scales",
        default="1,10",
        help="(p) render the pages on copies of the database with its cohort this many times as "
        "large, each with 20 simulated readers over every case (default 1,10)",
    )
    p.add_argument(
        "--ray",
        action="store_true",
        help="also (r): the Ray executor's overhead per fold task and its speed-up over the local "
        "one on a features-mode CNN + ResNet-18 comparison (needs the ray extra)",
    )
    p.set_defaults(handler=cmd_bench)
    _register_validate(subparsers)


def _register_validate(subparsers) -> None:
    from core.learning.validation import VALIDATION_MODELS

    p = subparsers.add_parser(
        "validate",
        help="apply a run's frozen models to an external cohort and store the result",
        description="External validation: ingest DATA as its own cohort, compare its acquisition "
        "with the run's cohort (pixel spacing, orientation, series, crop intensity, class mix), "
        "apply the run's frozen models (by default the ensemble of its fold models, or its final "
        "model) and store one prediction per case with metrics and patient-level 95%% CIs.",
        epilog="Example: cervixscope demo-data --external --out data/demo_external && "
        "cervixscope validate --run RUN --data data/demo_external",
    )
    p.add_argument("--run", required=True, help="the run whose models are applied")
    p.add_argument("--data", required=True, help="the external cohort's DICOM folder")
    p.add_argument("--manifest", help="manifest CSV (default: DATA/manifest.csv)")
    p.add_argument("--cohort", default="external", help="cohort name (default: external)")
    p.add_argument("--model", choices=VALIDATION_MODELS, default="ensemble")
    p.set_defaults(handler=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    import db
    from core.learning.validation import validate_folder, validation_text

    conn = db.connect(args.db)
    try:
        result, checks = validate_folder(
            args.run, args.data, conn=conn, cohort=args.cohort, model=args.model,
            manifest=args.manifest, progress=not args.quiet,
        )  # fmt: skip
    finally:
        conn.close()
    print(validation_text(result, checks))
    return 0


def _load_crops(args, conn=None):
    import db
    from core.data.ingest import ingest_folder

    conn = conn if conn is not None else db.connect(args.db)
    result = ingest_folder(
        args.data, args.manifest, conn=conn, progress=not args.quiet, cohort=args.cohort
    )
    if result.crops.n_images == 0:
        raise ValueError(f"no usable images in {args.data}: see `cervixscope ingest {args.data}`")
    return conn, result.crops


def _config(args, **fields):
    from core.learning.config import RunConfig

    extra = {"epochs": args.epochs} if args.epochs else {}
    return RunConfig(
        n_folds=args.folds,
        seed=args.seed,
        balance=args.balance,
        weights=args.weights,
        device=args.device,
        **extra,
        **fields,
    )


def _print_summary(conn, run_ids) -> None:
    import db
    from core.learning.compare import comparison_table

    table = comparison_table(conn, run_ids)
    if table.empty:
        return
    keep = table[
        table["scope"].isin(["macro", *CLASSES])
        & table["metric"].isin(["precision", "sensitivity", "specificity", "auc"])
    ]
    keep = keep.assign(
        cell=[
            f"{v:.3f} [{lo:.3f}-{hi:.3f}]"
            for v, lo, hi in zip(keep["value"], keep["ci_low"], keep["ci_high"], strict=True)
        ]
    )
    wide = keep.pivot_table(
        index=["model", "scope"], columns="metric", values="cell", aggfunc="first"
    )
    print()
    print(wide.to_string())
    for run_id in run_ids:
        run = db.get_run(conn, run_id)
        seconds = (run.get("timings") or {}).get("total", float("nan"))
        print(f"{run['model']}: run {run_id} {run['status']} in {seconds:.1f} s")
        for text in run["warnings"]:
            print(f"  warning: {text}")


def cmd_cv(args: argparse.Namespace) -> int:
    if args.bundle:  # a scheduler's job: the study database is not opened at all
        return _cv_bundle(args)
    from contextlib import nullcontext

    import db
    from core.learning.liveness import Heartbeat, stop_on_sigterm

    stop_on_sigterm()  # SIGTERM (e.g. Cancel on the Run page) ends the run as cancelled
    if args.run_id is not None:
        db.check_run_id(args.run_id)  # a folder name under runs/: refused before any work
    conn = db.connect(args.db)
    try:
        # A run queued by the dashboard is alive while this process ingests, before it starts.
        with Heartbeat(conn, args.run_id) if args.run_id else nullcontext():
            return _cv(args, conn)
    except BaseException as exc:
        # The dashboard queued this run and only watches its row: whatever stops this process
        # before the run starts must show there as failed (or cancelled), never queued forever.
        if args.run_id is not None:
            _end_queued(conn, args.run_id, exc)
        raise


def _end_queued(conn, run_id: str, exc: BaseException) -> None:
    import db

    if isinstance(exc, (db.RunCancelled, KeyboardInterrupt)):
        try:
            if db.get_run(conn, run_id)["status"] == "queued":
                db.cancel_run(conn, run_id, str(exc) or "interrupted")
        except db.RunNotFound:  # stopped before the run was created
            pass
        return
    db.fail_queued_run(conn, run_id, str(exc) or repr(exc))


def _cv(args: argparse.Namespace, conn, *, runs_dir=None, summary: bool = True):
    only = None
    if args.only_folds:
        try:
            only = [int(x) for x in args.only_folds.split(",") if x.strip()]
        except ValueError as exc:
            raise ValueError(
                f"--only-folds {args.only_folds!r}: expected fold numbers like 0,3"
            ) from exc
    cfg = _config(
        args,
        model=args.model,
        mode=args.mode,
        folds=only,
        extra={"data_dir": str(Path(args.data).resolve())},  # what the dashboard's guard compares
        input_size=args.input_size,
        compile=args.compile,
    )
    conn, crops = _load_crops(args, conn)
    cfg = _site_grouping(conn, crops, cfg) if getattr(args, "group_by", "") == "site" else cfg
    run_ids = _run_cv_job(args, conn, crops, cfg, runs_dir=runs_dir)
    if not summary:
        return run_ids
    _print_summary(conn, run_ids)
    print(f"run id: {', '.join(run_ids)}")
    return 0


def _site_grouping(conn, crops, cfg):
    """``cfg`` for site-grouped folds: the sites of the cases (recorded at ingestion) in
    ``extra`` and one fold per site when there are no more sites than folds."""
    import db

    cases = db.cases_frame(conn).set_index("case_id")["site"]
    wanted = sorted(set(crops.case_ids.astype(str)))
    sites = {case: cases.get(case) for case in wanted}
    missing = [case for case, site in sites.items() if not isinstance(site, str) or not site]
    if missing:
        raise ValueError(
            f"--group-by site: {len(missing)} case(s) have no site ({', '.join(missing[:5])}); "
            "add a site column to the manifest and ingest again"
        )
    n_folds = min(cfg.n_folds, len(set(sites.values())))
    return cfg.replace(n_folds=n_folds, extra={**cfg.extra, "group_by": "site", "sites": sites})


def _run_cv_job(args, conn, crops, cfg, *, runs_dir=None) -> list[str]:
    """The run (or its repeats) on the executor ``--executor`` names; progress bars meanwhile."""
    from core.learning.cv import run_cvs
    from core.learning.repeats import repeat_plan

    if args.run_id is not None and args.repeats != 1:
        raise ValueError("--run-id names one run: use it with --repeats 1")
    plan = repeat_plan([cfg], args.repeats)
    plan[0].run_id = args.run_id
    bars = ProgressBars(quiet=args.quiet)
    try:
        with _executor(args) as executor:
            return run_cvs(
                crops, plan, conn=conn, progress=bars, executor=executor, runs_dir=runs_dir
            )
    finally:
        bars.close()


@contextmanager
def _executor(args):
    """``--executor`` with ``--ray-address``; a local Ray instance it started is shut down after."""
    from core.learning.executors import make_executor

    executor = make_executor(args.executor, address=args.ray_address)
    try:
        yield executor
    finally:
        executor.close()


def _cv_bundle(args: argparse.Namespace) -> int:
    """``cv --bundle DIR``: the job runs in a scratch database on local disk, then its folds,
    predictions, provenance and run files become a bundle for ``cervixscope merge``."""
    import tempfile

    import db
    from core.learning.bundles import write_bundle

    if not args.run_id:
        raise ValueError(
            "--bundle needs --run-id: every job of one run names the same id, so that "
            "`cervixscope merge` joins their folds"
        )
    db.check_run_id(args.run_id)
    if Path(args.bundle).exists() and any(Path(args.bundle).iterdir()):
        raise ValueError(f"bundle folder {args.bundle} is not empty: give each job its own")
    with tempfile.TemporaryDirectory(prefix="cervixscope-job-") as scratch:
        conn = db.connect(Path(scratch) / "job.db")
        (run_id,) = _cv(args, conn, runs_dir=Path(scratch) / "runs", summary=False)
        write_bundle(conn, run_id, args.bundle, runs_dir=Path(scratch) / "runs")
        folds = sorted(db.folds_frame(conn, [run_id])["fold"].astype(int))
    print(f"bundle {args.bundle}: run {run_id}, folds {folds}")
    print("merge the jobs' bundles with: cervixscope merge BUNDLE...")
    return 0


def cmd_merge(args: argparse.Namespace) -> int:
    import db
    from core.learning.bundles import merge_bundles

    conn = db.connect(args.db)
    for result in merge_bundles(conn, args.bundles):
        print(f"run {result['run_id']}: {result['status']}, folds {result['folds']}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from core.learning.compare import DEMO_OVERRIDES, GPU_OVERRIDES, run_comparison

    overrides = {"demo": DEMO_OVERRIDES, "gpu": GPU_OVERRIDES, "none": {}}[args.preset]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    cfg = _config(args)
    conn, crops = _load_crops(args)
    bars = ProgressBars(quiet=args.quiet)
    try:
        with _executor(args) as executor:
            run_ids = run_comparison(
                crops, models, cfg, conn=conn, overrides=overrides, progress=bars,
                executor=executor, repeats=args.repeats,
            )  # fmt: skip
    finally:
        bars.close()
    _print_summary(conn, run_ids)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import db
    from core.learning.predict import classify_case

    conn = db.connect(args.db)
    answer = classify_case(
        args.file, args.roi, run_id=args.run_id, conn=conn, frame=args.frame, model=args.model
    )
    probs = answer.probabilities
    print(f"model: {answer.source}")
    best = max(probs, key=probs.get)
    for name in CLASSES:
        print(f"{name:4s} {probs[name]:.3f}")
    print(f"predicted: {best}")
    return 0


def _scales(text: str) -> tuple[int, ...]:
    try:
        scales = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        scales = ()
    if not scales or min(scales) < 1:
        raise ValueError(f"--scales {text!r}: expected whole numbers >= 1, e.g. 1,10")
    return scales


def cmd_bench(args: argparse.Namespace) -> int:
    import db
    from core.bench.report import format_table
    from core.bench.runner import run_bench
    from core.data.ingest import ingest_folder

    crops = ingest_folder(args.data, progress=False).crops
    db_path = db.resolve_db_path(args.db)
    if args.max_images:
        crops = crops.subset(slice(0, args.max_images))
    results = run_bench(
        crops,
        model=args.model,
        n_folds=args.folds,
        device=args.device,
        steps=args.steps,
        batch_size=args.batch_size,
        skip=args.skip,
        db_path=db_path if db_path.exists() else None,
        page_scales=_scales(args.scales),
    )
    if args.ray:  # opt-in: Ray is imported only when asked for
        from core.bench.executors import bench_executors

        results.update(bench_executors(crops, n_folds=args.folds))
    print(format_table(results))
    if args.json:
        import json

        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
