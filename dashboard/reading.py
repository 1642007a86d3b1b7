"""What a reader may see and do, as plain functions (no Streamlit): the reading page calls these,
and the load test drives many concurrent readers through exactly the same calls.

Blinding lives here, on the server: a reader addresses cases by their worklist *position*, and
nothing returned to a reader carries a ``case_id``, a file name, the truth, another reader's answer
or, outside the AI-aided arm, any model output. Each call opens its own short-lived connection.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

import db
from core.labels import CLASSES

ARMS = ("unaided", "aided")
CONFIDENCE_COLUMNS = tuple(f"c_{name}" for name in CLASSES)


@dataclass(frozen=True)
class ReaderCase:
    """One case as a reader sees it. Deliberately has no ``case_id`` and no truth."""

    arm: str
    position: int
    n_cases: int
    n_read: int
    display_id: str
    image: np.ndarray | None = None  # the slice, float, after modality rescale
    window_center: float | None = None
    window_width: float | None = None
    roi: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in image pixels
    crop: np.ndarray | None = None  # float in [0, 1]
    image_problem: str | None = None  # why no image could be shown, if so
    answer_label: str | None = None  # this reader's current answer, if any
    answer_confidences: dict[str, float] | None = None
    model_probabilities: dict[str, float] | None = None  # aided arm only
    gradcam: np.ndarray | None = None  # aided arm only
    gradcam_problem: str | None = None


@dataclass(frozen=True)
class ArmStatus:
    """Where a reader stands in one arm of the study."""

    arm: str
    n_cases: int
    n_read: int
    open: bool
    reason: str = ""  # why a closed arm is closed (e.g. the washout end date)


@contextmanager
def _connect(db_path: str | Path | None) -> Iterator:
    conn = db.connect(db_path)
    try:
        yield conn
    finally:
        conn.close()


def _study_arms(study: Mapping) -> tuple[str, ...]:
    arms = study.get("arms", ("unaided",))
    if isinstance(arms, str):
        arms = json.loads(arms) if arms.strip().startswith("[") else arms.split(",")
    return tuple(a.strip() for a in arms)


def _check_arm(study: Mapping, arm: str) -> None:
    arms = _study_arms(study)
    if arm not in arms:
        raise ValueError(f"arm {arm!r} is not part of this study: it has {', '.join(arms)}")


def _parse_time(text) -> datetime | None:
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def now_iso() -> str:
    """The current time as an ISO-8601 UTC string, the format every read timestamp uses."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


SHOWN_AT_KEY = "shown_at"  # session key: (arm, position, ISO time) of the case on screen
UNAIDED_LOCKED = "unaided answers are locked once the AI-aided arm has opened"


def shown_at(state: MutableMapping, arm: str, position: int) -> str:
    """When the case now on screen was displayed: kept across reruns of the same display (window
    changes), started afresh when the reader arrives at another case or comes back to one, so a
    read's duration is the time from this display to its submit. ``state`` is the session."""
    here = (arm, int(position))
    kept = state.get(SHOWN_AT_KEY)
    if not isinstance(kept, tuple) or kept[:2] != here:
        kept = (*here, now_iso())
        state[SHOWN_AT_KEY] = kept
    return kept[2]


def forget_shown_at(state: MutableMapping) -> None:
    """Drop the display time after a submit or when the reader navigates away."""
    state.pop(SHOWN_AT_KEY, None)


def reader_arms(
    study_id: int, reader_id: int, *, db_path=None, now: datetime | None = None
) -> list[ArmStatus]:
    """Each arm of the study for this reader; the aided arm opens after the unaided arm is
    finished and the study's washout days have passed since the reader's last unaided read.
    Once the aided arm has opened (or the reader has an aided read), the unaided arm is closed:
    a reader who may have seen the model's output must not change an unaided answer."""
    with _connect(db_path) as conn:
        return _arm_statuses(conn, study_id, reader_id, now or datetime.now(UTC))


def _arm_statuses(conn, study_id: int, reader_id: int, now: datetime) -> list[ArmStatus]:
    study = db.get_study(conn, study_id)
    arms = _study_arms(study)
    reads = db.reader_reads_frame(conn, study_id, reader_id)  # no truth in it
    statuses: dict[str, ArmStatus] = {}
    unaided_done_at: datetime | None = None
    for arm in arms:
        work = db.worklist(conn, study_id, reader_id, arm)
        n_read = int(work["label_read"].notna().sum())
        status = ArmStatus(arm, len(work), n_read, True)
        if arm == "unaided" and len(work) and n_read == len(work):
            mine = reads[reads["arm"] == "unaided"]
            times = [t for t in map(_parse_time, mine["submitted_at"]) if t is not None]
            unaided_done_at = max(times) if times else now
        if arm == "aided" and "unaided" in arms:
            washout = timedelta(days=float(study.get("washout_days") or 0))
            if unaided_done_at is None:
                status = ArmStatus(arm, len(work), n_read, False, "Finish the unaided reads first.")
            elif now < unaided_done_at + washout:
                opens = (unaided_done_at + washout).strftime("%Y-%m-%d %H:%M UTC")
                status = ArmStatus(arm, len(work), n_read, False, f"Opens on {opens} (washout).")
        statuses[arm] = status
    aided, unaided = statuses.get("aided"), statuses.get("unaided")
    if unaided is not None and aided is not None:
        if aided.open or bool((reads["arm"] == "aided").any()):
            reason = "Your unaided answers are locked: the AI-aided arm has opened."
            statuses["unaided"] = ArmStatus(
                "unaided", unaided.n_cases, unaided.n_read, False, reason
            )
    return [statuses[arm] for arm in arms]


