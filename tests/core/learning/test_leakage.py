"""The CV engine's leakage guards: a canary on SMOTE's inputs, and leaky variants that score
higher than ours on data whose labels carry no signal (so any skill is leakage)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from imblearn.over_sampling import SMOTE
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

import db
from core.data.labels import CLASS_INDEX
from core.learning import executors
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.learning.features import embed_cropset
from core.learning.folds import make_folds
from core.learning.heads import LinearHead
from core.learning.models import build_model
from core.learning.training import seed_everything
from core.statistics import metrics
from tests.core.cropsets import database_with_cases, synthetic_crops

torch.set_num_threads(1)


def independent_embeddings(crops, cfg):
    """Embeddings recomputed from scratch (no cache) for the same config and seed."""
    seed_everything(cfg.seed)
    model, _ = build_model(cfg)
    emb, cached = embed_cropset(crops, model, cfg, cache_dir=False)
    assert not cached
    return emb


@pytest.mark.parametrize("head_solver", ["pca-newton", "newton-cg"])
def test_smote_sees_only_the_training_fold_and_synthetic_samples_are_never_evaluated(
    tmp_path, monkeypatch, head_solver
):
    crops = synthetic_crops((10, 6, 5), images_per_case=2, size=32)
    cfg = RunConfig(
        weights="none", n_folds=3, crop_size=32, balance="smote", head_solver=head_solver
    )
    conn = database_with_cases(tmp_path / "t.db", crops)

    smote_calls, predict_calls, pca_calls = [], [], []
    real_fit_resample, real_predict = SMOTE.fit_resample, LogisticRegression.predict_proba
    real_pca = PCA.fit_transform

    def spy_pca(self, x, y=None):
        out = real_pca(self, x)
        pca_calls.append((self, np.array(x)))
        return out

    def spy_fit_resample(self, x, y):
        out = real_fit_resample(self, x, y)
        smote_calls.append((np.array(x), np.array(y), np.array(out[0])))
        return out

    def spy_predict(self, x):
        predict_calls.append(np.array(x))
        return real_predict(self, x)

    monkeypatch.setattr(SMOTE, "fit_resample", spy_fit_resample)
    monkeypatch.setattr(LogisticRegression, "predict_proba", spy_predict)
    monkeypatch.setattr(PCA, "fit_transform", spy_pca)
    # one fold after the other, so the spies' calls come in fold order
    monkeypatch.setattr(executors, "MAX_HEAD_THREADS", 1)
    run_cv(crops, cfg, conn=conn, runs_dir=tmp_path / "runs", cache_dir=tmp_path / "cache")

    emb = independent_embeddings(crops, cfg)
    folds = make_folds(crops.case_ids, crops.labels, n_splits=3, seed=0)
    assert len(smote_calls) == 3 + 1  # one per fold, one for the final model on all data
    assert len(predict_calls) == 3
    for fold in range(3):
        test = folds == fold
        scaler = StandardScaler().fit(emb[~test])
        project = lambda x: x  # noqa: E731
        if head_solver == "pca-newton":
            # The PCA is fitted on exactly the training fold's images, standardised on them.
            pca, x_pca = pca_calls[fold]
            np.testing.assert_allclose(x_pca, scaler.transform(emb[~test]), rtol=1e-4, atol=1e-4)
            project = pca.transform
        x_seen, y_seen, x_out = smote_calls[fold]
        # SMOTE received exactly the training fold's images, in order, standardised on them.
        train_rows = project(scaler.transform(emb[~test]))
        np.testing.assert_allclose(x_seen, train_rows, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(y_seen, crops.labels[~test])
        # Canary: no test-fold image is among SMOTE's inputs.
        test_rows = project(scaler.transform(emb[test]))
        distance = np.linalg.norm(test_rows[:, None, :] - x_seen[None, :, :], axis=2)
        assert distance.min() > 1e-2
        # Evaluation sees exactly the test fold's real images, never a synthetic sample.
        evaluated = predict_calls[fold]
        np.testing.assert_allclose(evaluated, test_rows, rtol=1e-4, atol=1e-4)
        synthetic = x_out[len(x_seen) :]
        assert len(synthetic) > 0
        gap = np.linalg.norm(evaluated[:, None, :] - synthetic[None, :, :], axis=2)
        assert gap.min() > 1e-6


def case_level_auc(conn, run_id):
    oof = db.predictions_frame(conn, run_id)
    y = oof["label"].map(CLASS_INDEX).to_numpy()
    return metrics.roc_auc_ovr(y, oof[["p_SCC", "p_AC", "p_ASC"]].to_numpy(), average="macro")


def slice_level_split_auc(crops, emb, cfg):
    """LEAKY on purpose: folds over images, so a patient's near-duplicate slices straddle them."""
    y = crops.labels
    proba = np.zeros((len(y), 3))
    for train, test in StratifiedKFold(cfg.n_folds, shuffle=True, random_state=0).split(emb, y):
        proba[test] = LinearHead(cfg, seed=0).fit(emb[train], y[train]).predict_proba(emb[test])
    return metrics.roc_auc_ovr(y, proba, average="macro")


def smote_before_split_auc(emb, y, cfg):
    """LEAKY on purpose: SMOTE on all data, then split; synthetic ASC are blends of test cases."""
    x_all, y_all = SMOTE(random_state=0).fit_resample(emb, y)
    head_cfg = cfg.replace(balance="none")
    proba = np.zeros((len(y_all), 3))
    splitter = StratifiedKFold(cfg.n_folds, shuffle=True, random_state=0)
    for train, test in splitter.split(x_all, y_all):
        head = LinearHead(head_cfg, seed=0).fit(x_all[train], y_all[train])
        proba[test] = head.predict_proba(x_all[test])
    return metrics.roc_auc_ovr(y_all, proba, average="macro")


@pytest.mark.parametrize(
    ("images_per_case", "leaky"),
    [(3, "slice_level_split"), (1, "smote_before_split")],
    ids=["slice-level-split-on-duplicated-slices", "smote-before-split"],
)
def test_a_leaky_variant_scores_higher_than_ours_on_labels_without_signal(
    tmp_path, images_per_case, leaky
):
    crops = synthetic_crops((20, 10, 8), images_per_case=images_per_case, size=32, signal=0.0)
    cfg = RunConfig(weights="none", n_folds=4, crop_size=32, balance="smote")
    conn = database_with_cases(tmp_path / "t.db", crops)
    run_id = run_cv(
        crops,
        cfg,
        conn=conn,
        runs_dir=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
        final_model=False,
    )
    emb = independent_embeddings(crops, cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = case_level_auc(conn, run_id)
        if leaky == "slice_level_split":
            theirs = slice_level_split_auc(crops, emb, cfg)
        else:
            theirs = smote_before_split_auc(emb, crops.labels, cfg)
    assert ours < 0.75  # no signal: honest CV stays near chance
    assert theirs > ours + 0.2
