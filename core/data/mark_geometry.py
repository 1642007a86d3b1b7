"""One lesion mark on one slice, checked, and turned into pixels.

Coordinates are image pixel edges: pixel (row r, column c) covers ``[c, c+1) x [r, r+1)``, so a
box ``x0, y0, x1, y1`` holds columns ``x0..x1-1`` and rows ``y0..y1-1`` (the manifest's
convention). A polygon holds the pixels whose centres lie inside it. A ``mask`` mark keeps the
pixels of an imported segmentation exactly (its bounding box and packed bits).
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass

import numpy as np

KINDS = ("box", "polygon", "mask")
MAX_POLYGON_POINTS = 2000  # a hand-drawn outline has tens; more is a script or a mistake
MAX_MARKS_PER_CASE = 200


class MarkError(ValueError):
    """A mark that cannot be stored; the message names what is wrong."""


@dataclass(frozen=True)
class Mark:
    """A box (two corner points), a polygon (its vertices) or a mask (``bits`` inside ``box``)."""

    kind: str
    points: tuple[tuple[float, float], ...]
    bits: str = ""  # mask only: base64 of np.packbits of the mask inside its box, row by row

    @classmethod
    def from_json(cls, geometry: dict) -> Mark:
        """A stored mark back (stored marks were checked when they were saved)."""
        points = tuple(tuple(float(v) for v in p) for p in geometry["points"])
        return cls(geometry["kind"], points, geometry.get("bits", ""))

    def to_json(self) -> dict:
        out = {"kind": self.kind, "points": [list(p) for p in self.points]}
        if self.kind == "mask":
            out["bits"] = self.bits
        return out

    def bounds(self) -> tuple[float, float, float, float]:
        """``x0, y0, x1, y1`` of the pixels the mark holds (a polygon: its vertices' extent)."""
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        return min(xs), min(ys), max(xs), max(ys)


def _number(value, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MarkError(f"{where}: {str(value)[:40]!r} is not a number") from None
    if not math.isfinite(number):
        raise MarkError(f"{where}: {number} is not a finite number")
    return number


def _points(raw, where: str) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list | tuple):
        raise MarkError(f"{where}: points must be a list of [x, y] pairs")
    if len(raw) > MAX_POLYGON_POINTS:
        raise MarkError(
            f"{where}: {len(raw):,} points; a polygon may have at most {MAX_POLYGON_POINTS:,}"
        )
    out = []
    for i, p in enumerate(raw):
        if not isinstance(p, list | tuple) or len(p) != 2:
            raise MarkError(f"{where}: point {i + 1} is not an [x, y] pair")
        out.append(tuple(_number(v, f"{where}: point {i + 1}") for v in p))
    return tuple(out)


def check_mark(raw, *, rows: int, cols: int, where: str = "mark") -> Mark:
    """A :class:`Mark` from its JSON form, or :class:`MarkError` naming what is wrong.

    Refused: an unknown kind, non-numbers, a point outside the ``cols`` x ``rows`` image, an
    empty box, a polygon with fewer than 3 or more than ``MAX_POLYGON_POINTS`` points, one with no
    area or whose edges cross, and a mask whose bits do not fill its box.
    """
    if not isinstance(raw, dict):
        raise MarkError(f"{where}: expected an object with kind and points")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise MarkError(f"{where}: kind {str(kind)[:20]!r} is not one of {', '.join(KINDS)}")
    points = _points(raw.get("points"), where)
    for i, (x, y) in enumerate(points):
        if not (0 <= x <= cols and 0 <= y <= rows):
            raise MarkError(
                f"{where}: point {i + 1} ({x:g}, {y:g}) lies outside the {cols}x{rows} image"
            )
    if kind == "polygon":
        return Mark(kind, _checked_polygon(points, where))
    if len(points) != 2:
        raise MarkError(f"{where}: a {kind} needs two corner points, got {len(points)}")
    (x0, y0), (x1, y1) = points
    box = ((min(x0, x1), min(y0, y1)), (max(x0, x1), max(y0, y1)))
    if box[1][0] - box[0][0] < 1 or box[1][1] - box[0][1] < 1:
        raise MarkError(f"{where}: the {kind} {x0:g},{y0:g},{x1:g},{y1:g} is less than a pixel")
    if kind == "box":
        return Mark("box", box)
    return _checked_mask(box, raw.get("bits"), where)


def _checked_polygon(points, where: str) -> tuple[tuple[float, float], ...]:
    if len(points) > 1 and points[0] == points[-1]:
        points = points[:-1]  # a closed ring written with its first point repeated
    if len(points) < 3:
        raise MarkError(f"{where}: a polygon needs at least 3 points, got {len(points)}")
    if _collinear(points) or abs(polygon_area(points)) < 0.5 and first_crossing(
        np.asarray(points, dtype=float)) is None:  # fmt: skip
        raise MarkError(f"{where}: the polygon encloses no area (its points lie on a line)")
    crossing = first_crossing(np.asarray(points, dtype=float))
    if crossing is not None:
        i, j = crossing
        raise MarkError(
            f"{where}: the polygon crosses itself (edge {i + 1} crosses edge {j + 1}); "
            "draw its outline without loops"
        )
    return points


def _collinear(points) -> bool:
    p = np.asarray(points, dtype=float) - np.asarray(points[0], dtype=float)
    return bool(np.linalg.matrix_rank(p, tol=1e-9) < 2)


def _checked_mask(box, bits, where: str) -> Mark:
    (x0, y0), (x1, y1) = box
    if not all(float(v).is_integer() for v in (x0, y0, x1, y1)):
        raise MarkError(f"{where}: a mask's box must lie on whole pixels")
    size = int(x1 - x0) * int(y1 - y0)
    try:
        data = base64.b64decode(str(bits or ""), validate=True)
    except ValueError:
        raise MarkError(f"{where}: the mask's bits are not base64") from None
    if len(data) != (size + 7) // 8:
        raise MarkError(f"{where}: the mask's bits hold {len(data) * 8} pixels, its box {size}")
    mark = Mark("mask", box, str(bits))
    if not mark_mask(mark, int(y1), int(x1)).any():
        raise MarkError(f"{where}: the mask is empty")
    return mark


def polygon_area(points) -> float:
    """Signed area by the shoelace formula."""
    p = np.asarray(points, dtype=float)
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def first_crossing(points: np.ndarray) -> tuple[int, int] | None:
    """The first pair of non-adjacent edges of a closed polygon that touch or cross, else None.

    All pairs at once with numpy (orientation signs), so 2,000 points take well under a second.
    """
    a = points
    b = np.roll(points, -1, axis=0)
    n = len(a)

    def orient(p, q, r):
        return np.sign(
            (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1])
            - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
        )

    def on_segment(p, q, r):  # r on segment pq, given the three are collinear
        return (np.minimum(p[..., 0], q[..., 0]) <= r[..., 0]) & (
            r[..., 0] <= np.maximum(p[..., 0], q[..., 0])
        ) & (np.minimum(p[..., 1], q[..., 1]) <= r[..., 1]) & (
            r[..., 1] <= np.maximum(p[..., 1], q[..., 1])
        )

    ai, bi = a[:, None, :], b[:, None, :]
    aj, bj = a[None, :, :], b[None, :, :]
    o1, o2 = orient(ai, bi, aj), orient(ai, bi, bj)
    o3, o4 = orient(aj, bj, ai), orient(aj, bj, bi)
    hit = (o1 * o2 < 0) & (o3 * o4 < 0)
    hit |= (o1 == 0) & on_segment(ai, bi, aj)
    hit |= (o2 == 0) & on_segment(ai, bi, bj)
    hit |= (o3 == 0) & on_segment(aj, bj, ai)
    hit |= (o4 == 0) & on_segment(aj, bj, bi)
    i, j = np.triu_indices(n, k=2)
    keep = ~((i == 0) & (j == n - 1))  # the last edge meets the first at point 0 by design
    i, j = i[keep], j[keep]
    found = np.flatnonzero(hit[i, j])
    return None if not len(found) else (int(i[found[0]]), int(j[found[0]]))


