"""The demo pipeline behind `make demo`: cohort -> ingestion -> model comparison -> demo study.

Every step reuses what an earlier run already built: the cohort files, the content-hashed crop
cache, finished comparison runs on the same data, and the (idempotent) demo study.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

DEMO_MODELS = ("cnn", "vgg16_bn", "resnet18")


def _finished_comparison(conn, data_hash: str) -> dict[str, str] | None:
    """Run ids by model of the newest finished demo comparison on this data, if any."""
    import db

    runs = db.runs_frame(conn)
    if runs.empty:
        return None
    done = runs[(runs["status"] == "done") & (runs["data_hash"] == data_hash)]
    for comparison_id, group in done.groupby("comparison_id", sort=False):
        by_model = dict(zip(group["model"], group["run_id"], strict=True))
        if comparison_id and all(model in by_model for model in DEMO_MODELS):
            return {model: by_model[model] for model in DEMO_MODELS}
    return None


def run_demo(
    out_dir: str | Path,
    *,
    seed: int = 0,
    db_path: str | Path | None = None,
    counts: tuple[int, int, int] | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, str]:
    """Build (or reuse) the demo cohort, ingest it, compare the three models and seed the study.

    Parameters
    ----------
    out_dir : path
        Folder of the demo cohort (DICOM files and ``manifest.csv``).
    seed : int, default 0
        Seeds the cohort, the folds and the simulated readers.
    db_path : path, optional
        Database file (default ``$CERVIXSCOPE_DB`` or ``./cervixscope.db``).
    counts : (int, int, int), optional
        Patients per class; default the paper's 487/116/38.

    Returns
    -------
    dict
        Run id of each model of the comparison.
    """
    import db
    from core.reader_study.simulate import seed_demo_study

    out = _demo_cohort(Path(out_dir), seed=seed, counts=counts, say=say)
    conn = db.connect(db_path)
    try:
        crops = _ingest(out, conn, say)
        runs = _finished_comparison(conn, crops.data_hash())
        if runs:
            say("comparison: reusing finished runs " + ", ".join(runs.values()))
        else:
            runs = _compare(crops, conn, seed=seed)
        study_id = seed_demo_study(conn, seed=seed, model_run_id=runs["resnet18"])
        say(f"demo reader study: id {study_id} (two simulated readers, labelled simulated)")
        return runs
    finally:
        conn.close()


def _demo_cohort(out: Path, *, seed: int, counts, say) -> Path:
    """The demo cohort's folder, generated unless a manifest is already there."""
    from core.data.demo_data import PAPER_COUNTS, generate_demo_cohort

    if (out / "manifest.csv").exists():
        say(f"demo cohort: reusing {out}")
    else:
        say(f"demo cohort: generating {sum(counts or PAPER_COUNTS)} synthetic patients in {out}")
        generate_demo_cohort(out, seed=seed, counts=counts or PAPER_COUNTS)
    return out


def _ingest(out: Path, conn, say):
    """Ingest the cohort (crop cache reused) and say what came in; return its CropSet."""
    from core.data.ingest import ingest_folder

    result = ingest_folder(out, conn=conn)
    n_cases = len(set(result.crops.case_ids.tolist()))
    say(
        f"ingestion: {result.crops.n_images} images of {n_cases} patients, "
        f"{len(result.issues)} errors (report: {result.report_csv})"
    )
    for issue in result.issues:
        say(f"  row {issue.row} ({issue.path}): {issue.problem}")
    return result.crops


def _compare(crops, conn, *, seed: int) -> dict[str, str]:
    """The demo comparison of the three models; run id by model."""
    from core.learning.compare import DEMO_OVERRIDES, run_comparison
    from core.learning.config import RunConfig
    from core.progress import ProgressBars

    bars = ProgressBars()
    try:
        run_ids = run_comparison(
            crops,
            list(DEMO_MODELS),
            RunConfig(mode="features", seed=seed),
            conn=conn,
            overrides=DEMO_OVERRIDES,
            progress=bars,
        )
    finally:
        bars.close()
    return dict(zip(DEMO_MODELS, run_ids, strict=True))
