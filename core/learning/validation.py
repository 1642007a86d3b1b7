"""External validation: apply a run's frozen models to another cohort, and per-site results.

The run's models are used exactly as saved: by default the ensemble of its fold models (the mean
of their probabilities, each fold model never retrained), or its final model (trained once on all
the run's cases). The external cases must never have been part of the run: a case the run trained
on or predicted is refused, so external numbers cannot leak.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.data.dataset import CropSet, mean_by_case
from core.data.labels import CLASSES

VALIDATION_MODELS = ("ensemble", "final")
PROBABILITY_COLUMNS = ("p_scc", "p_ac", "p_asc")  # CLASSES order, as db.validations stores them


@dataclass
class ValidationResult:
    """Per-case predictions of an external cohort, their metrics and what made them."""

    run_id: str
    cohort: str
    model: str
    source: str  # the model in words
    predictions: pd.DataFrame  # case_id, label, predicted, p_scc, p_ac, p_asc, site
    metrics: pd.DataFrame  # core.statistics.metrics.classification_table
    provenance: dict = field(default_factory=dict)
    shift: list = field(default_factory=list)  # core.data.shift.ShiftCheck as dicts
    validation_id: int | None = None


def run_cases(run_id: str, *, runs_dir: str | Path | None = None, conn=None) -> set[str]:
    """Every case run ``run_id`` trained on or predicted (its fold models' case lists, plus its
    stored out-of-fold predictions when ``conn`` is given)."""
    from core.learning.fold_models import fold_cases

    seen: set[str] = set()
    for record in fold_cases(run_id, runs_dir).values():
        seen.update(record["train_cases"], record["test_cases"])
    if conn is not None:
        import db

        seen.update(db.predictions_frame(conn, [run_id])["case_id"].astype(str))
    return seen


def apply_run(run_id: str, crops: CropSet, *, model: str = "ensemble", runs_dir=None):
    """Per-image probabilities of ``crops`` from a run's frozen models, and the model in words.

    Raises
    ------
    ValueError
        On an unknown ``model``.
    FileNotFoundError
        When the run kept no such model.
    """
    from core.learning.predict import predict_crops

    if model not in VALIDATION_MODELS:
        raise ValueError(f"model={model!r}: expected one of {', '.join(VALIDATION_MODELS)}")
    if model == "final":
        from core.learning.final_model import load_run_model

        final, _ = load_run_model(run_id, runs_dir=runs_dir)
        return predict_crops(final, crops.crops), f"final model of run {run_id}"
    from core.learning.fold_models import load_fold_ensemble

    members = load_fold_ensemble(run_id, runs_dir=runs_dir)
    if not members:
        raise FileNotFoundError(f"run {run_id} kept no fold models: use --model final")
    proba = np.mean([predict_crops(m, crops.crops) for m in members], axis=0)
    return proba, f"ensemble of the {len(members)} fold models of run {run_id} (mean probability)"


def validate_run(
    run_id: str,
    crops: CropSet,
    *,
    cohort: str,
    model: str = "ensemble",
    sites: dict | None = None,
    conn=None,
    runs_dir: str | Path | None = None,
    shift: list | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> ValidationResult:
    """Apply run ``run_id``'s frozen models to an external cohort's crops and score them.

    Parameters
    ----------
    run_id : str
    crops : CropSet
        The external cohort (``core.data.ingest.ingest_folder(...).crops``).
    cohort : str
        Its name, as ingested (``--cohort``).
    model : {"ensemble", "final"}, default "ensemble"
    sites : dict, optional
        ``case_id -> site`` for per-site tables.
    conn : sqlite_utils.Database, optional
        When given, the run must exist there, its stored predictions count as seen cases, and the
        validation is stored (``db.record_validation``).
    runs_dir : path, optional
    shift : list of core.data.shift.ShiftCheck, optional
        Stored with the validation.
    seed, n_boot : int
        Of the patient-level bootstrap CIs (one row per patient).

    Returns
    -------
    ValidationResult

    Raises
    ------
    ValueError
        If an external case was part of the run, or the cohort is empty.
    """
    if crops.n_images == 0:
        raise ValueError(f"cohort {cohort} has no usable images to validate on")
    if conn is not None:
        import db

        db.get_run(conn, run_id)
    overlap = sorted(
        set(crops.case_ids.astype(str)) & run_cases(run_id, runs_dir=runs_dir, conn=conn)
    )
    if overlap:
        raise ValueError(
            f"{len(overlap)} case(s) of cohort {cohort} were part of run {run_id} "
            f"({', '.join(overlap[:5])}); an external cohort must be new to the run"
        )
    proba, source = apply_run(run_id, crops, model=model, runs_dir=runs_dir)
    predictions = case_predictions(crops, proba, sites)
    result = ValidationResult(
        run_id, cohort, model, source, predictions, metrics_table(predictions, seed, n_boot),
        provenance=_provenance(run_id, crops, model, source),
        shift=[vars(check) for check in (shift or [])],
    )  # fmt: skip
    if conn is not None:
        result.validation_id = _store(conn, result)
    return result


def case_predictions(crops: CropSet, proba: np.ndarray, sites: dict | None = None):
    """One row per case: the mean of its images' probabilities, its arg-max and true label."""
    cases, mean = mean_by_case(crops.case_ids.astype(str), np.asarray(proba, dtype=float))
    first = np.unique(crops.case_ids.astype(str), return_index=True)[1]
    frame = pd.DataFrame(mean, columns=list(PROBABILITY_COLUMNS))
    frame.insert(0, "case_id", cases)
    frame.insert(1, "label", crops.labels[first].astype(int))
    frame.insert(2, "predicted", mean.argmax(1).astype(int))
    frame["site"] = [None if sites is None else sites.get(c) for c in cases]
    return frame