def mark_mask(mark: Mark, rows: int, cols: int) -> np.ndarray:
    """The ``rows`` x ``cols`` boolean mask of the pixels a mark holds."""
    mask = np.zeros((rows, cols), dtype=bool)
    if mark.kind == "box" or mark.kind == "mask":
        (x0, y0), (x1, y1) = mark.points
        c0, r0, c1, r1 = (int(round(v)) for v in (x0, y0, x1, y1))
        if mark.kind == "box":
            mask[r0:r1, c0:c1] = True
            return mask
        size = (r1 - r0) * (c1 - c0)
        bits = np.unpackbits(np.frombuffer(base64.b64decode(mark.bits), np.uint8))[:size]
        mask[r0:r1, c0:c1] = bits.reshape(r1 - r0, c1 - c0).astype(bool)
        return mask
    return _polygon_mask(np.asarray(mark.points, dtype=float), rows, cols)


def _polygon_mask(poly: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Pixels whose centre is inside the polygon (even-odd crossing rule), within its extent."""
    mask = np.zeros((rows, cols), dtype=bool)
    c0 = max(int(math.floor(poly[:, 0].min())), 0)
    c1 = min(int(math.ceil(poly[:, 0].max())), cols)
    r0 = max(int(math.floor(poly[:, 1].min())), 0)
    r1 = min(int(math.ceil(poly[:, 1].max())), rows)
    if c1 <= c0 or r1 <= r0:
        return mask
    ys, xs = np.mgrid[r0:r1, c0:c1]
    px, py = xs.ravel() + 0.5, ys.ravel() + 0.5
    inside = np.zeros(px.shape, dtype=bool)
    x1, y1 = poly[:, 0], poly[:, 1]
    x2, y2 = np.roll(x1, -1), np.roll(y1, -1)
    for ax, ay, bx, by in zip(x1, y1, x2, y2, strict=True):
        if ay == by:
            continue
        straddles = (ay > py) != (by > py)
        cross_x = ax + (py - ay) * (bx - ax) / (by - ay)
        inside ^= straddles & (px < cross_x)
    mask[r0:r1, c0:c1] = inside.reshape(r1 - r0, c1 - c0)
    return mask


def mask_mark(mask: np.ndarray, *, where: str = "mask") -> Mark:
    """The mark of a non-empty boolean mask: a box when it fills its bounding box, else a mask."""
    mask = np.asarray(mask).astype(bool)
    ys, xs = np.nonzero(mask)
    if not len(xs):
        raise MarkError(f"{where}: the mask is empty (no non-zero pixel)")
    r0, r1, c0, c1 = int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1
    inner = mask[r0:r1, c0:c1]
    box = ((float(c0), float(r0)), (float(c1), float(r1)))
    if inner.all():
        return Mark("box", box)
    return Mark("mask", box, base64.b64encode(np.packbits(inner.ravel())).decode())


def crop_box(marks: list[Mark], rows: int, cols: int) -> tuple[float, float, float, float]:
    """The box a lesion crop is cut from: the bounding box of every pixel the marks hold (as a
    mask file's bounding box is), in the manifest's ``x0, y0, x1, y1``."""
    union = np.zeros((rows, cols), dtype=bool)
    for mark in marks:
        union |= mark_mask(mark, rows, cols)
    ys, xs = np.nonzero(union)
    if not len(xs):
        raise MarkError("the marks hold no pixel centre")
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
