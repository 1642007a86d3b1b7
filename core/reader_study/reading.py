"""The reading service: what a reader may see and do. The reading page calls these, and the load
test drives many concurrent readers through exactly the same calls.

Blinding lives here, on the server: a reader addresses cases by their *position* in the reading
order, and nothing returned to a reader carries a ``case_id``, a file name, the truth, another
reader's answer or, outside the AI-aided arm, any model output. Each call opens its own
short-lived connection.

Repeat reads (issue 18): the reading order is the worklist with each of the reader's repeats
slotted in after the position it is due at (:mod:`core.reader_study.reading_order`). A repeat is
served, counted and answered like any case, under its own display ID, and stored apart
(``repeat_reads``); nothing tells the reader it is a repeat. Without repeats a position is the
worklist position.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import db
import db.attempts
import db.repeats
from core.data.labels import CLASSES
from core.reader_study.arms import arm_display_id, check_arm, require_open_arm
from core.reader_study.reading_order import Slot, locate, position_step, repeat_step
from core.reader_study.viewing import case_image, model_view
from db.clock import now_iso
from db.reads import worklist_counts

CONFIDENCE_COLUMNS = tuple(f"c_{name}" for name in CLASSES)


@dataclass(frozen=True)
class ReaderCase:
    """One case as a reader sees it. Deliberately has no ``case_id`` and no truth."""

    arm: str
    position: int
    n_cases: int
    n_read: int
    display_id: str
    image: np.ndarray | None = None  # the first slice, float, after modality rescale
    slices: tuple = ()  # every slice of the case the model used, in order
    rois: tuple = ()  # the ROI of each slice (x0, y0, x1, y1) or None
    window_center: float | None = None
    window_width: float | None = None
    roi: tuple[int, int, int, int] | None = None  # the first slice's x0, y0, x1, y1
    crop: np.ndarray | None = None  # float in [0, 1]
    image_problem: str | None = None  # why no image could be shown, if so
    answer_label: str | None = None  # this reader's current answer, if any
    answer_confidences: dict[str, float] | None = None
    model_probabilities: dict[str, float] | None = None  # aided arm only
    gradcam: np.ndarray | None = None  # aided arm only
    gradcam_problem: str | None = None
    answer_marks: tuple = ()  # localisation studies: this reader's stored marks on the case


def worklist_status(study_id: int, reader_id: int, arm: str, *, db_path=None) -> pd.DataFrame:
    """The reader's own worklist in ``arm``, in reading order (repeats slotted in).

    Returns
    -------
    pandas.DataFrame
        Columns ``position, display_id`` (as this arm shows it), ``read`` (bool); no case ids,
        no labels, and nothing that tells a repeat from a first showing.
    """
    with db.connect(db_path) as conn:
        check_arm(db.get_study(conn, study_id), arm)
        work = db.worklist(conn, study_id, reader_id, arm)
        plan = db.repeats.reader_repeats(conn, study_id, reader_id, arm)
    firsts = pd.DataFrame(
        {
            "after": work["position"].to_numpy(),
            "again": 0,
            "display_id": [
                arm_display_id(study_id, arm, case, shown)
                for case, shown in zip(work["case_id"], work["display_id"], strict=True)
            ],
            "read": work["label_read"].notna().to_numpy(),
        }
    )
    repeats = pd.DataFrame(
        {
            "after": plan["after_position"].to_numpy(),
            "again": 1,  # after the first showing at the same position
            "display_id": plan["display_id"].to_numpy(),
            "read": plan["answered"].astype(bool).to_numpy(),
        }
    )
    frames = [f for f in (firsts, repeats) if len(f)]
    out = pd.concat(frames) if frames else firsts
    out = out.sort_values(["after", "again", "display_id"], kind="stable").reset_index(drop=True)
    out.insert(0, "position", np.arange(1, len(out) + 1))
    return out[["position", "display_id", "read"]].astype({"read": bool})


def first_unread(study_id: int, reader_id: int, arm: str, *, db_path=None) -> int | None:
    """The position of the reader's first unread case in ``arm``, or None when all are read.

    A repeat comes first once it is due (every worklist case up to its due position is read)
    and unanswered, so it follows its first showing by the planned gap.
    """
    with db.connect(db_path) as conn:
        nxt = db.next_unread(conn, study_id, reader_id, arm)
        plan = db.repeats.reader_repeats(conn, study_id, reader_id, arm)
        afters = plan["after_position"].tolist()
        passed = nxt - 1 if nxt is not None else max(afters, default=0)
        due = db.repeats.due_repeats(conn, study_id, reader_id, arm, passed=passed)
    due = due[~due["answered"].astype(bool)]
    if len(due):
        index = plan["display_id"].tolist().index(due["display_id"].iloc[0])
        return repeat_step(index, afters)
    return None if nxt is None else position_step(nxt, afters)


def case_for_reader(
    study_id: int,
    reader_id: int,
    arm: str,
    position: int,
    *,
    db_path=None,
    with_images: bool = True,
    with_gradcam: bool = True,
) -> ReaderCase:
    """The case at ``position`` of this reader's worklist, holding only what the reader may see.

    Parameters
    ----------
    study_id, reader_id : int
        The study and one of its readers.
    arm : str
        One of the study's arms.
    position : int
        1-based position in the reader's reading order of ``arm`` (see :func:`worklist_status`).
    db_path : path, optional
        The database (default: the configured one).
    with_images : bool
        Decode the slice and crop (the load test leaves them out).
    with_gradcam : bool
        In the aided arm, compute the Grad-CAM overlay too.

    Raises
    ------
    ValueError
        If ``arm`` is not in the study or ``position`` not in the worklist.
    """
    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        check_arm(study, arm)
        row = _entry(conn, study_id, reader_id, arm, position)
        case_id = str(row["case_id"])
        fields = _worklist_fields(study_id, arm, int(position), row)
        if with_images:
            fields.update(case_image(conn, case_id))
        if arm == "aided" and study["model_run_id"]:
            run_id = str(study["model_run_id"])
            fields.update(model_view(conn, run_id, case_id, fields.get("crop"), with_gradcam))
    if study.get("localise"):  # each of these would show where the lesion is
        fields.update(roi=None, rois=tuple(None for _ in fields.get("rois", ())), crop=None,
                      gradcam=None)  # fmt: skip
    return ReaderCase(**fields)


def case_sources(
    study_id: int, reader_id: int, arm: str, position: int, *, db_path=None
) -> tuple[ReaderCase, list]:
    """The case at ``position`` without decoded slices, and where its slices come from
    (:class:`core.reader_study.slice_sources.SliceSource`, the model's slices or the whole series
    as the study chose), for the reading desk, which decodes and compresses each slice once.

    Raises
    ------
    ValueError
        As :func:`case_for_reader`.
    """
    from core.reader_study.slice_sources import slice_sources
    from core.reader_study.viewing import case_crop

    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        check_arm(study, arm)
        row = _entry(conn, study_id, reader_id, arm, position)
        case_id = str(row["case_id"])
        fields = _worklist_fields(study_id, arm, int(position), row)
        sources = slice_sources(conn, case_id, series=study.get("slices") == "series")
        if isinstance(sources, str):
            fields["image_problem"], sources = sources, []
        elif not study.get("localise"):  # the crop would show where the lesion is
            fields["crop"] = case_crop(conn, case_id)
        if study.get("localise") and not row["repeat"]:
            fields["answer_marks"] = tuple(db.own_marks(conn, study_id, reader_id, arm, case_id))
        if arm == "aided" and study["model_run_id"]:
            run_id = str(study["model_run_id"])
            fields.update(model_view(conn, run_id, case_id, fields.get("crop"), True))
    return ReaderCase(**fields), sources


def _worklist_fields(study_id: int, arm: str, position: int, row: dict) -> dict:
    """Position, progress, the arm's display ID and the reader's own earlier answer, if any."""
    shown = str(row["display_id"])
    fields: dict = {
        "arm": arm,
        "position": position,
        "n_cases": row["n_cases"],
        "n_read": row["n_read"],
        # a repeat shows its own ID; a first showing the ID its case carries in this arm
        "display_id": shown
        if row["repeat"]
        else arm_display_id(study_id, arm, row["case_id"], shown),
    }
    if row["label_read"] is not None:
        fields["answer_label"] = row["label_read"]
        confidences = {
            name: float(row[col])
            for name, col in zip(CLASSES, CONFIDENCE_COLUMNS, strict=True)
            if row[col] is not None
        }
        fields["answer_confidences"] = confidences or None
    return fields


def load_next_case(study_id: int, reader_id: int, arm: str, *, db_path=None, **options):
    """The first unread case of the reader's worklist (resume point), or None when finished.

    ``options`` are those of :func:`case_for_reader`.
    """
    position = first_unread(study_id, reader_id, arm, db_path=db_path)
    if position is None:
        return None
    return case_for_reader(study_id, reader_id, arm, position, db_path=db_path, **options)


def prefetch_gradcam(study_id: int, reader_id: int, position: int = 1, *, db_path=None) -> None:
    """Start one background worker that makes the Grad-CAM of every case of the reader's aided
    worklist, from ``position`` on, so later aided cases show theirs at once.

    Does nothing outside a study with an aided arm and a model run, or when a worker for the
    run is already busy.
    """
    from core.reader_study.heatmaps import make_overlays
    from core.reader_study.viewing import case_crop

    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        if "aided" not in study["arms"] or not study["model_run_id"]:
            return
        run_id = str(study["model_run_id"])
        work = db.worklist(conn, study_id, reader_id, "aided").sort_values("position")
        order = pd.concat([work[work["position"] >= position], work[work["position"] < position]])
        jobs = []
        for case_id in order["case_id"]:
            probs = db.case_probabilities(conn, run_id, str(case_id))
            crop = case_crop(conn, str(case_id))
            if probs is not None and crop is not None:
                top = int(np.argmax([probs[name] for name in CLASSES]))
                jobs.append((crop, top, str(case_id)))  # the fold model that never saw it
    make_overlays(run_id, jobs, wait=False)


def normalise_confidences(label: str, confidences: Mapping[str, float]) -> dict[str, float]:
    """Per-class confidences on any non-negative scale (e.g. sliders 0-100) as ``c_*`` summing to 1.

    Parameters
    ----------
    label : str
        The chosen class; it must have the highest confidence (ties allowed).
    confidences : mapping
        One value per class, keyed ``SCC`` or ``c_SCC`` etc.

    Raises
    ------
    ValueError
        On an unknown label, a missing, negative or non-finite confidence, all zeros, or a
        label that does not have the highest confidence.
    """
    if label not in CLASSES:
        raise ValueError(f"label {label!r} is not one of {', '.join(CLASSES)}")
    values = {}
    for name in CLASSES:
        value = confidences.get(name, confidences.get(f"c_{name}"))
        if value is None:
            raise ValueError(f"confidence for {name} is missing; give one for each of {CLASSES}")
        value = float(value)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"confidence for {name} is {value}; it must be a number >= 0")
        values[name] = value
    total = sum(values.values())
    if total <= 0:
        raise ValueError("all confidences are 0: give the chosen class some confidence")
    if values[label] < max(values.values()):
        best = max(values, key=values.get)
        raise ValueError(
            f"you chose {label} but gave {best} more confidence ({values[best]:g} > "
            f"{values[label]:g}): the chosen class must have the highest confidence"
        )
    return {f"c_{name}": values[name] / total for name in CLASSES}


def submit_answer(
    study_id: int,
    reader_id: int,
    arm: str,
    position: int,
    label: str,
    confidences: Mapping[str, float],
    shown_at: str,
    *,
    submitted_at: str | None = None,
    db_path=None,
) -> int:
    """Store the reader's answer for the case at ``position`` at once; return the read id.

    A changed answer replaces the old one (the database's audit log keeps both). An arm that is
    not open for this reader (aided before the washout, unaided once aided opened) takes none.

    Raises
    ------
    db.StudyClosed
        When the admin has closed the study.
    ValueError
        On bad confidences, an arm outside the study or not open, or an unknown position.
    """
    normalised = normalise_confidences(label, confidences)
    submitted_at = submitted_at or now_iso()
    with db.connect(db_path) as conn:
        read_id, _ = _store(
            conn, study_id, reader_id, arm, position, label, normalised, shown_at, submitted_at
        )
    return read_id


def submit_attempt(attempt: db.attempts.Attempt, *, db_path=None) -> tuple[int, bool]:
    """Store an answer the reading page sent in the background, once per attempt id.

    ``attempt.answered_at`` is when the reader pressed Enter and ``duration_ms`` how long the case
    was on screen, both as the browser measured them. Return ``(read_id, duplicate)``.

    Raises
    ------
    db.StudyClosed, db.attempts.AttemptRefused, ValueError
        As :func:`submit_answer`; also when the case at the position is no longer the one the
        reader saw (its display ID differs).
    """
    normalised = normalise_confidences(attempt.label, attempt.confidences)
    shown = pd.Timestamp(attempt.answered_at) - pd.Timedelta(milliseconds=attempt.duration_ms or 0)
    with db.connect(db_path) as conn:
        return db.attempts.store_once(
            conn,
            attempt,
            lambda: _store(
                conn, attempt.study_id, attempt.reader_id, attempt.arm, attempt.position,
                attempt.label, normalised, shown.isoformat(), attempt.answered_at,
                display_id=attempt.display_id, marks=list(attempt.marks),
            ),
        )  # fmt: skip


def _store(
    conn, study_id, reader_id, arm, position, label, normalised, shown_at, submitted_at,
    display_id: str | None = None, marks: list | None = None,
) -> tuple[int, str]:  # fmt: skip
    """Write one answer in the open connection; return ``(read_id, case_id)``.

    In a localisation study ``marks`` (as the browser sent them) are checked against the case's
    slices and stored with the read; elsewhere they are refused."""
    study = db.get_study(conn, study_id)
    require_open_study(study)
    require_open_arm(conn, study, reader_id, arm)
    row = _entry(conn, study_id, reader_id, arm, position)
    shown_id = _worklist_fields(study_id, arm, int(position), row)["display_id"]
    if display_id is not None and display_id != shown_id:
        raise ValueError(f"the case at position {position} is {shown_id}, not {display_id}")
    if row["repeat"]:  # stored apart, so the MRMC inputs never see it
        read_id = db.repeats.submit_repeat_read(
            conn,
            study_id,
            reader_id,
            str(row["display_id"]),
            label,
            normalised,
            duration_ms=_duration_ms(shown_at, submitted_at),
        )
        return read_id, row["case_id"]
    read_id = db.submit_read(
        conn,
        study_id=study_id,
        reader_id=reader_id,
        case_id=str(row["case_id"]),
        arm=arm,
        label=label,
        confidences=normalised,
        shown_at=shown_at,
        submitted_at=submitted_at,
        marks=_study_marks(conn, study, str(row["case_id"]), marks),
    )
    return read_id, row["case_id"]


def _study_marks(conn, study: Mapping, case_id: str, marks) -> list[dict] | None:
    """The checked marks of a localisation read; None (nothing stored) in other studies."""
    from core.reader_study.read_marks import checked_marks, source_image_ids
    from core.reader_study.slice_sources import slice_sources

    if not study.get("localise"):
        if marks:
            raise ValueError("this study does not take lesion marks")
        return None
    sources = slice_sources(conn, case_id, series=study.get("slices") == "series")
    sources = [] if isinstance(sources, str) else sources
    return checked_marks(marks, sources, source_image_ids(conn, case_id, sources))


def _duration_ms(shown_at: str | None, submitted_at: str) -> int | None:
    """Milliseconds from display to submit, as :func:`db.submit_read` computes for a read."""
    if not shown_at:
        return None
    shown = pd.Timestamp(shown_at)
    submitted = pd.Timestamp(submitted_at)
    return max(round((submitted - shown).total_seconds() * 1000), 0)


def require_open_study(study: Mapping) -> None:
    """Raise :class:`db.StudyClosed` when the study is closed (it takes no reads)."""
    if study["status"] != "open":
        raise db.StudyClosed(
            f"study {study['name']!r} is closed: it takes no reads until the admin reopens it"
        )


def study_overview(study_id: int, *, db_path=None) -> dict:
    """What a reader may know about their study: ``name``, ``open`` and ``instructions``
    (Markdown, render it without HTML)."""
    with db.connect(db_path) as conn:
        study = db.get_study(conn, study_id)
    return {
        "name": str(study["name"]),
        "open": study["status"] == "open",
        "instructions": str(study.get("instructions") or ""),
        "localise": bool(study.get("localise")),
    }


def _entry(conn, study_id: int, reader_id: int, arm: str, position: int) -> dict:
    """The reading-order row at ``position`` (no truth in it), or a clear error: a worklist row
    or a repeat, with ``repeat`` (bool) and progress counts that include the repeats."""
    plan = db.repeats.reader_repeats(conn, study_id, reader_id, arm)
    slot: Slot = locate(int(position), plan["after_position"].tolist(), plan["display_id"].tolist())
    if slot.repeat_id is not None:
        row = db.repeats.repeat_entry(conn, study_id, reader_id, slot.repeat_id)
        n_cases, n_read = worklist_counts(conn, study_id, reader_id, arm)
        row = {**row, "n_cases": n_cases, "n_read": n_read}
    else:
        row = db.worklist_entry(conn, study_id, reader_id, arm, slot.position)
    if row is None or int(position) < 1:
        raise ValueError(f"position {position} is not in this reader's {arm} worklist")
    return {
        **row,
        "case_id": str(row["case_id"]),
        "repeat": slot.repeat_id is not None,
        "n_cases": row["n_cases"] + len(plan),
        "n_read": row["n_read"] + int(plan["answered"].astype(bool).sum()),
    }