def metrics_table(predictions: pd.DataFrame, seed: int = 0, n_boot: int = 1000) -> pd.DataFrame:
    """``core.statistics.metrics.classification_table`` of per-case predictions (rows are
    patients, so the bootstrap CIs are patient-level)."""
    from core.statistics import metrics

    score = predictions[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class absent at a site gives NaN, said in the table
        return metrics.classification_table(
            predictions["label"].to_numpy(dtype=np.int64),
            predictions["predicted"].to_numpy(dtype=np.int64),
            score,
            seed=seed,
            n_boot=n_boot,
        )


def per_site_tables(predictions: pd.DataFrame, *, seed: int = 0, n_boot: int = 1000) -> dict:
    """Per site: its case count, confusion matrix and metrics table with patient-level CIs.

    Parameters
    ----------
    predictions : DataFrame
        One row per case with ``label, predicted, site`` and ``p_scc, p_ac, p_asc`` (as
        :func:`case_predictions` makes, or out-of-fold predictions renamed to these columns).

    Returns
    -------
    dict
        ``{site: {"n_cases": int, "confusion": ndarray (3, 3), "metrics": DataFrame}}`` in sorted
        site order; cases without a site are grouped under ``"-"``. The confusion matrices add up
        to the pooled one.
    """
    from core.statistics.metrics import confusion_matrix

    site = predictions["site"].fillna("-").astype(str)
    out = {}
    for name in sorted(site.unique()):
        part = predictions[site == name]
        out[name] = {
            "n_cases": len(part),
            "confusion": confusion_matrix(part["label"], part["predicted"], n_classes=len(CLASSES)),
            "metrics": metrics_table(part, seed, n_boot),
        }
    return out


def _provenance(run_id: str, crops: CropSet, model: str, source: str) -> dict:
    from core.learning.provenance import code_version

    return {
        "run_id": run_id,
        "model": model,
        "source": source,
        "data_hash": crops.data_hash(),
        "n_images": int(crops.n_images),
        "n_cases": int(len(np.unique(crops.case_ids))),
        "code_version": code_version(),
    }


def _store(conn, result: ValidationResult) -> int:
    import db

    return db.record_validation(
        conn,
        run_id=result.run_id,
        cohort=result.cohort,
        model=result.model,
        predictions=result.predictions,
        metrics=result.metrics.to_dict("records"),
        provenance=result.provenance,
        shift=result.shift,
    )


def validate_folder(
    run_id: str,
    data_dir,
    *,
    conn,
    cohort: str = "external",
    model: str = "ensemble",
    manifest=None,
    runs_dir=None,
    progress: bool = False,
) -> tuple[ValidationResult, list]:
    """Ingest an external DICOM folder as ``cohort``, check it for shift against the run's own
    cohort, apply the run's frozen models and store the validation.

    The folder is read once without touching the database, so a cohort that overlaps the run is
    refused before any of its cases is recorded.

    Returns
    -------
    (ValidationResult, list of core.data.shift.ShiftCheck)
        The stored validation, and every shift check (flagged or not; empty when the run's cohort
        folder can no longer be read).
    """
    from core.data.ingest import ingest_folder
    from core.data.shift import compare_cohorts, profile_ingestion

    db_run = _checked_run(conn, run_id)
    options = {"progress": progress, "cohort": cohort}
    external = ingest_folder(data_dir, manifest, crop_size=db_run["crop_size"], **options)
    reference = _run_cohort(conn, run_id)
    _refuse_seen_cases(external.crops, reference, run_id, data_dir, runs_dir=runs_dir, conn=conn)
    external = ingest_folder(
        data_dir, manifest, crop_size=db_run["crop_size"], conn=conn, **options
    )
    checks = (
        compare_cohorts(
            profile_ingestion(reference, "internal"), profile_ingestion(external, cohort)
        )
        if reference is not None
        else []
    )
    sites = {case["case_id"]: case.get("site") for case in external.cases}
    result = validate_run(
        run_id, external.crops, cohort=cohort, model=model, sites=sites, conn=conn,
        runs_dir=runs_dir, shift=checks,
    )  # fmt: skip
    return result, checks


def _refuse_seen_cases(crops: CropSet, reference, run_id, data_dir, *, runs_dir, conn) -> None:
    """Refuse a cohort holding a case of the run, by key or by the same image under a new name
    (the training folder ingested again as another cohort)."""
    seen_cases = run_cases(run_id, runs_dir=runs_dir, conn=conn)
    seen = set(crops.case_ids.astype(str)) & seen_cases
    if reference is not None:
        digests = {
            hashlib.sha256(crop.tobytes()).digest(): str(case)
            for crop, case in zip(reference.crops.crops, reference.crops.case_ids, strict=True)
            if str(case) in seen_cases
        }
        for crop, case in zip(crops.crops, crops.case_ids, strict=True):
            twin = digests.get(hashlib.sha256(crop.tobytes()).digest())
            if twin is not None:
                seen.add(f"{case} (the images of {twin})" if twin != case else str(case))
    if seen:
        raise ValueError(
            f"{len(seen)} case(s) of {data_dir} were part of run {run_id} "
            f"({', '.join(sorted(seen)[:5])}); an external cohort must be new to the run"
        )


def _checked_run(conn, run_id: str) -> dict:
    import db

    run = db.get_run(conn, run_id)
    config = run.get("config") or {}
    return {"crop_size": int(config.get("crop_size", 100))}


def _run_cohort(conn, run_id: str):
    """The run's own cohort re-read from the folder it was ingested from (crops come from the
    cache), or None when that folder is gone."""
    import db
    from core.data.ingest import ingest_folder

    cases = set(db.predictions_frame(conn, [run_id])["case_id"].astype(str))
    frame = db.cases_frame(conn)
    own = frame.loc[frame["case_id"].isin(cases)].dropna(subset=["ingestion_id"])
    if own.empty:
        return None
    ingestion = db.get_ingestion(conn, int(own["ingestion_id"].mode().iloc[0]))
    try:
        return ingest_folder(
            ingestion["data_dir"], ingestion["manifest"], crop_size=ingestion["crop_size"] or 100,
            progress=False, cohort=own["cohort"].mode().iloc[0],
        )  # fmt: skip
    except (FileNotFoundError, ValueError):
        return None


def validation_text(result: ValidationResult, checks: list) -> str:
    """A few lines for a terminal: the model used, headline metrics with CIs, shift flags."""
    table = result.metrics.set_index(["scope", "metric"])
    lines = [
        f"validation {result.validation_id}: run {result.run_id} on cohort {result.cohort} "
        f"({len(result.predictions)} cases)",
        f"model: {result.source}",
    ]
    for key, name in ((("macro", "auc"), "macro AUC"), (("overall", "accuracy"), "accuracy")):
        if key in table.index:
            value, low, high = table.loc[key, ["value", "ci_low", "ci_high"]]
            lines.append(f"  {name}: {value:.3f} (95% CI {low:.3f}-{high:.3f}, patients resampled)")
    flagged = [check for check in checks if check.flagged]
    if not checks:
        lines.append("shift checks: not run (the run's own cohort folder could not be read)")
    else:
        lines.append(f"shift checks: {len(flagged)} of {len(checks)} differ")
        lines += [f"  DIFFERS {check.check}: {check.detail}" for check in flagged]
    return "\n".join(lines)
