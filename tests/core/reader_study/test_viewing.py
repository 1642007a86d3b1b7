"""What a reader is shown of a slice: window defaults and slider bounds, the ROI outline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.reader_study.viewing import (
    ROI_COLOUR,
    image_roi,
    render_slice,
    window_controls,
    window_defaults,
)


def test_window_defaults_prefer_the_files_window():
    image = np.arange(100, dtype=float).reshape(10, 10)
    assert window_defaults(image, 40.0, 80.0) == (40.0, 80.0)
    lo, hi = np.percentile(image, [1, 99])  # no usable window in the file: 1st-99th percentile
    for center, width in ((None, None), (40.0, 0.5)):
        assert window_defaults(image, center, width) == pytest.approx(((lo + hi) / 2, hi - lo))
    assert window_defaults(None, None, None) == (0.0, 1.0)


def test_window_controls_clip_the_start_into_the_slider_range():
    image = np.array([[0.0, 100.0]])
    bounds = window_controls(image, 500.0, 1000.0)
    assert (bounds.level_min, bounds.level_max, bounds.level) == (0.0, 100.0, 100.0)
    assert (bounds.width_min, bounds.width_max, bounds.width) == (1.0, 200.0, 200.0)
    flat = window_controls(np.full((2, 2), 7.0), None, None)
    assert (flat.level_min, flat.level_max) == (7.0, 8.0)  # a flat slice still has a range
    assert flat.width_max == 2.0


def test_render_slice_outlines_the_roi_in_the_one_roi_colour():
    image = np.zeros((8, 8))
    rgb = render_slice(image, 0.5, 1.0, roi=(2, 3, 6, 7))
    assert rgb.shape == (8, 8, 3) and rgb.dtype == np.uint8
    assert ROI_COLOUR == "#00e5ff"  # the viewer's canvas outline uses the same string
    yellow = (rgb == [0, 229, 255]).all(axis=2)
    expected = np.zeros((8, 8), dtype=bool)
    expected[3, 2:6] = expected[6, 2:6] = expected[3:7, 2] = expected[3:7, 5] = True
    np.testing.assert_array_equal(yellow, expected)
    assert not (render_slice(image, 0.5, 1.0) == [0, 229, 255]).all(axis=2).any()


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ({"roi_x0": 1.0, "roi_y0": 2.0, "roi_x1": 30.0, "roi_y1": 40.0}, (1, 2, 30, 40)),
        ({"roi_x0": np.nan, "roi_y0": 2, "roi_x1": 3, "roi_y1": 4}, None),
        ({"roi": "1;2;30;40"}, (1, 2, 30, 40)),
        ({"roi": ""}, None),
    ],
    ids=["columns", "missing-column-value", "text", "none"],
)
def test_image_roi(row, expected):
    assert image_roi(pd.Series(row, dtype=object)) == expected
