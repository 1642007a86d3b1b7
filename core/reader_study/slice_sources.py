"""Where the slices a reader sees come from, without decoding them: the slices the model used, or
the whole series they belong to (a study's ``slices`` option).

A :class:`SliceSource` names one slice by an opaque key (a digest of its file, frame and
modification time), so the reading desk can keep each slice compressed once per server process
and decode a file only when it has not seen it. Paths stay on the server: only the key, the ROI
and the pixels ever reach a browser.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import db
from core.reader_study.viewing import _image_path, _read_slice, image_roi


@dataclass(frozen=True)
class SliceSource:
    """One slice of a case: ``key`` (opaque), ``roi`` (the model's box, or None)."""

    key: str
    roi: tuple[int, int, int, int] | None
    path: str
    frame: int
    mtime: float

    def decoded(self):
        """The decoded slice (:class:`core.data.dicom_io.DicomImage`), cached per file version."""
        return _read_slice(self.path, self.frame, self.mtime)

    def pixels(self) -> np.ndarray:
        return np.asarray(self.decoded().array, dtype=np.float32)


def _source(path: Path, frame: int, roi) -> SliceSource:
    path = path.resolve()
    mtime = path.stat().st_mtime
    key = hashlib.blake2b(f"{path}\0{frame}\0{mtime!r}".encode(), digest_size=12).hexdigest()
    return SliceSource(key, roi, str(path), int(frame), mtime)


def slice_sources(conn, case_id: str, *, series: bool = False) -> list[SliceSource] | str:
    """The case's slices in order, or a generic reason when there are none (a path could carry
    a label, so it is never named).

    With ``series``, every file of the series the case's first image belongs to (same folder,
    same SeriesInstanceUID), ordered by InstanceNumber; the model's slices keep their ROIs. A
    case whose images are frames of one multi-frame file shows those frames only.
    """
    images = db.images_frame(conn, case_id)
    if images.empty:
        return "No image is recorded for this case."
    rows = [row for _, row in images.sort_values(["image_id"]).iterrows()]
    try:
        model = [(_image_path(conn, r), _frame(r), image_roi(r)) for r in rows]
        if not series or any(frame for _, frame, _ in model):
            return [_source(path, frame, roi) for path, frame, roi in model]
        rois = {str(path.resolve()): roi for path, _, roi in model}
        first = model[0][0]
        members = _series_members(str(first.parent), first.parent.stat().st_mtime, str(first))
        return [_source(Path(p), 0, rois.get(str(Path(p).resolve()))) for p in members]
    except OSError as exc:
        return f"The image for this case could not be read ({type(exc).__name__})."


def _frame(row) -> int:
    frame = row.get("frame", 0)
    return int(frame) if frame == frame and frame is not None else 0


@functools.lru_cache(maxsize=256)
def _series_members(folder: str, folder_mtime: float, first: str) -> tuple[str, ...]:
    """The files of ``first``'s series in ``folder``, by InstanceNumber (headers only)."""
    import pydicom

    def header(path):
        return pydicom.dcmread(path, stop_before_pixels=True, force=True)

    uid = getattr(header(first), "SeriesInstanceUID", None)
    if uid is None:
        return (first,)
    found = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        try:
            ds = header(path)
        except Exception:  # noqa: BLE001 - not a DICOM file: not part of the series
            continue
        if getattr(ds, "SeriesInstanceUID", None) == uid:
            found.append((int(getattr(ds, "InstanceNumber", 0) or 0), str(path)))
    return tuple(p for _, p in sorted(found)) or (first,)
