"""What a reader is shown of one case: the slice and its window, the ROI, the lesion crop, and in
the AI-aided arm the model's probabilities and Grad-CAM.

Nothing here returns a file name, a case id or the truth: an unreadable image is reported with
a generic message, because a path could carry a label.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import db
from core.data.labels import CLASSES

_LOG = logging.getLogger(__name__)
DEFAULT_CROP_SIZE = 100  # ingestion's default, for a database that recorded none
ROI_RGB = (0, 229, 255)  # one ROI colour everywhere (cyan: unlike any grey, and not a heat map red)
ROI_COLOUR = "#{:02x}{:02x}{:02x}".format(*ROI_RGB)


@dataclass(frozen=True)
class WindowControls:
    """Bounds and start values of the level and window sliders for one slice."""

    level_min: float
    level_max: float
    level: float
    width_min: float
    width_max: float
    width: float


def crop_roi(image: np.ndarray, roi, *, size: int = 100, margin: float = 0.1) -> np.ndarray:
    """The model's crop of the ROI, by ingestion's own pipeline.

    Parameters
    ----------
    image : ndarray, shape (h, w)
        The slice after modality rescale.
    roi : tuple of int
        ``x0, y0, x1, y1`` in image pixels.
    size : int
        Side of the square crop.
    margin : float
        Fraction the squared box is grown by on each side.

    Returns
    -------
    ndarray, shape (size, size)
        The slice scaled to [0, 1] by its 1st-99th percentiles, cut and resized
        (:func:`core.data.transforms.lesion_crop`).
    """
    from core.data.transforms import lesion_crop

    return lesion_crop(crop_size=size, margin=margin)(image, roi)


def image_roi(image_row: pd.Series) -> tuple[int, int, int, int] | None:
    """The ROI ``x0, y0, x1, y1`` of an image row of :func:`db.images_frame`, or None."""
    keys = ("roi_x0", "roi_y0", "roi_x1", "roi_y1")
    if all(k in image_row.index for k in keys):
        values = [image_row[k] for k in keys]
        if all(v == v and v is not None for v in values):
            return tuple(int(v) for v in values)
    if "roi" in image_row.index and isinstance(image_row["roi"], str) and image_row["roi"]:
        parts = image_row["roi"].replace(";", ",").split(",")
        if len(parts) == 4:
            return tuple(int(float(p)) for p in parts)
    return None


def cached_crop(image_row: pd.Series) -> np.ndarray | None:
    """The model's own crop from the ingestion's crop cache, when recorded and readable."""
    cache, index = image_row.get("crop_cache"), image_row.get("crop_index")
    if not isinstance(cache, str) or not cache or index is None or index != index:
        return None
    try:
        return _crop_set(cache, Path(cache).stat().st_mtime).crops[int(index)]
    except (OSError, ValueError, KeyError, IndexError):
        return None


@functools.lru_cache(maxsize=4)
def _crop_set(path: str, mtime: float):
    """A crop cache loaded once per file version (many readers read from the same one)."""
    from core.data.dataset import CropSet

    return CropSet.load(path)


@functools.lru_cache(maxsize=64)
def _read_slice(path: str, frame: int, mtime: float):
    """A decoded slice, kept while the file is unchanged: window/level changes rerun the page."""
    from core.data import dicom_io  # here: pydicom is only needed when images are shown

    return dicom_io.read_pixels(path, frame=frame)


def case_image(conn, case_id: str) -> dict:
    """Every slice of the case that the model used, in order, with their ROIs, the file's window
    and the lesion crop, as ReaderCase fields.

    Parameters
    ----------
    conn : sqlite_utils.Database
        An open connection.
    case_id : str
        The case (never shown to the reader).

    Returns
    -------
    dict
        ``slices, rois`` (one per image of the case, ordered by image id), ``image, roi`` (the
        first slice), ``window_center, window_width`` and ``crop``; or only ``image_problem``
        when no image is recorded or one cannot be read.
    """
    images = db.images_frame(conn, case_id)
    if images.empty:
        return {"image_problem": "No image is recorded for this case."}
    rows = [row for _, row in images.sort_values(["image_id"]).iterrows()]
    from core.data.dicom_io import DicomReadError

    try:
        decoded = [_decode(conn, row) for row in rows]
    except (DicomReadError, OSError) as exc:
        # the message would name the file, which could carry a label: keep it generic for readers
        return {
            "image_problem": f"The image for this case could not be read ({type(exc).__name__})."
        }
    slices = tuple(np.asarray(d.array, dtype=np.float32) for d in decoded)
    rois = tuple(image_roi(row) for row in rows)
    first = next((i for i, roi in enumerate(rois) if roi is not None), 0)
    crop = cached_crop(rows[first])
    if crop is None and rois[first] is not None:  # no crop cache: cut it the way ingestion did
        size = (db.latest_ingestion(conn) or {}).get("crop_size") or DEFAULT_CROP_SIZE
        crop = crop_roi(slices[first], rois[first], size=int(size))
    return {
        "slices": slices,
        "rois": rois,
        "image": slices[0],
        "roi": rois[0],
        "window_center": _float_or_none(decoded[0].window_center),
        "window_width": _float_or_none(decoded[0].window_width),
        "crop": crop,
    }


def case_crop(conn, case_id: str) -> np.ndarray | None:
    """The lesion crop a reader is shown for a case (the crop cache, else cut from its slice)."""
    images = db.images_frame(conn, case_id)
    rows = [row for _, row in images.sort_values(["image_id"]).iterrows()]
    row = next((r for r in rows if image_roi(r) is not None), None)
    if row is None:
        return None
    crop = cached_crop(row)
    return crop if crop is not None else case_image(conn, case_id).get("crop")


def _decode(conn, image_row: pd.Series):
    """One image row's pixels, cached while its file is unchanged (reruns and other readers)."""
    path = _image_path(conn, image_row)
    frame = image_row.get("frame", 0)
    frame = int(frame) if frame == frame and frame is not None else 0
    return _read_slice(str(path), frame, path.stat().st_mtime)


