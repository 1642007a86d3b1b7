"""Lesion marks of a case as the annotation page and the case browser handle them: every slice of
the case's series, the marks an author drew on them, checked and stored as one new version.

A mark is stored against its slice's SOP Instance UID and frame, so it stays with the image
whatever folder the files move to, and ingestion finds it again by the UID it reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import db
from core.data.mark_geometry import MAX_MARKS_PER_CASE, Mark, MarkError, check_mark, mark_mask
from core.reader_study.slice_sources import SliceSource, slice_sources

AUTHOR_COLOURS = ("#ffd60a", "#ff5ca8", "#7cff6b", "#ff9f1c", "#b388ff")  # none cyan: the model ROI


@dataclass(frozen=True)
class CaseSlice:
    """One slice of a case's series, named as a mark names it."""

    sop_instance_uid: str
    frame: int
    rows: int
    cols: int
    source: SliceSource


def case_slices(conn, case_id: str) -> list[CaseSlice] | str:
    """Every slice of the case's series in order, or why there is none."""
    sources = slice_sources(conn, case_id, series=True)
    if isinstance(sources, str):
        return sources
    out = []
    for source in sources:
        try:
            image = source.decoded()
        except Exception as exc:  # noqa: BLE001 - any unreadable file: one line, not a traceback
            return f"A slice of this case could not be read ({type(exc).__name__})."
        uid = image.sop_instance_uid or f"{source.path}#{source.frame}"
        out.append(CaseSlice(uid, source.frame, image.rows, image.cols, source))
    return out


def checked_marks(raw_marks, slices: list[CaseSlice]) -> list[dict]:
    """The browser's marks (``slice`` index, ``kind``, ``points``) as rows for ``db.save_marks``;
    :class:`MarkError` naming the first bad mark (then nothing is stored)."""
    if not isinstance(raw_marks, list):
        raise MarkError("marks must be a list")
    if len(raw_marks) > MAX_MARKS_PER_CASE:
        raise MarkError(f"{len(raw_marks)} marks on one case; at most {MAX_MARKS_PER_CASE}")
    rows = []
    for n, raw in enumerate(raw_marks, start=1):
        index = raw.get("slice") if isinstance(raw, dict) else None
        if not isinstance(index, int) or not 0 <= index < len(slices):
            raise MarkError(f"mark {n}: slice {str(index)[:20]} is not a slice of this case")
        where = f"mark {n} (slice {index + 1})"
        piece = slices[index]
        mark = check_mark(raw, rows=piece.rows, cols=piece.cols, where=where)
        rows.append(_row(mark, piece))
    return rows


def _row(mark: Mark, piece: CaseSlice) -> dict:
    return {"sop_instance_uid": piece.sop_instance_uid, "frame": piece.frame,
            "kind": mark.kind, "geometry": mark.to_json()}  # fmt: skip


def save_drawn(conn, case_id: str, author: str, raw_marks, *, annotator_id=None) -> int:
    """Check and store the marks drawn in the browser as the author's next version."""
    slices = case_slices(conn, case_id)
    if isinstance(slices, str):
        raise MarkError(slices)
    rows = checked_marks(raw_marks, slices)
    return db.save_marks(conn, case_id, author, rows, origin="drawn", annotator_id=annotator_id)


def save_imported(conn, case_id: str, author: str, masks: dict, *, origin: str, detail: str,
                  slices: list[CaseSlice]) -> int:  # fmt: skip
    """Store imported masks (``{slice index: bool mask}``) as the author's next version."""
    from core.data.mark_geometry import mask_mark

    rows = [
        _row(mask_mark(mask, where=f"{detail} slice {i + 1}"), slices[i])
        for i, mask in sorted(masks.items())
        if mask.any()
    ]
    if not rows:
        raise MarkError(f"{detail}: the mask is empty on every slice it matched")
    return db.save_marks(conn, case_id, author, rows, origin=origin, origin_detail=detail)


