"""Result bundles: folds computed anywhere, merged into the study database by its one writer.

A scheduler without Ray (a SLURM array, say) runs ``cervixscope cv --only-folds K --run-id R
--bundle DIR`` on each node. The job works in a scratch database on the node's local disk and
writes a self-contained folder: ``bundle.json`` (the run's config, provenance, warnings, timings,
folds and cases), ``predictions.csv`` (per case), ``image_predictions.csv`` (per image),
``folds.json`` (fold metrics) and ``files/`` (the run's folder: config, fold models). Then one
process, ``cervixscope merge DIR...``, checks the bundles belong together and imports them. The
study database is never opened by two machines, so it can stay off the shared filesystem.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

import db
from core.learning.artifacts import run_dir
from core.learning.config import PER_JOB_FIELDS
from db.predictions import PROB_COLUMNS
from db.transactions import write_transaction

BUNDLE_FORMAT = 1
MANIFEST = "bundle.json"
RUN_FIELDS = (
    "run_id", "model", "mode", "seed", "comparison_id", "repeat_group", "repeat_index", "config",
    "data_hash", "code_version", "packages", "device", "weights", "warnings", "timings",
)  # fmt: skip


@dataclass
class Bundle:
    """One bundle as read back: its manifest and its rows."""

    path: Path
    run: dict
    folds: list[dict]  # fold rows: fold, n_train, n_test, seconds, metrics
    cases: list[dict]  # case_id, label
    predictions: pd.DataFrame
    image_predictions: pd.DataFrame

    @property
    def fold_numbers(self) -> list[int]:
        return sorted(int(f["fold"]) for f in self.folds)

    @property
    def name(self) -> str:
        return f"{self.path} (run {self.run['run_id']}, folds {self.fold_numbers})"


def write_bundle(conn, run_id: str, out: str | Path, *, runs_dir: str | Path | None = None) -> Path:
    """Write the folds of ``run_id`` that ``conn`` holds (a job's scratch database) to ``out``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        The scratch database the job ran in.
    run_id : str
    out : path
        The bundle's folder; it must not exist yet or be empty.
    runs_dir : path, optional
        Where the job kept its run folder (copied to ``files/``).

    Returns
    -------
    Path
        ``out``.
    """
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"bundle folder {out} is not empty: give each job its own --bundle folder")
    out.mkdir(parents=True, exist_ok=True)
    run = db.get_run(conn, run_id)
    predictions = db.predictions_frame(conn, [run_id])
    images = db.image_predictions_frame(conn, [run_id])
    folds = db.folds_frame(conn, [run_id])
    cases = db.cases_frame(conn)
    cases = cases[cases["case_id"].isin(predictions["case_id"])]
    manifest = {
        "format": BUNDLE_FORMAT,
        "run": {key: run.get(key) for key in RUN_FIELDS},
        "folds": [
            {k: row[k] for k in ("fold", "n_train", "n_test", "seconds", "metrics")}
            for row in folds.to_dict("records")
        ],
        "cases": cases[["case_id", "label"]].to_dict("records"),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, default=_plain), encoding="utf-8")
    keep = ["case_id", "fold", *PROB_COLUMNS]
    predictions[keep].to_csv(out / "predictions.csv", index=False)
    images[["image_id", *keep]].to_csv(out / "image_predictions.csv", index=False)
    source = run_dir(run_id, runs_dir)
    if source.is_dir():
        shutil.copytree(source, out / "files")
    return out


def _plain(value):
    """JSON for numpy scalars in the fold rows."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a bundle")


