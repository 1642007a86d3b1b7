"""Small image transforms that compose: normalise intensities, crop the lesion box, resize.

Each is a callable on a 2-D float array (one slice). ``lesion_crop(crop_size=, margin=)`` is the
one crop pipeline: ingestion, prediction and the reader's view all make crops through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


class PercentileNormalize:
    """Clip to the ``low``-``high`` percentile range of the slice and scale it to [0, 1].

    Robust to a few very bright pixels (fat, flow artefacts) and independent of the scanner's
    display window. A flat image maps to all zeros.
    """

    def __init__(self, low: float = 1.0, high: float = 99.0) -> None:
        if not 0 <= low < high <= 100:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {low}, {high}")
        self.low, self.high = low, high

    def __call__(self, image: np.ndarray) -> np.ndarray:
        lo, hi = np.percentile(image, [self.low, self.high])
        if hi <= lo:
            return np.zeros_like(image, dtype=np.float32)
        out = (np.asarray(image, dtype=np.float32) - lo) / (hi - lo)
        return np.clip(out, 0.0, 1.0).astype(np.float32)


def box_inside(box: Sequence[float], rows: int, cols: int) -> bool:
    """Whether a box ``x0, y0, x1, y1`` (pixel coordinates, x1/y1 exclusive) lies in the image."""
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= cols and 0 <= y0 < y1 <= rows


class CropROI:
    """Cut the lesion box out of a slice, squared around its centre and grown by ``margin``.

    The box ``(x0, y0, x1, y1)`` uses pixel coordinates with x along columns and x1/y1
    exclusive. Its longer side is kept, the shorter one widened to a square (so resizing does not
    distort the lesion), then each side grows by ``margin`` times the side length (0.1 = 10%
    each side). Parts of the square that fall outside the image are filled with ``fill``.
    """

    def __init__(self, box: Sequence[float], margin: float = 0.1, *, fill: float = 0.0) -> None:
        if len(box) != 4:
            raise ValueError(f"box must be x0, y0, x1, y1, got {box!r}")
        x0, y0, x1, y1 = (float(v) for v in box)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"box {x0:g},{y0:g},{x1:g},{y1:g} is empty: need x1 > x0 and y1 > y0")
        if not 0 <= margin <= 2:
            raise ValueError(f"margin must lie in 0..2 (fraction of the box side), got {margin}")
        self.box, self.margin, self.fill = (x0, y0, x1, y1), margin, fill

    def window(self) -> tuple[int, int, int, int]:
        """The square actually cut, as integer ``x0, y0, x1, y1`` (may extend past the image)."""
        x0, y0, x1, y1 = self.box
        side = max(x1 - x0, y1 - y0) * (1 + 2 * self.margin)
        side = max(int(round(side)), 1)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
        return left, top, left + side, top + side

    def __call__(self, image: np.ndarray) -> np.ndarray:
        rows, cols = image.shape
        left, top, right, bottom = self.window()
        out = np.full((bottom - top, right - left), self.fill, dtype=np.float32)
        sx0, sy0 = max(left, 0), max(top, 0)
        sx1, sy1 = min(right, cols), min(bottom, rows)
        if sx1 > sx0 and sy1 > sy0:
            out[sy0 - top : sy1 - top, sx0 - left : sx1 - left] = image[sy0:sy1, sx0:sx1]
        return out


class Resize:
    """Resize a 2-D array to ``size`` x ``size`` by antialiased bilinear interpolation.

    The same arithmetic as torch's ``F.interpolate(mode="bilinear", align_corners=False,
    antialias=True)`` (a triangle filter widened by the scale factor when shrinking, so large
    lesions do not alias), in float32 NumPy: equal to it within one float32 ulp, without loading
    torch into ingestion or the dashboard.
    """

    def __init__(self, size: int) -> None:
        if int(size) < 8:
            raise ValueError(f"size must be an integer >= 8, got {size!r}")
        self.size = int(size)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        if image.shape == (self.size, self.size):
            return image
        rows = _triangle_weights(image.shape[0], self.size)
        cols = _triangle_weights(image.shape[1], self.size)
        return np.ascontiguousarray(rows @ (image @ cols.T), dtype=np.float32)


def _triangle_weights(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) float32 weights of antialiased bilinear resampling, as torch computes them."""
    f32 = np.float32
    scale = f32(n_in) / f32(n_out)
    support = scale if scale >= 1 else f32(1.0)
    inverse = f32(1.0) / scale if scale >= 1 else f32(1.0)
    weights = np.zeros((n_out, n_in), dtype=np.float32)
    for i in range(n_out):
        center = scale * f32(i + 0.5)
        lo = max(int(center - support + f32(0.5)), 0)
        hi = min(int(center + support + f32(0.5)), n_in)
        taps = np.arange(lo, hi, dtype=np.float32)
        w = np.maximum(f32(1.0) - np.abs((taps - center + f32(0.5)) * inverse), f32(0.0))
        weights[i, lo:hi] = w / w.sum(dtype=np.float32)
    return weights


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        for transform in self.transforms:
            image = transform(image)
        return image


LesionCrop = Callable[[np.ndarray, Sequence[float]], np.ndarray]


def lesion_crop(*, crop_size: int, margin: float) -> LesionCrop:
    """The lesion-crop pipeline: ``crop(slice, box)`` -> (crop_size, crop_size) float32 in [0, 1].

    The slice is scaled to [0, 1] by its own 1st-99th percentiles, the box squared and grown by
    ``margin`` of its side, then resized. Build it once per batch of slices: it holds no state.
    """
    normalize, resize = PercentileNormalize(), Resize(crop_size)

    def crop(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        out = Compose([normalize, CropROI(box, margin), resize])(image)
        return np.asarray(out, dtype=np.float32)

    return crop
