"""Fitting one outer fold: a logistic head on frozen embeddings, or a fine-tuned network; then the
fold's predictions per image and per case, and its metrics.

Everything here sees the training fold only for fitting; the test fold is only ever predicted.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from core.data.dataset import CropSet, mean_by_case
from core.data.labels import CLASSES
from core.learning.config import RunConfig
from core.learning.folds import inner_split
from core.learning.heads import LinearHead


@dataclass
class FoldFit:
    """What fitting one fold gives: its test images' probabilities and how long they took."""

    proba: np.ndarray  # (n_test_images, n_classes), rows in the order of the test images
    inference_seconds: float  # predicting the test images, their share of the embedding included
    notes: list[str] = field(default_factory=list)  # e.g. SMOTE's k reduced
    # finetune: epochs_run, best_epoch and history (per epoch: epoch, train_loss, val_loss)
    training: dict = field(default_factory=dict)
    state: dict | None = None  # finetune: the fold's network state (CPU tensors), kept with the run
    head: tuple | None = None  # features: the fold's head as (weight, bias) on the run's backbone


@dataclass
class FoldRecords:
    """One fold's rows for the database: per image, per case (mean of its images) and metrics."""

    image_rows: list[dict]
    case_rows: list[dict]
    metrics: dict[str, float]
    n_train: int  # training cases
    n_test: int  # test cases


def fold_seed(cfg: RunConfig, fold: int) -> int:
    """The seed of everything fitted in ``fold``: distinct per fold, fixed by the run's seed."""
    return cfg.seed * 1000 + fold


def fit_head_fold(
    embeddings: np.ndarray,
    labels: np.ndarray,
    test: np.ndarray,
    cfg: RunConfig,
    fold: int,
    *,
    embed_seconds: float,
) -> FoldFit:
    """Features mode: fit a ``LinearHead`` on the training images' embeddings, predict the test's.

    Parameters
    ----------
    embeddings : (n_images, d) array
    labels : (n_images,) int array
    test : (n_images,) bool array
        The fold's test images; the others train the head.
    cfg : RunConfig
    fold : int
    embed_seconds : float
        Time to embed every image: each test image's inference includes its share of it.

    Returns
    -------
    FoldFit
    """
    head = LinearHead(cfg, seed=fold_seed(cfg, fold))
    head.fit(embeddings[~test], labels[~test])
    t0 = time.perf_counter()
    proba = head.predict_proba(embeddings[test])
    seconds = time.perf_counter() - t0
    seconds += embed_seconds * test.sum() / len(embeddings)
    return FoldFit(proba, seconds, head.notes, head=head.as_linear())


def finetune_fold(crops: CropSet, test: np.ndarray, cfg: RunConfig, fold: int, device) -> FoldFit:
    """Finetune mode: train a fresh network on the training images (early stopping on an inner
    split of their patients), then predict the test images.

    Returns
    -------
    FoldFit
        ``training`` holds the epochs run and the best (restored) epoch.
    """
    from core.learning.models import build_model
    from core.learning.training import finetune, predict_proba, seed_everything

    seed_everything(fold_seed(cfg, fold), deterministic=cfg.deterministic)
    model, _ = build_model(cfg)
    idx = np.flatnonzero(~test)
    val = inner_split(
        crops.case_ids[idx], crops.labels[idx], fraction=cfg.val_fraction, seed=cfg.seed + fold
    )
    fit = finetune(
        model,
        crops.crops[idx[~val]],
        crops.labels[idx[~val]],
        cfg.replace(seed=fold_seed(cfg, fold)),
        x_val=crops.crops[idx[val]],
        y_val=crops.labels[idx[val]],
        device=device,
    )
    t0 = time.perf_counter()
    proba = predict_proba(model, crops.crops[test], device=device)
    seconds = time.perf_counter() - t0
    training = {
        "epochs_run": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "history": [_epoch_record(r) for r in fit.history],
    }
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return FoldFit(proba, seconds, [], training, state=state)


def _epoch_record(record: dict) -> dict:
    """One epoch's losses as plain floats (None when there was no validation split)."""
    val = record.get("val_loss")
    return {
        "epoch": int(record["epoch"]),
        "train_loss": float(record["train_loss"]),
        "val_loss": None if val is None or not np.isfinite(val) else float(val),
    }


def fold_records(crops: CropSet, test: np.ndarray, fit: FoldFit) -> FoldRecords:
    """The fold's predictions per image and per case (the mean of its images) and its metrics."""
    case_ids = crops.case_ids[test]
    cases, mean = mean_by_case(case_ids, fit.proba)
    case_labels = crops.labels[test][np.unique(case_ids, return_index=True)[1]]
    return FoldRecords(
        image_rows=[
            {"image_id": str(image), "case_id": str(case), **_probabilities(p)}
            for image, case, p in zip(crops.image_ids[test], case_ids, fit.proba, strict=True)
        ],
        case_rows=[
            {"case_id": str(c), **_probabilities(p)} for c, p in zip(cases, mean, strict=True)
        ],
        metrics={**fold_metrics(case_labels, mean), **fit.training},
        n_train=int(len(np.unique(crops.case_ids[~test]))),
        n_test=int(len(cases)),
    )


def _probabilities(p: np.ndarray) -> dict[str, float]:
    return {f"p_{name}": float(p[i]) for i, name in enumerate(CLASSES)}


def fold_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Per-fold summary numbers (case level) stored with each fold.

    Parameters
    ----------
    y_true : (n_cases,) int array
    proba : (n_cases, n_classes) array

    Returns
    -------
    dict
        ``accuracy, auc_macro, sensitivity_macro`` and ``auc_<class>`` per class (NaN for a
        class absent from the fold).
    """
    from core.statistics import metrics

    y_pred = proba.argmax(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aucs = metrics.roc_auc_ovr(y_true, proba)
        out = {
            "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
            "auc_macro": float(np.nanmean(aucs)) if np.isfinite(aucs).any() else float("nan"),
            "sensitivity_macro": float(metrics.sensitivity_score(y_true, y_pred, average="macro")),
        }
    for c, name in enumerate(CLASSES):
        out[f"auc_{name}"] = float(aucs[c])
    return out
