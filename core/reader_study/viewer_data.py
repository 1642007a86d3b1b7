"""What the image viewer receives in the browser: pixels, ROIs, window presets, side pictures.

This dict is everything the viewer sends to a reader's browser, so it is built from an explicit
list of fields and nothing else: no case id, image id, file name, patient id or path, no truth,
and model output only when the caller passes an overlay (the AI-aided arm). The blinding tests
walk it as JSON.

Pixels go as raw 16-bit values so the browser windows them itself: a drag on the image changes
window/level without a round trip to the server. A slice of ``h x w`` costs ``2 h w`` bytes
(base64: a third more), e.g. 44 kB for the demo's 128 x 128 slices.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

from core.reader_study.pixel_transport import quantise
from core.reader_study.viewing import ROI_COLOUR, window_defaults


def encode_slice(image: np.ndarray) -> dict:
    """One slice as ``{"w", "h", "offset", "scale", "pixels"}``: value = raw * scale + offset
    (:func:`core.reader_study.pixel_transport.quantise`), the raw values base64 encoded."""
    raw, offset, scale = quantise(image)
    return {
        "w": int(raw.shape[1]),
        "h": int(raw.shape[0]),
        "offset": offset,
        "scale": scale,
        "pixels": base64.b64encode(raw.tobytes()).decode("ascii"),
    }


def decode_slice(encoded: dict) -> np.ndarray:
    """The float image :func:`encode_slice` encoded (tests compare it with the source)."""
    raw = np.frombuffer(base64.b64decode(encoded["pixels"]), dtype="<u2")
    return raw.reshape(encoded["h"], encoded["w"]) * encoded["scale"] + encoded["offset"]


def png_data_url(picture: np.ndarray) -> str:
    """A grey (float in [0, 1] or uint8) or RGB uint8 picture as a ``data:image/png`` URL."""
    from PIL import Image

    array = np.asarray(picture)
    if array.dtype != np.uint8:
        array = (np.clip(array.astype(np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def window_presets(image: np.ndarray, center: float | None, width: float | None) -> list[dict]:
    """Three starting windows: the file's own (or percentile) window, a wide and a narrow one."""
    c0, w0 = window_defaults(image, center, width)
    lo, hi = float(np.min(image)), float(np.max(image))
    return [
        {"key": "7", "name": "default", "center": c0, "width": w0},
        {"key": "8", "name": "wide", "center": (lo + hi) / 2, "width": max(hi - lo, 1.0)},
        {"key": "9", "name": "narrow", "center": c0, "width": max(w0 / 2.5, 1.0)},
    ]


def viewer_payload(
    slices: Sequence[np.ndarray],
    rois: Sequence,
    *,
    window_center: float | None,
    window_width: float | None,
    view_id: str,
    crop: np.ndarray | None = None,
    overlay: np.ndarray | None = None,
    overlay_title: str = "",
) -> dict:
    """The viewer's data for one case.

    Parameters
    ----------
    slices : sequence of ndarray
        Every slice of the case, in order (after modality rescale).
    rois : sequence
        ``x0, y0, x1, y1`` per slice, or None where a slice has none.
    window_center, window_width : float or None
        The file's window (None: percentiles).
    view_id : str
        An opaque id of this display (e.g. arm and worklist position): the browser keeps slice,
        window and zoom while it stays the same. Never a case id.
    crop : ndarray, optional
        The lesion crop shown beside the image.
    overlay : ndarray, optional
        A picture shown beside the crop (the Grad-CAM, AI-aided arm only).
    overlay_title : str
        Its caption.
    """
    if not len(slices):
        raise ValueError("viewer_payload needs at least one slice")
    side = []
    if crop is not None:
        side.append({"title": "Lesion crop", "src": png_data_url(crop)})
    if overlay is not None:
        side.append({"title": overlay_title or "Overlay", "src": png_data_url(overlay)})
    return {
        "view_id": str(view_id),
        "slices": [
            {**encode_slice(image), "roi": None if roi is None else [int(v) for v in roi]}
            for image, roi in zip(slices, rois, strict=True)
        ],
        "presets": window_presets(slices[0], window_center, window_width),
        "roi_colour": ROI_COLOUR,
        "side": side,
    }


def reader_view(case) -> dict | None:
    """The viewer payload of a :class:`core.reader_study.reading.ReaderCase`, or None when it has
    no image. The Grad-CAM goes along only when the case carries one (AI-aided arm)."""
    if not case.slices:
        return None
    return viewer_payload(
        case.slices,
        case.rois,
        window_center=case.window_center,
        window_width=case.window_width,
        view_id=f"{case.arm}:{case.position}",
        crop=case.crop,
        overlay=case.gradcam if case.arm == "aided" else None,
        overlay_title="Grad-CAM, model's top type",
    )
