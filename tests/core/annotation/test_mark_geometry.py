"""A mark's shape is checked before anything is stored, and turned into the pixels it holds."""

from __future__ import annotations

import time

import numpy as np
import pytest

from core.data.mark_geometry import (
    MAX_POLYGON_POINTS,
    Mark,
    MarkError,
    check_mark,
    crop_box,
    first_crossing,
    mark_mask,
    mask_mark,
)


def box(x0, y0, x1, y1):
    return {"kind": "box", "points": [[x0, y0], [x1, y1]]}


def test_box_holds_columns_x0_to_x1_minus_1_and_rows_y0_to_y1_minus_1():
    mark = check_mark(box(40, 12, 10, 30), rows=64, cols=64)  # corners in either order
    assert mark.points == ((10.0, 12.0), (40.0, 30.0))
    expected = np.zeros((64, 64), bool)
    expected[12:30, 10:40] = True
    assert np.array_equal(mark_mask(mark, 64, 64), expected)


def test_polygon_holds_the_pixels_whose_centres_are_inside():
    # A right triangle with legs on the image axes: a pixel centre (c+.5, r+.5) is inside
    # exactly when (c+.5) + (r+.5) < 20, counted by hand below.
    mark = check_mark({"kind": "polygon", "points": [[0, 0], [20, 0], [0, 20]]}, rows=32, cols=32)
    r, c = np.mgrid[0:32, 0:32]
    assert np.array_equal(mark_mask(mark, 32, 32), (c + 0.5) + (r + 0.5) < 20)
    square = check_mark({"kind": "polygon", "points": [[3, 4], [9, 4], [9, 11], [3, 11]]},
                        rows=32, cols=32)  # fmt: skip
    assert np.array_equal(mark_mask(square, 32, 32), mark_mask(check_mark(box(3, 4, 9, 11),
                          rows=32, cols=32), 32, 32))  # fmt: skip


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"kind": "circle", "points": [[1, 1], [2, 2]]}, r"kind 'circle' is not one of box"),
        (box(0, 0, 70, 10), r"point 2 \(70, 10\) lies outside the 64x64 image"),
        (box(5, 5, 5.5, 20), r"less than a pixel"),
        ({"kind": "box", "points": [[1, "x"], [3, 3]]}, r"point 1: 'x' is not a number"),
        ({"kind": "box", "points": [[1, float("nan")], [3, 3]]}, r"nan is not a finite number"),
        ({"kind": "polygon", "points": [[1, 1], [5, 5]]}, r"at least 3 points, got 2"),
        ({"kind": "polygon", "points": [[1, 1], [5, 5], [9, 9]]}, r"encloses no area"),
        (
            {"kind": "polygon", "points": [[10, 10], [30, 30], [30, 10], [10, 30]]},
            r"crosses itself \(edge 1 crosses edge 3\)",
        ),
        ({"kind": "polygon", "points": "10,10"}, r"points must be a list"),
    ],
)
def test_a_bad_mark_is_one_clear_line(raw, message):
    with pytest.raises(MarkError, match=message) as info:
        check_mark(raw, rows=64, cols=64, where="mark 1 (slice 2)")
    assert str(info.value).startswith("mark 1 (slice 2): ")
    assert "\n" not in str(info.value)


def test_a_polygon_of_100000_points_is_refused_at_once():
    angles = np.linspace(0, 2 * np.pi, 100_000, endpoint=False)
    points = np.c_[32 + 20 * np.cos(angles), 32 + 20 * np.sin(angles)].tolist()
    start = time.perf_counter()
    with pytest.raises(MarkError, match=rf"100,000 points; a polygon may have at most "
                       rf"{MAX_POLYGON_POINTS:,}"):  # fmt: skip
        check_mark({"kind": "polygon", "points": points}, rows=64, cols=64)
    assert time.perf_counter() - start < 5  # refused before any geometry is computed


def test_a_smooth_outline_at_the_point_limit_is_accepted():
    angles = np.linspace(0, 2 * np.pi, MAX_POLYGON_POINTS, endpoint=False)
    points = np.c_[32 + 20 * np.cos(angles), 32 + 20 * np.sin(angles)]
    assert first_crossing(points) is None
    mark = check_mark({"kind": "polygon", "points": points.tolist()}, rows=64, cols=64)
    area = mark_mask(mark, 64, 64).sum()
    assert abs(area - np.pi * 20**2) < 2 * np.pi * 20  # within a pixel ring of the true disc


def test_touching_non_adjacent_edges_count_as_crossing():
    # A "figure 8" whose two loops meet at one vertex touching another edge.
    points = np.asarray([[0, 0], [10, 0], [5, 5], [10, 10], [0, 10], [5, 5.0]])
    assert first_crossing(points) is not None


def test_a_mask_round_trips_as_a_mask_mark_and_a_full_rectangle_becomes_a_box():
    mask = np.zeros((40, 50), bool)
    mask[5:9, 7:20] = True
    mask[9:15, 7:10] = True  # an L shape
    mark = mask_mark(mask)
    assert mark.kind == "mask"
    assert np.array_equal(mark_mask(mark, 40, 50), mask)
    again = check_mark(mark.to_json(), rows=40, cols=50)
    assert np.array_equal(mark_mask(again, 40, 50), mask)
    rect = np.zeros((40, 50), bool)
    rect[3:8, 4:9] = True
    assert mask_mark(rect) == Mark("box", ((4.0, 3.0), (9.0, 8.0)))


def test_crop_box_is_the_bounding_box_of_every_marked_pixel():
    marks = [
        check_mark(box(10, 10, 20, 15), rows=64, cols=64),
        check_mark({"kind": "polygon", "points": [[30, 30], [40, 30], [35, 40]]}, rows=64, cols=64),
    ]
    union = mark_mask(marks[0], 64, 64) | mark_mask(marks[1], 64, 64)
    ys, xs = np.nonzero(union)
    assert crop_box(marks, 64, 64) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
