"""The model as one more localisation reader: its mark is the peak of its Grad-CAM.

For each case of a study and each type, the fold model that never trained on the case explains
its prediction of that type on the case's lesion crop (``core.learning.gradcam``); the hottest
crop pixel is mapped back through the crop window (the lesion box squared and grown by the
ingestion's margin, then resized: :class:`core.data.transforms.CropROI`) to a slice pixel. The
window is larger than the reference box, so a peak in the margin misses; but the model never
sees the slice outside that window, so its localisation is bounded by the crop it was given.

This runs torch, so only from the command line (``cervixscope study model-marks``), never in the
dashboard's server.
"""

from __future__ import annotations

import math

import numpy as np

import db
from core.data.labels import CLASSES

DEFAULT_MARGIN = 0.1  # ingestion's default, for a database that recorded none


def peak_to_slice(heat: np.ndarray, window: tuple[int, int, int, int], shape) -> tuple[int, int]:
    """The slice pixel ``(x, y)`` under the hottest crop pixel of ``heat`` (first on ties).

    ``window`` is the crop's square ``x0, y0, x1, y1`` on the slice (it may extend past the
    image; the result is clamped to the slice of ``shape`` rows x cols).
    """
    rows, cols = heat.shape
    r, c = np.unravel_index(int(np.argmax(heat)), heat.shape)
    x0, y0, x1, y1 = window
    x = math.floor(x0 + (c + 0.5) * (x1 - x0) / cols)
    y = math.floor(y0 + (r + 0.5) * (y1 - y0) / rows)
    return min(max(x, 0), shape[1] - 1), min(max(y, 0), shape[0] - 1)


def _case_marks(conn, run_id: str, case_id: str, size: int, margin: float) -> list[dict]:
    from core.data.transforms import CropROI, lesion_crop
    from core.learning.gradcam import explaining_model, gradcam_map
    from core.reader_study.viewing import _decode, image_roi

    images = db.images_frame(conn, case_id).sort_values("image_id")
    row = next((r for _, r in images.iterrows() if image_roi(r) is not None), None)
    if row is None:
        raise ValueError("no image with a lesion box")
    roi = image_roi(row)
    decoded = _decode(conn, row)
    image = np.asarray(decoded.array, dtype=np.float32)
    crop = lesion_crop(crop_size=size, margin=margin)(image, roi)
    window = CropROI(roi, margin).window()
    model, _ = explaining_model(run_id, case_id)
    spacing = decoded.pixel_spacing or (None, None)
    marks = []
    for index, cls in enumerate(CLASSES):
        x, y = peak_to_slice(gradcam_map(model, crop, index), window, image.shape)
        marks.append({"case_id": case_id, "class": cls, "image_id": str(row["image_id"]),
                      "x": x, "y": y, "row_spacing_mm": spacing[0],
                      "col_spacing_mm": spacing[1]})  # fmt: skip
    return marks


def compute_model_marks(
    study_id: int, *, run_id: str | None = None, db_path=None, progress: bool = True
) -> tuple[int, list[str]]:
    """Mark every case of the study for every type with the run's Grad-CAM peaks and store them.

    Returns the number of marks stored and one line per case that could not be marked (the
    others still are).
    """
    from tqdm import tqdm

    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        run_id = run_id or study["model_run_id"]
        if not run_id:
            raise ValueError(f"study {study_id} has no model run: give --run")
        ingestion = db.latest_ingestion(conn) or {}
        size = int(ingestion.get("crop_size") or 100)
        margin = ingestion.get("margin")
        margin = DEFAULT_MARGIN if margin is None or margin != margin else float(margin)
        marks, problems = [], []
        for case_id in tqdm(study["case_ids"], desc="Grad-CAM peaks", disable=not progress):
            try:
                marks += _case_marks(conn, str(run_id), case_id, size, margin)
            except (ValueError, OSError, FileNotFoundError, KeyError) as exc:
                problems.append(f"case {case_id}: {exc}")
        stored = db.replace_model_marks(conn, study_id, str(run_id), marks)
    return stored, problems