def arm_display_id(study_id: int, arm: str, case_id: str, display_id: str) -> str:
    """The ID a reader sees: the case's display ID in the unaided arm, and an unrelated one per
    study in any later arm, so that a case cannot be recognised across the washout by its ID."""
    if arm == "unaided":
        return display_id
    digest = hashlib.sha256(f"{study_id}\x1f{arm}\x1f{case_id}".encode()).hexdigest()
    return f"{arm[0].upper()}-{digest[:8].upper()}"


def worklist_status(study_id: int, reader_id: int, arm: str, *, db_path=None):
    """The reader's own worklist: ``position, display_id, read`` (bool). No case ids, no labels."""
    with _connect(db_path) as conn:
        _check_arm(db.get_study(conn, study_id), arm)
        work = db.worklist(conn, study_id, reader_id, arm)
    out = work[["position", "display_id"]].copy()
    out["display_id"] = [
        arm_display_id(study_id, arm, case, shown)
        for case, shown in zip(work["case_id"], work["display_id"], strict=True)
    ]
    out["read"] = work["label_read"].notna().to_numpy()
    return out.reset_index(drop=True)


def first_unread(study_id: int, reader_id: int, arm: str, *, db_path=None) -> int | None:
    """The position of the reader's first unread case in ``arm``, or None when all are read."""
    with _connect(db_path) as conn:
        return db.next_unread(conn, study_id, reader_id, arm)


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
    """The case at ``position`` of this reader's worklist, holding only what the reader may see."""
    with _connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        _check_arm(study, arm)
        row = _entry(conn, study_id, reader_id, arm, position)
        case_id = str(row["case_id"])
        fields: dict = {
            "arm": arm,
            "position": int(position),
            "n_cases": row["n_cases"],
            "n_read": row["n_read"],
            "display_id": arm_display_id(study_id, arm, case_id, str(row["display_id"])),
        }
        if row["label_read"] is not None:  # the reader's own earlier answer
            fields["answer_label"] = row["label_read"]
            confidences = {
                name: float(row[col])
                for name, col in zip(CLASSES, CONFIDENCE_COLUMNS, strict=True)
                if row[col] is not None
            }
            fields["answer_confidences"] = confidences or None
        if with_images:
            fields.update(_case_image(conn, case_id))
        if arm == "aided" and study.get("model_run_id"):
            fields.update(
                _model_view(
                    conn, str(study["model_run_id"]), case_id, fields.get("crop"), with_gradcam
                )
            )
    return ReaderCase(**fields)


def load_next_case(study_id: int, reader_id: int, arm: str, *, db_path=None, **options):
    """The first unread case of the reader's worklist (resume point), or None when finished."""
    position = first_unread(study_id, reader_id, arm, db_path=db_path)
    if position is None:
        return None
    return case_for_reader(study_id, reader_id, arm, position, db_path=db_path, **options)


def normalise_confidences(label: str, confidences: Mapping[str, float]) -> dict[str, float]:
    """Turn per-class confidences (any non-negative scale, e.g. sliders 0-100) into ``c_*`` that
    sum to 1, after checking the chosen ``label`` has the highest confidence (ties allowed)."""
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
    """Store the reader's answer for the case at ``position`` at once (a changed answer replaces
    the old one; the database's audit log keeps both). Returns the read id."""
    normalised = normalise_confidences(label, confidences)
    with _connect(db_path) as conn:
        study = db.get_study(conn, study_id)
        _check_arm(study, arm)
        if "aided" in _study_arms(study):  # an arm that is not open takes no answers
            statuses = _arm_statuses(conn, study_id, reader_id, datetime.now(UTC))
            status = next(s for s in statuses if s.arm == arm)
            if not status.open:
                raise ValueError(UNAIDED_LOCKED if arm == "unaided" else status.reason)
        row = _entry(conn, study_id, reader_id, arm, position)
        return db.submit_read(
            conn,
            study_id=study_id,
            reader_id=reader_id,
            case_id=str(row["case_id"]),
            arm=arm,
            label=label,
            confidences=normalised,
            shown_at=shown_at,
            submitted_at=submitted_at or now_iso(),
        )


def _entry(conn, study_id: int, reader_id: int, arm: str, position: int) -> dict:
    """The worklist row at ``position`` (no truth in it), or a clear error."""
    row = db.worklist_entry(conn, study_id, reader_id, arm, position)
    if row is None:
        raise ValueError(f"position {position} is not in this reader's {arm} worklist")
    return row


