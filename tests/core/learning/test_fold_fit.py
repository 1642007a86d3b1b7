"""One fold's fit and records, the run's merged timings and its provenance, against hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from core.data.dataset import CropSet
from core.learning.config import RunConfig
from core.learning.cv import merge_timings
from core.learning.fold_fit import FoldFit, fit_head_fold, fold_metrics, fold_records
from core.learning.heads import LinearHead, smote_k_neighbors
from core.learning.provenance import RECORDED_PACKAGES, code_version, package_versions


def _crops() -> CropSet:
    """3 cases: A (SCC, 2 images), B (AC, 1 image), C (ASC, 2 images)."""
    cases = np.array(["A", "A", "B", "C", "C"])
    return CropSet(
        np.zeros((5, 4, 4), np.float32),
        np.array([f"{c}:{i}" for i, c in enumerate(cases)]),
        cases,
        np.array([0, 0, 1, 2, 2]),
    )


def test_fold_records_average_images_into_cases_and_count_cases():
    crops = _crops()
    test = np.array([True, True, False, True, True])
    proba = np.array([[0.6, 0.3, 0.1], [0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.0, 0.5, 0.5]])
    fit = FoldFit(proba, 0.5, ["note"], {"epochs_run": 3})
    records = fold_records(crops, test, fit)
    assert [r["image_id"] for r in records.image_rows] == ["A:0", "A:1", "C:3", "C:4"]
    assert records.image_rows[2] == {"image_id": "C:3", "case_id": "C", "p_SCC": 0.2,
                                     "p_AC": 0.2, "p_ASC": 0.6}  # fmt: skip
    assert [r["case_id"] for r in records.case_rows] == ["A", "C"]
    assert records.case_rows[0]["p_SCC"] == pytest.approx(0.7)
    assert records.case_rows[1]["p_ASC"] == pytest.approx(0.55)
    assert (records.n_train, records.n_test) == (1, 2)
    # both test cases predicted right: accuracy 1; the training extras ride along
    assert records.metrics["accuracy"] == 1.0 and records.metrics["epochs_run"] == 3
    assert np.isnan(records.metrics["auc_AC"])  # no AC case in this test fold


def test_fold_metrics_by_hand():
    y = np.array([0, 1, 2, 0])
    proba = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1]])
    out = fold_metrics(y, proba)
    assert out["accuracy"] == 0.75  # case 1 (AC) is called SCC
    assert out["sensitivity_macro"] == pytest.approx((1 + 0 + 1) / 3)
    # AUC one-vs-rest by counting pairs: positive above negative
    assert out["auc_ASC"] == 1.0
    assert out["auc_AC"] == pytest.approx(2 / 3)  # AC's 0.3 tops 0.2 and 0.1, not 0.4
    assert out["auc_SCC"] == pytest.approx(3 / 4)  # 0.7 > 0.6, 0.1; 0.5 > 0.1 only
    assert out["auc_macro"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_a_head_fold_is_the_linear_head_on_the_training_rows_and_charges_the_embedding():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 6)
    emb = rng.standard_normal((18, 5)) + labels[:, None]
    test = np.arange(18) % 3 == 0
    cfg = RunConfig(balance="none", weights="none")
    fit = fit_head_fold(emb, labels, test, cfg, 2, embed_seconds=9.0)
    head = LinearHead(cfg, seed=2).fit(emb[~test], labels[~test])
    np.testing.assert_allclose(fit.proba, head.predict_proba(emb[test]))
    assert fit.inference_seconds >= 9.0 * 6 / 18  # its 6 of 18 images' share of the embedding


def test_smote_k_shrinks_to_the_smallest_training_class():
    assert smote_k_neighbors(np.array([0, 0, 0, 1, 1, 2, 2, 2]), 5) == 1
    assert smote_k_neighbors(np.array([0, 0, 0, 1, 1, 1]), 2) == 2
    assert smote_k_neighbors(np.array([0, 0, 1]), 5) is None


def test_timings_add_up_over_the_jobs_of_a_run():
    first = merge_timings(None, {"embed": 2.0, "inference_seconds": 3.0, "inference_cases": 3})
    assert first["inference_seconds_per_case"] == 1.0
    second = merge_timings(
        first, {"embed_cached": 0.5, "inference_seconds": 5.0, "inference_cases": 1}
    )
    assert second == {"embed": 2.0, "embed_cached": 0.5, "inference_seconds": 8.0,
                      "inference_cases": 4, "inference_seconds_per_case": 2.0}  # fmt: skip


def test_provenance_names_the_code_and_every_recorded_package():
    assert code_version()
    versions = package_versions()
    assert tuple(versions) == RECORDED_PACKAGES
    assert versions["numpy"] == np.__version__
