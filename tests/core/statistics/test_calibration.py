"""Calibration: reliability points, Brier score and ECE against scikit-learn and by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss

from core.statistics.calibration import (
    calibration_scores,
    calibration_summary,
    reliability_table,
)


@pytest.fixture
def predictions():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 300)
    logits = rng.normal(size=(300, 3)) + 1.5 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, p


@pytest.mark.parametrize("n_bins", [5, 10, 17])
def test_reliability_points_equal_sklearns_calibration_curve(predictions, n_bins):
    y, p = predictions
    table = reliability_table(y, p, n_bins=n_bins)
    for c, name in enumerate(["SCC", "AC", "ASC"]):
        observed, predicted = calibration_curve(y == c, p[:, c], n_bins=n_bins)
        rows = table[table["class"] == name]
        np.testing.assert_allclose(rows["observed"], observed, rtol=0, atol=1e-12)
        np.testing.assert_allclose(rows["mean_predicted"], predicted, rtol=0, atol=1e-12)
        assert rows["count"].sum() == len(y)


def test_brier_equals_sklearns_brier_score_loss(predictions):
    y, p = predictions
    brier = calibration_scores(y, p)["brier"]
    expected = [brier_score_loss(y == c, p[:, c]) for c in range(3)]
    np.testing.assert_allclose(brier, expected, rtol=0, atol=1e-12)


def test_ece_by_hand():
    # class 0 scores 0.05, 0.15, 0.95 in bins 0, 1, 9 of ten; truth is 0 only for the last case
    y = np.array([1, 1, 0])
    p = np.array([[0.05, 0.95, 0.0], [0.15, 0.85, 0.0], [0.95, 0.05, 0.0]])
    ece = calibration_scores(y, p)["ece"]
    # class 0: (|0.05-0| + |0.15-0| + |0.95-1|) / 3; class 1: (|0.05-0| + |0.85-1| + |0.95-1|) / 3
    np.testing.assert_allclose(ece, [0.25 / 3, 0.25 / 3, 0.0], atol=1e-12)


def test_a_perfectly_calibrated_model_scores_near_zero_ece_and_a_confident_liar_does_not():
    rng = np.random.default_rng(0)
    p1 = rng.uniform(size=20_000)
    y = (rng.uniform(size=20_000) < p1).astype(int)  # outcome drawn with the stated probability
    honest = np.column_stack([1 - p1, p1, np.zeros_like(p1)])
    liar = np.column_stack([1 - (p1 > 0.5), (p1 > 0.5), np.zeros_like(p1)]).astype(float)
    assert calibration_scores(y, honest)["ece"][1] < 0.02
    assert calibration_scores(y, liar)["ece"][1] > 0.2


def test_summary_cis_cover_the_value_and_resample_patients(predictions):
    y, p = predictions
    table = calibration_summary(y, p, n_boot=300, seed=1)
    assert list(table["scope"].unique()) == ["SCC", "AC", "ASC", "macro"]
    assert ((table["ci_low"] <= table["value"]) & (table["value"] <= table["ci_high"])).all()
    # ten identical slices per patient: a row bootstrap would be ~sqrt(10) too narrow
    rows = np.repeat(np.arange(len(y)), 10)
    per_image = calibration_summary(y[rows], p[rows], groups=rows, n_boot=300, seed=1)
    wide = (table["ci_high"] - table["ci_low"]).to_numpy()
    image_wide = (per_image["ci_high"] - per_image["ci_low"]).to_numpy()
    np.testing.assert_allclose(image_wide, wide, rtol=0.35)


def test_bad_input_is_one_clear_error():
    with pytest.raises(ValueError, match=r"y_score has values outside \[0, 1\]"):
        calibration_scores([0, 1], [[1.2, 0, 0], [0, 1, 0]])
    with pytest.raises(ValueError, match=r"y_score must have shape \(2, n_classes\)"):
        calibration_scores([0, 1], [0.2, 0.8])
