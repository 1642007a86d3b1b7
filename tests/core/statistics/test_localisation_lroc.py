"""LROC against counts done by hand on a small study."""

from __future__ import annotations

import numpy as np
import pytest

from core.statistics import localisation

# 4 non-diseased cases and 4 diseased ones; the second diseased case's mark missed its lesion.
NONDISEASED = [0.2, 0.5, 0.5, 0.9]
DISEASED = [0.6, 0.8, 0.95, 0.5]
CORRECT = [True, False, True, True]


def test_lroc_operating_points_by_hand():
    curve = localisation.lroc_curve(NONDISEASED, DISEASED, CORRECT)
    # thresholds, high to low, over every non-diseased rating and every correctly localised one:
    # 0.95: FPF 0/4, PCL 1/4 | 0.9: 1/4, 1/4 | 0.6: 1/4, 2/4 | 0.5: 3/4, 3/4 | 0.2: 4/4, 3/4
    # (the missed case, rated 0.8, never counts)
    np.testing.assert_allclose(curve.fpf, [0, 0, 0.25, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(curve.pcl, [0, 0.25, 0.25, 0.5, 0.75, 0.75])


def test_lroc_area_by_hand_equals_the_pair_count():
    # trapezoids: 0.25*(0.25+0.25)/2 + 0.5*(0.5+0.75)/2 + 0.25*(0.75+0.75)/2 = 0.0625+0.3125+0.1875
    area = localisation.lroc_curve(NONDISEASED, DISEASED, CORRECT).area
    assert area == pytest.approx(0.5625)
    # pairs (non-diseased, correctly localised diseased) with the diseased higher, ties half:
    # 0.6 beats 0.2, 0.5, 0.5 -> 3; 0.95 beats all 4 -> 4; 0.5 beats 0.2, ties 0.5 twice -> 2
    assert area == pytest.approx((3 + 4 + 2) / 16)
    assert localisation.alroc_pairs(NONDISEASED, DISEASED, CORRECT).mean() == pytest.approx(area)


def test_nothing_localised_gives_zero_area():
    assert localisation.lroc_curve([0.1, 0.2], [0.9, 0.8], [False, False]).area == 0.0


def test_lroc_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="3 diseased ratings but 2 localisations"):
        localisation.lroc_curve([0.1], [0.2, 0.3, 0.4], [True, False])
    with pytest.raises(ValueError, match="non-diseased and diseased"):
        localisation.lroc_curve([], [0.2], [True])


def test_afroc_and_froc_points_by_hand():
    # two non-diseased cases (FP ratings 0.4 and none) and two diseased with one lesion each
    fp = np.array([0.4, -np.inf])
    ll = np.array([[0.7], [-np.inf]])
    fpf, wllf = localisation.afroc_points(fp, ll, np.ones((2, 1)))
    np.testing.assert_allclose(fpf, [0, 0, 0.5, 1])
    np.testing.assert_allclose(wllf, [0, 0.5, 0.5, 1])
    nl = np.array([[0.4], [-np.inf], [0.3], [-np.inf]])
    nlf, llf = localisation.froc_points(nl, ll, lesions=2)
    np.testing.assert_allclose(nlf, [0, 0, 0.25, 0.5])
    np.testing.assert_allclose(llf, [0, 0.5, 0.5, 0.5])
