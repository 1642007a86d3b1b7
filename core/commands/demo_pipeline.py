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
    url: str = "http://localhost:8501",
    secrets_path: str | Path | None = None,
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
    url, secrets_path : optional
        Where the dashboard will listen and where its admin secret is kept, for the summary.

    Returns
    -------
    dict
        Run id of each model of the comparison.
    """
    import db
    from core.reader_study.simulate import demo_reader_code, seed_demo_study

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
        code = demo_reader_code(conn, model_run_id=runs["resnet18"], seed=seed)
        say(demo_summary(conn, runs, url=url, secrets_path=secrets_path, reader_code=code))
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
    from core.commands.progress import ProgressBars
    from core.learning.compare import DEMO_OVERRIDES, run_comparison
    from core.learning.config import RunConfig

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


def demo_summary(conn, runs: dict[str, str], *, url: str, secrets_path, reader_code: str) -> str:
    """What ``make demo`` ends with: each model's macro AUC with its 95% CI, the weights really
    used, every warning, whether the data is synthetic, where to go and how to sign in.

    Parameters
    ----------
    conn : sqlite_utils.Database
    runs : dict
        Run id by model name.
    url : str
        The dashboard's address.
    secrets_path : path or None
        Where the admin secret is kept (the secret itself is never printed here).
    reader_code : str
        An access code of the demo reader.

    Returns
    -------
    str
        Several lines of plain text.
    """
    import db
    from core.learning.provenance import synthetic_text, weights_used
    from core.learning.summary import summary_auc

    lines = ["", "Model comparison: case-level macro AUC (95% CI), out-of-fold, patients resampled"]
    lines.append(f"  {'model':10s} {'AUC (95% CI)':22s} weights used")
    warnings = []
    for model, run_id in runs.items():
        run = db.get_run(conn, run_id)
        auc = summary_auc(run_id) or "not finished"
        lines.append(f"  {model:10s} {auc:22s} {weights_used(run['config'], run['weights'])}")
        warnings += [f"  {model}: {text}" for text in dict.fromkeys(run["warnings"])]
    lines += ["Warnings:", *(warnings or ["  none"])]
    counts = db.run_case_counts(conn).set_index("run_id")
    first = next(iter(runs.values()), None)
    if first in counts.index:
        data = synthetic_text(*counts.loc[first, ["n_cases", "n_synthetic"]])
        lines.append(f"Data: {data or 'real (no synthetic cases)'}")
    where = f"in {secrets_path}" if secrets_path else "from $CERVIXSCOPE_ADMIN_SECRET"
    lines += [
        f"Dashboard: {url}  (admin sign-in: the secret {where})",
        f"Reading workstation: sign in with the demo reader code {reader_code}",
    ]
    return "\n".join(lines)