def _roi(image_row) -> tuple[int, int, int, int] | None:
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


def _case_image(conn, case_id: str) -> dict:
    """The case's first slice, window and ROI, and a display crop around the ROI."""
    from core.data import dicom_io  # imported here: pydicom is only needed when images are shown

    images = db.images_frame(conn, case_id)
    if images.empty:
        return {"image_problem": "No image is recorded for this case."}
    image_row = images.sort_values("image_id").iloc[0]
    path_column = "source_path" if "source_path" in image_row.index else "path"
    path = Path(str(image_row[path_column]))
    if not path.is_absolute():
        ingestion = db.latest_ingestion(conn) or {}
        path = Path(str(ingestion.get("data_dir") or ".")) / path
    frame = image_row.get("frame", 0)
    frame = int(frame) if frame == frame and frame is not None else 0
    try:
        dicom = _read_slice(str(path), frame, path.stat().st_mtime)
    except (dicom_io.DicomReadError, OSError) as exc:
        # the message would name the file, which could carry a label: keep it generic for readers
        return {
            "image_problem": f"The image for this case could not be read ({type(exc).__name__})."
        }
    image = np.asarray(dicom.array, dtype=np.float32)
    roi = _roi(image_row)
    crop = _cached_crop(image_row)
    if crop is None and roi is not None:  # no crop cache: cut it the way ingestion did
        size = (db.latest_ingestion(conn) or {}).get("crop_size") or 100
        crop = crop_roi(image, roi, size=int(size))
    return {
        "image": image,
        "window_center": _float_or_none(dicom.window_center),
        "window_width": _float_or_none(dicom.window_width),
        "roi": roi,
        "crop": crop,
    }


@functools.lru_cache(maxsize=64)
def _read_slice(path: str, frame: int, mtime: float):
    """A decoded slice, kept while the file is unchanged: window/level changes rerun the page."""
    from core.data import dicom_io

    return dicom_io.read_pixels(path, frame=frame)


def _cached_crop(image_row) -> np.ndarray | None:
    """The model's own crop from the ingestion's crop cache, when it is recorded and readable."""
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


def _float_or_none(value) -> float | None:
    try:
        return float(value[0] if isinstance(value, (list, tuple)) else value)
    except (TypeError, ValueError, IndexError):
        return None


def crop_roi(image: np.ndarray, roi, *, size: int = 100, margin: float = 0.1) -> np.ndarray:
    """The model's crop of the ROI, by ingestion's own transforms: the slice scaled to [0, 1] by
    its 1st-99th percentiles, the box squared and grown by ``margin``, resized to ``size``."""
    from core.data.transforms import lesion_crop

    return lesion_crop(crop_size=size, margin=margin)(image, roi)


def _model_view(conn, run_id: str, case_id: str, crop, with_gradcam: bool) -> dict:
    """The model's out-of-fold probabilities for the case and, if possible, its Grad-CAM."""
    probs = db.case_probabilities(conn, run_id, case_id)  # no truth in it
    if probs is None:
        return {"gradcam_problem": "The model has no prediction for this case."}
    out: dict = {"model_probabilities": probs}
    if with_gradcam and crop is not None:
        try:
            from core.learning.gradcam import gradcam_overlay

            top = int(np.argmax([probs[name] for name in CLASSES]))
            out["gradcam"] = gradcam_overlay(run_id, crop, top)
        except Exception as exc:  # noqa: BLE001 - Grad-CAM is optional context for the reader
            out["gradcam_problem"] = f"Grad-CAM is not available for this model run ({exc})."
    return out


def window_defaults(case: ReaderCase) -> tuple[float, float]:
    """The file's window for the slice, or the 1st-99th percentile span when it has none."""
    if case.window_center is not None and case.window_width is not None and case.window_width >= 1:
        return float(case.window_center), float(case.window_width)
    if case.image is None:
        return 0.0, 1.0
    lo, hi = np.percentile(case.image, [1, 99])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


def render_slice(image: np.ndarray, center: float, width: float, roi=None) -> np.ndarray:
    """The slice windowed to 8-bit grey, as RGB, with the ROI outlined in yellow."""
    from core.data.dicom_io import apply_window

    grey = apply_window(image, center, max(float(width), 1.0))
    rgb = np.repeat(grey[..., None], 3, axis=2)
    if roi is not None:
        h, w = grey.shape
        x0, y0, x1, y1 = (int(v) for v in roi)
        x0, x1 = np.clip([x0, x1 - 1], 0, w - 1)
        y0, y1 = np.clip([y0, y1 - 1], 0, h - 1)
        yellow = np.array([255, 215, 0], dtype=np.uint8)
        rgb[y0, x0 : x1 + 1] = yellow
        rgb[y1, x0 : x1 + 1] = yellow
        rgb[y0 : y1 + 1, x0] = yellow
        rgb[y0 : y1 + 1, x1] = yellow
    return rgb
