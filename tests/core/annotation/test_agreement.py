"""IoU and Dice between annotators, checked against numpy by hand, with patient-bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.annotation.agreement import bootstrap_mean_ci, case_agreement, dice, iou, summarise


def square(r0, c0, side, shape=(12, 12)):
    mask = np.zeros(shape, bool)
    mask[r0 : r0 + side, c0 : c0 + side] = True
    return mask


def test_iou_and_dice_of_hand_made_masks():
    a, b = square(0, 0, 4), square(2, 2, 4)  # 16 px each, 2x2 = 4 px overlap
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    assert (inter, union) == (4, 28)
    assert iou(a, b) == pytest.approx(inter / union)
    assert dice(a, b) == pytest.approx(2 * inter / (a.sum() + b.sum()))
    assert iou(a, a) == dice(a, a) == 1.0
    assert iou(a, square(8, 8, 4)) == dice(a, square(8, 8, 4)) == 0.0
    assert np.isnan(iou(np.zeros((3, 3)), np.zeros((3, 3))))


def test_a_slice_only_one_annotator_marked_counts_against_them():
    first = {"s1": square(0, 0, 4), "s2": square(0, 0, 2)}
    second = {"s1": square(0, 0, 4)}
    got_iou, got_dice = case_agreement(first, second)
    a = np.concatenate([square(0, 0, 4).ravel(), square(0, 0, 2).ravel()])
    b = np.concatenate([square(0, 0, 4).ravel(), np.zeros(144, bool)])
    assert got_iou == pytest.approx(np.count_nonzero(a & b) / np.count_nonzero(a | b))
    assert got_dice == pytest.approx(2 * np.count_nonzero(a & b) / (a.sum() + b.sum()))


def test_the_ci_resamples_patients_with_replacement():
    values = np.array([0.9, 0.8, 0.3, 0.95, 0.7, 0.6, 0.85])
    lo, hi = bootstrap_mean_ci(values, n_boot=500, seed=4)
    rng = np.random.default_rng(4)  # the same draws, by an independent loop
    means = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(500)]
    assert (lo, hi) == pytest.approx((np.quantile(means, 0.025), np.quantile(means, 0.975)))
    assert lo < values.mean() < hi


def test_summary_pairs_iou_and_dice_per_patient():
    per_case = pd.DataFrame({"iou": [1.0, 0.5, 0.2, np.nan], "dice": [1.0, 2 / 3, 1 / 3, np.nan]})
    got = summarise(per_case, n_boot=300, seed=1)
    assert got.n_cases == 3  # a case nobody overlapped on (both empty) is left out
    assert got.iou == pytest.approx(np.mean([1.0, 0.5, 0.2]))
    assert got.iou_ci[0] <= got.iou <= got.iou_ci[1]
    assert got.dice_ci[0] <= got.dice <= got.dice_ci[1]
    same = summarise(pd.DataFrame({"iou": [0.5] * 5, "dice": [0.5] * 5}), n_boot=200)
    assert same.iou_ci == pytest.approx((0.5, 0.5))