def read_bundle(path: str | Path) -> Bundle:
    """Read one bundle folder back.

    Raises
    ------
    ValueError
        If ``path`` is not a bundle (no ``bundle.json``) or one of another format.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ValueError(f"{path} is not a result bundle: it has no {MANIFEST}")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != BUNDLE_FORMAT:
        raise ValueError(
            f"{path}: bundle format {manifest.get('format')!r}, this CervixScope reads "
            f"format {BUNDLE_FORMAT}"
        )
    read = {"float_precision": "round_trip", "dtype": {"case_id": str, "image_id": str}}
    return Bundle(
        path=path,
        run=manifest["run"],
        folds=manifest["folds"],
        cases=manifest["cases"],
        predictions=pd.read_csv(path / "predictions.csv", **read),
        image_predictions=pd.read_csv(path / "image_predictions.csv", **read),
    )


def _config_diff(a: dict, b: dict) -> list[str]:
    """Settings that differ between two runs' configs, those that may differ per job aside."""
    skip = set(PER_JOB_FIELDS)
    keys = sorted((set(a) | set(b)) - skip)
    return [f"{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in keys if a.get(k) != b.get(k)]


def check_bundles(bundles: list[Bundle]) -> None:
    """Refuse bundles of one run that do not belong together, naming the mismatch.

    Bundles of the same run id must share the config (but for per-job settings such as which
    folds), the data hash and the code version, and no fold may come twice.

    Raises
    ------
    ValueError
    """
    by_run: dict[str, list[Bundle]] = {}
    for bundle in bundles:
        by_run.setdefault(bundle.run["run_id"], []).append(bundle)
    for group in by_run.values():
        first = group[0]
        seen: dict[int, Bundle] = {}
        for other in group:
            _check_pair(first, other)
            for fold in other.fold_numbers:
                if fold in seen:
                    raise ValueError(
                        f"fold {fold} of run {other.run['run_id']} comes twice: in "
                        f"{seen[fold].path} and in {other.path}; merge each fold once"
                    )
                seen[fold] = other


def _check_pair(first: Bundle, other: Bundle) -> None:
    diff = _config_diff(first.run["config"] or {}, other.run["config"] or {})
    if diff:
        raise ValueError(
            f"bundle {other.path} has another config than {first.path}: {', '.join(diff)}; "
            "merge only folds of the same configuration"
        )
    for key, what in (("data_hash", "data hash"), ("code_version", "code version")):
        if first.run.get(key) != other.run.get(key):
            raise ValueError(
                f"bundle {other.path} has {what} {other.run.get(key)}, {first.path} has "
                f"{first.run.get(key)}: merge only folds of the same {what}"
            )


def _check_against_database(conn, bundles: list[Bundle]) -> None:
    """Each bundle against the run the database already holds (if any) and its cases."""
    for bundle in bundles:
        run = bundle.run
        existing = db.check_run_merge(
            conn, run["run_id"], config=run["config"] or {}, data_hash=run["data_hash"],
            per_job=PER_JOB_FIELDS,
        )  # fmt: skip
        if existing is None:
            continue
        if existing["code_version"] not in (None, run["code_version"]):
            raise ValueError(
                f"bundle {bundle.path} has code version {run['code_version']}, run "
                f"{run['run_id']} in the database has {existing['code_version']}: merge only "
                "folds of the same code version"
            )
        stored = set(db.folds_frame(conn, [run["run_id"]])["fold"].astype(int))
        twice = sorted(stored & set(bundle.fold_numbers))
        if twice:
            raise ValueError(
                f"bundle {bundle.path}: fold(s) {twice} of run {run['run_id']} are already in "
                "the database; merge each fold once"
            )
    labels = dict(zip(*[db.cases_frame(conn)[c] for c in ("case_id", "label")], strict=True))
    for bundle in bundles:
        for case in bundle.cases:
            known = labels.get(case["case_id"])
            if known is not None and known != case["label"]:
                raise ValueError(
                    f"bundle {bundle.path}: case {case['case_id']} is {case['label']} there and "
                    f"{known} in the database: merge only results on the same data"
                )


def merge_bundles(conn, paths, *, runs_dir: str | Path | None = None) -> list[dict]:
    """Import bundles into the study database, after every check, in one transaction.

    Parameters
    ----------
    conn : sqlite_utils.Database
        The study database (this process is its one writer).
    paths : iterable of path
        Bundle folders written by :func:`write_bundle` (``cv --bundle``).
    runs_dir : path, optional
        Where the runs' folders go (default ``<project home>/runs``); the bundles' files
        (fold models) are copied there.

    Returns
    -------
    list of dict
        Per run: ``run_id, status, folds`` (all folds the database now holds).

    Raises
    ------
    ValueError
        Naming the mismatch (config, data hash, code version, a fold twice, a case's label);
        nothing is written then.
    """
    from core.learning.cv import merge_timings

    bundles = [read_bundle(p) for p in paths]
    if not bundles:
        raise ValueError("merge: name at least one bundle folder")
    check_bundles(bundles)
    with write_transaction(conn):
        _check_against_database(conn, bundles)
        for bundle in bundles:
            _import(conn, bundle, merge_timings)
    results = []
    for run_id in dict.fromkeys(b.run["run_id"] for b in bundles):
        results.append(_conclude(conn, run_id, [b for b in bundles if b.run["run_id"] == run_id]))
        _copy_files([b for b in bundles if b.run["run_id"] == run_id], run_dir(run_id, runs_dir))
    return results


def _import(conn, bundle: Bundle, merge_timings) -> None:
    """One bundle's cases, run, predictions, folds, warnings and timings into the database."""
    run, run_id = bundle.run, bundle.run["run_id"]
    stored = set(db.cases_frame(conn)["case_id"])  # stored cases keep what ingestion gave them
    db.upsert_cases(
        conn,
        [
            {"case_id": c["case_id"], "label": c["label"]}
            for c in bundle.cases
            if c["case_id"] not in stored
        ],
    )
    try:
        existing = db.get_run(conn, run_id)
    except db.RunNotFound:
        existing = None
        db.create_run(
            conn, run_id=run_id, message="merged from bundles",
            **{k: run[k] for k in RUN_FIELDS if k not in ("run_id", "warnings", "timings")},
        )  # fmt: skip
    for fold in bundle.folds:
        number = int(fold["fold"])
        images = bundle.image_predictions[bundle.image_predictions["fold"] == number]
        cases = bundle.predictions[bundle.predictions["fold"] == number]
        db.save_image_predictions(conn, run_id, number, images)
        db.save_predictions(conn, run_id, number, cases)
        db.save_fold(
            conn, run_id, number, n_train=fold["n_train"], n_test=fold["n_test"],
            seconds=fold["seconds"], metrics=fold["metrics"],
        )  # fmt: skip
    known = set(existing["warnings"]) if existing else set()
    for text in run["warnings"] or []:
        if text not in known:
            db.add_run_warning(conn, run_id, text)
            known.add(text)
    if run["timings"]:
        old = (existing or {}).get("timings") or db.get_run(conn, run_id)["timings"]
        timings = merge_timings(old, _job_timings(run["timings"]))
        db.update_run(conn, run_id, timings=timings)


def _job_timings(timings: dict) -> dict:
    """A job's own timings, without the per-case figure that merge_timings recomputes."""
    return {k: v for k, v in timings.items() if k != "inference_seconds_per_case"}


def _conclude(conn, run_id: str, bundles: list[Bundle]) -> dict:
    """The run's status from the folds it now holds: done when every fold is in, else partial."""
    run = db.get_run(conn, run_id)
    n_folds = int((run["config"] or {}).get("n_folds", 0))
    folds = sorted(set(db.folds_frame(conn, [run_id])["fold"].astype(int)))
    complete = folds == list(range(n_folds))
    db.finish_run(
        conn, run_id, status="done" if complete else "partial",
        progress=len(folds) / max(n_folds, 1), timings=run["timings"],
        message=None if complete else f"folds done: {folds} of {n_folds}",
    )  # fmt: skip
    return {"run_id": run_id, "status": "done" if complete else "partial", "folds": folds}


def _copy_files(bundles: list[Bundle], target: Path) -> None:
    """The bundles' run files (fold models, config) into the run's folder; timings merged."""
    target.mkdir(parents=True, exist_ok=True)
    for bundle in bundles:
        files = bundle.path / "files"
        if files.is_dir():
            shutil.copytree(files, target, dirs_exist_ok=True, ignore=_skip_timings)


def _skip_timings(folder, names):
    return [n for n in names if n == "timings.json"]