def marks_on_slices(conn, case_id: str, slices) -> dict[str, list[dict]]:
    """``{author: [{"slice", "kind", "points", "bits"?, "version"}]}`` of every author's current
    marks on ``slices`` (:class:`CaseSlice` or ``(sop_instance_uid, frame)`` pairs); a mark of a
    slice not among them is left out."""
    keys = [(s.sop_instance_uid, s.frame) if isinstance(s, CaseSlice) else tuple(s) for s in slices]
    index = {(str(uid), int(frame)): i for i, (uid, frame) in enumerate(keys)}
    out: dict[str, list[dict]] = {}
    frame = db.current_marks_frame(conn, case_id=case_id)
    for row in frame.itertuples(index=False):
        out.setdefault(row.author, [])
        if row.kind is None or (row.sop_instance_uid, int(row.frame)) not in index:
            continue
        slot = index[(row.sop_instance_uid, int(row.frame))]
        out[row.author].append({"slice": slot, **row.geometry, "version": int(row.version)})
    return out


def marked_cases(conn, cohort: str, author: str) -> set[str]:
    """The cases of ``cohort`` whose current version by ``author`` holds at least one mark."""
    frame = db.current_marks_frame(conn, cohort=cohort).dropna(subset=["kind"])
    return set(frame.loc[frame["author"] == author, "case_id"])


def next_position(marked: list[bool], current: int, move: str) -> int:
    """Where a move from ``current`` lands in a worklist: ``next``/``previous`` (clamped), or
    ``next-unmarked`` (the next case after it without marks, round the end; else ``current``)."""
    n = len(marked)
    if move == "previous":
        return max(current - 1, 0)
    if move == "next":
        return min(current + 1, n - 1)
    for step in range(1, n + 1):
        candidate = (current + step) % n
        if not marked[candidate]:
            return candidate
    return current


def author_masks(conn, case_id: str) -> dict[str, dict[tuple[str, int], object]]:
    """Each author's current marks rasterised per slice, for agreement: ``{author: {(uid, frame):
    mask}}``. The canvas spans every author's marks (IoU and Dice do not depend on its size)."""
    frame = db.current_marks_frame(conn, case_id=case_id).dropna(subset=["kind"])
    if frame.empty:
        return {}
    marks = [(r.author, (r.sop_instance_uid, int(r.frame)), Mark.from_json(r.geometry))
             for r in frame.itertuples(index=False)]  # fmt: skip
    cols = int(max(m.bounds()[2] for *_, m in marks)) + 2
    rows = int(max(m.bounds()[3] for *_, m in marks)) + 2
    out: dict = {}
    for author, key, mark in marks:
        slot = out.setdefault(author, {})
        if key not in slot:
            slot[key] = mark_mask(mark, rows, cols)
        else:
            slot[key] = slot[key] | mark_mask(mark, rows, cols)
    return out


def agreement_frame(conn, cohort: str, first: str, second: str):
    """IoU and Dice per case of ``cohort`` that both authors marked: ``case_id, display_id, iou,
    dice``, worst agreement first."""
    import pandas as pd

    from core.annotation.agreement import case_agreement

    cases = db.cases_frame(conn)
    cases = cases.loc[cases["cohort"] == cohort]
    rows = []
    for case_id, display_id in zip(cases["case_id"], cases["display_id"], strict=True):
        masks = author_masks(conn, case_id)
        if first in masks and second in masks:
            iou, dice = case_agreement(masks[first], masks[second])
            rows.append({"case_id": case_id, "display_id": display_id, "iou": iou, "dice": dice})
    frame = pd.DataFrame(rows, columns=["case_id", "display_id", "iou", "dice"])
    return frame.sort_values(["dice", "display_id"]).reset_index(drop=True)


def viewer_mark_groups(conn, case_id: str, *, series: bool = False) -> list[dict]:
    """Every author's current marks on the case's slices (the model's, or the whole series) as
    the viewer draws them: ``[{"author", "colour", "marks"}]``, one colour per author."""
    sources = slice_sources(conn, case_id, series=series)
    if isinstance(sources, str):
        return []
    try:
        keys = [(s.decoded().sop_instance_uid, s.frame) for s in sources]
    except Exception:  # noqa: BLE001 - an unreadable slice: the viewer says so itself
        return []
    by_author = {a: m for a, m in marks_on_slices(conn, case_id, keys).items() if m}
    return [
        {
            "author": name,
            "colour": AUTHOR_COLOURS[i % len(AUTHOR_COLOURS)],
            "marks": by_author[name],
        }
        for i, name in enumerate(sorted(by_author))
    ]