def _image_path(conn, image_row: pd.Series) -> Path:
    """The image's file; a relative path is under the latest ingestion's data folder."""
    path_column = "source_path" if "source_path" in image_row.index else "path"
    path = Path(str(image_row[path_column]))
    if not path.is_absolute():
        ingestion = db.latest_ingestion(conn) or {}
        path = Path(str(ingestion.get("data_dir") or ".")) / path
    return path


def _float_or_none(value) -> float | None:
    try:
        return float(value[0] if isinstance(value, (list, tuple)) else value)
    except (TypeError, ValueError, IndexError):
        return None


def model_view(conn, run_id: str, case_id: str, crop, with_gradcam: bool) -> dict:
    """The model's out-of-fold probabilities for the case and, if possible, its Grad-CAM.

    The overlay comes from a worker process (:mod:`core.reader_study.heatmaps`), so torch is never
    loaded by the caller.

    Returns
    -------
    dict
        ReaderCase fields: ``model_probabilities`` and ``gradcam``, or ``gradcam_problem``
        saying why there is no overlay.
    """
    from core.reader_study import heatmaps

    probs = db.case_probabilities(conn, run_id, case_id)  # no truth in it
    if probs is None:
        return {"gradcam_problem": "The model has no prediction for this case."}
    out: dict = {"model_probabilities": probs}
    if with_gradcam and crop is not None:
        top = int(np.argmax([probs[name] for name in CLASSES]))
        try:
            out["gradcam"] = heatmaps.gradcam_overlay(run_id, crop, top, case_id)
        except Exception as exc:  # noqa: BLE001 - the worker failed or timed out: optional context
            # the reason may name a path on the server: log it there, tell the reader only that
            _LOG.warning("Grad-CAM for run %s failed: %s", run_id, exc)
            out["gradcam_problem"] = "Grad-CAM is not available for this model run."
    return out


def window_defaults(
    image: np.ndarray | None, center: float | None, width: float | None
) -> tuple[float, float]:
    """The file's window ``(center, width)``, or the 1st-99th percentile span when it has none."""
    if center is not None and width is not None and width >= 1:
        return float(center), float(width)
    if image is None:
        return 0.0, 1.0
    lo, hi = np.percentile(image, [1, 99])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def window_controls(image: np.ndarray, center: float | None, width: float | None) -> WindowControls:
    """Slider bounds for a slice: level over its grey range, window from 1 to twice its span,
    starting at :func:`window_defaults` clipped into those bounds."""
    center0, width0 = window_defaults(image, center, width)
    lo, hi = float(image.min()), float(image.max())
    span = max(hi - lo, 1.0)
    return WindowControls(
        level_min=lo,
        level_max=max(hi, lo + 1.0),
        level=float(np.clip(center0, lo, hi)),
        width_min=1.0,
        width_max=2 * span,
        width=float(np.clip(width0, 1.0, 2 * span)),
    )


def render_slice(image: np.ndarray, center: float, width: float, roi=None) -> np.ndarray:
    """The slice windowed to 8-bit grey, as RGB, with the ROI outlined in ``ROI_COLOUR``."""
    from core.data.dicom_io import apply_window

    grey = apply_window(image, center, max(float(width), 1.0))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if roi is not None:
        h, w = grey.shape
        x0, y0, x1, y1 = (int(v) for v in roi)
        x0, x1 = np.clip([x0, x1 - 1], 0, w - 1)
        y0, y1 = np.clip([y0, y1 - 1], 0, h - 1)
        colour = np.array(ROI_RGB, dtype=np.uint8)
        rgb[y0, x0 : x1 + 1] = colour
        rgb[y1, x0 : x1 + 1] = colour
        rgb[y0 : y1 + 1, x0] = colour
        rgb[y0 : y1 + 1, x1] = colour
    return rgb
