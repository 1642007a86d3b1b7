"""A localisation read's marks, from what the browser sent to what is stored.

The browser sends each mark as ``{"slice": i, "x": .., "y": ..}`` (a click) or ``{"slice": i,
"x0": .., "y0": .., "x1": .., "y1": ..}`` (a drag, corner pixels inclusive), in whole pixels of
the slice's image. :func:`checked_marks` refuses anything else with a message naming the mark and
what is wrong, and adds what scoring and export need later: the slice's image id (when it is one
of the case's images), its SOP Instance UID and its pixel spacing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import db
from core.reader_study.viewing import _image_path


def _whole(value, name: str, where: str, upper: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < upper:
        raise ValueError(f"{where}: {name} {value!r} is not a whole pixel in 0..{upper - 1}")
    return int(value)


def source_image_ids(conn, case_id: str, sources: Sequence) -> list[str | None]:
    """The image id of each slice source that is one of the case's images, else None."""
    images = db.images_frame(conn, case_id)
    known = {}
    for _, row in images.iterrows():
        frame = int(row.get("frame") or 0) if row.get("frame") == row.get("frame") else 0
        known[(str(_image_path(conn, row).resolve()), frame)] = str(row["image_id"])
    return [known.get((str(s.path), int(s.frame))) for s in sources]


def checked_marks(raw_marks, sources: Sequence, image_ids: Sequence) -> list[dict]:
    """The marks as :mod:`db.read_marks` stores them, or ValueError naming the bad mark.

    Parameters
    ----------
    raw_marks : list of dict
        As the browser sent them (see the module docstring); None or [] means no mark.
    sources : sequence of :class:`core.reader_study.slice_sources.SliceSource`
        The slices the reader was shown, in the order the browser numbers them.
    image_ids : sequence
        :func:`source_image_ids` of those slices.
    """
    if raw_marks is None:
        return []
    if not isinstance(raw_marks, list):
        raise ValueError(f"marks must be a list, got {type(raw_marks).__name__}")
    if len(raw_marks) > db.MAX_MARKS:
        raise ValueError(f"a read holds at most {db.MAX_MARKS} marks, got {len(raw_marks)}")
    out = []
    for i, mark in enumerate(raw_marks, start=1):
        where = f"mark {i}"
        if not isinstance(mark, Mapping):
            raise ValueError(f"{where} is not a mark: {str(mark)[:60]!r}")
        index = _whole(mark.get("slice"), "slice", where, len(sources) or 1)
        if not sources:
            raise ValueError(f"{where}: this case has no slice to mark")
        decoded = sources[index].decoded()
        w, h = int(decoded.cols), int(decoded.rows)
        if "x" in mark or "y" in mark:
            x, y = _whole(mark.get("x"), "x", where, w), _whole(mark.get("y"), "y", where, h)
            kind, box = "point", (x, y, x, y)
        else:
            xs = sorted(_whole(mark.get(k), k, where, w) for k in ("x0", "x1"))
            ys = sorted(_whole(mark.get(k), k, where, h) for k in ("y0", "y1"))
            kind, box = "box", (xs[0], ys[0], xs[1], ys[1])
        spacing = decoded.pixel_spacing or (None, None)
        out.append(
            {"slice": index, "image_id": image_ids[index], "kind": kind,
             "sop_instance_uid": decoded.sop_instance_uid or "",
             "x0": box[0], "y0": box[1], "x1": box[2], "y1": box[3],
             "row_spacing_mm": spacing[0], "col_spacing_mm": spacing[1]}
        )  # fmt: skip
    return out
