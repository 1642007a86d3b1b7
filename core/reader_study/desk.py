"""The reading desk's one round trip: store the answers the browser sends, send the cases it lacks.

The reading page keeps the case on screen and the next unread ones in the browser, answers there,
and sends its answers in the background (:mod:`dashboard.reading_desk`). Each message from the
browser is a *sync*: the answers not yet acknowledged (each with its attempt id), the position on
screen and the positions it holds. :func:`sync` stores the answers once each, keeps refused ones
for the admin, and replies with one binary message (:mod:`core.reader_study.pixel_transport`):
acknowledgements, the worklist, and the cases the browser should hold and lacks.

Blinding: a case entry is built from :class:`core.reader_study.reading.ReaderCase` by an explicit
list of fields (:data:`CASE_FIELDS`); it names nothing of any other case; model output goes only
in the AI-aided arm. In a localisation study (readers mark the lesion) no ROI, no lesion crop and
no Grad-CAM image is sent at all: each would show where the lesion is.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

import db
import db.attempts
from core.data.labels import CLASSES
from core.reader_study import answers, reading
from core.reader_study.pixel_transport import compress_pixels, pack, quantise
from core.reader_study.viewer_data import png_data_url, window_presets
from core.reader_study.viewing import ROI_COLOUR
from db.clock import now_iso

PREFETCH = 2  # unread cases the browser holds beyond the one on screen
FIRST_ONLY_FROM = 4  # slices: a case not held with more shows its first slice, then the rest
MAX_PENDING = 500  # answers per sync; more is not a reading page
CASE_FIELDS = frozenset(
    {"position", "display_id", "answer", "slices", "start", "presets", "roi_colour", "side",
     "model", "model_note", "image_problem"}
)  # fmt: skip
SLICE_FIELDS = frozenset({"w", "h", "offset", "scale", "roi", "blob"})
REFUSE_ERRORS = (
    ValueError, KeyError, db.CervixScopeDBError, db.attempts.AttemptRefused,
)  # fmt: skip


@dataclass(frozen=True)
class SyncRequest:
    """What the browser sends: ``at`` (position on screen), ``pending`` answers, ``have``."""

    at: int | None = None
    pending: tuple[Mapping, ...] = ()
    have: frozenset[int] = frozenset()
    rest: frozenset[int] = frozenset()  # cases the browser holds the first slice of only


def parse_request(value) -> SyncRequest:
    """A :class:`SyncRequest` from the component's trigger value; anything malformed is dropped
    (a reader's browser runs our code, but the websocket takes anyone's)."""
    if not isinstance(value, Mapping):
        return SyncRequest()
    at = value.get("at")
    pending = value.get("pending") if isinstance(value.get("pending"), list) else []
    have = value.get("have") if isinstance(value.get("have"), list) else []
    rest = value.get("rest") if isinstance(value.get("rest"), list) else []
    return SyncRequest(
        at=int(at) if isinstance(at, int) and at >= 1 else None,
        pending=tuple(p for p in pending[:MAX_PENDING] if isinstance(p, Mapping)),
        have=frozenset(int(h) for h in have if isinstance(h, int)),
        rest=frozenset(int(r) for r in rest[: PREFETCH + 1] if isinstance(r, int)),
    )


def desk_key(study_id: int, reader_id: int) -> str:
    """An opaque name for this reader's answers waiting in the browser (local storage): answers
    queued under one reader are never sent under another."""
    return hashlib.sha256(f"cervixscope:{int(study_id)}:{int(reader_id)}".encode()).hexdigest()[:20]


def attempt_from(
    entry: Mapping, study_id: int, reader_id: int, arm: str, received
) -> db.attempts.Attempt:
    """One pending answer as a :class:`db.attempts.Attempt`, or ValueError naming what is wrong.

    The browser measures ``duration_ms`` (case drawn to Enter) and ``age_ms`` (Enter to this send),
    so the stored times do not depend on the browser's clock.
    """
    attempt_id = db.attempts.check_attempt_id(entry.get("attempt"))
    label = entry.get("label")
    certainty = entry.get("certainty") or answers.DEFAULT_CERTAINTY
    if label not in CLASSES or certainty not in answers.CERTAINTY_LEVELS:
        raise ValueError(f"answer {attempt_id}: type {label!r} or certainty {certainty!r} unknown")
    arm = entry.get("arm", arm)
    if not isinstance(arm, str) or len(arm) > 16:
        raise ValueError(f"answer {attempt_id}: no arm")
    position, display_id = entry.get("position"), entry.get("display_id")
    if not isinstance(position, int) or not isinstance(display_id, str):
        raise ValueError(f"answer {attempt_id}: no case position or display ID")
    duration = _non_negative(entry.get("duration_ms"))
    age = _non_negative(entry.get("age_ms")) or 0
    marks = entry.get("marks")
    if marks is not None and not isinstance(marks, list):
        raise ValueError(f"answer {attempt_id}: marks are not a list")
    if marks and len(marks) > 10 * db.MAX_MARKS:  # not kept: no reader makes these
        raise ValueError(f"answer {attempt_id}: a read holds at most {db.MAX_MARKS} marks")
    answered = received - pd.Timedelta(milliseconds=age)
    return db.attempts.Attempt(
        attempt_id=attempt_id, study_id=int(study_id), reader_id=int(reader_id), arm=arm,
        position=position, display_id=display_id[:64], label=label,
        confidences=answers.confidences_for(label, certainty), duration_ms=duration,
        answered_at=answered.isoformat(timespec="milliseconds"),
        marks=tuple(marks or ()),
    )  # fmt: skip


def _non_negative(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and 0 <= value < 1e10 else None


def store_pending(
    study_id: int, reader_id: int, arm: str, pending, *, refuse: str | None = None, db_path=None
) -> tuple[list[str], list[list[str]]]:
    """Store each pending answer once; return ``(acknowledged ids, [[id, reason], ...] refused)``.

    ``refuse`` (e.g. "your access code was revoked") refuses them all. Every refused answer that
    can be read is kept for the admin (:func:`db.attempts.keep_refused`).
    """
    received = pd.Timestamp(now_iso())
    acks, refused = [], []
    for entry in pending:
        try:
            attempt = attempt_from(entry, study_id, reader_id, arm, received)
        except ValueError as exc:
            refused.append([str(entry.get("attempt"))[:64], str(exc)])
            continue
        try:
            if refuse:
                raise db.StudyClosed(refuse)
            reading.submit_attempt(attempt, db_path=db_path)
            acks.append(attempt.attempt_id)
        except REFUSE_ERRORS as exc:
            with db.connect(db_path) as conn:
                db.attempts.keep_refused(conn, attempt, str(exc))
            refused.append([attempt.attempt_id, str(exc)])
    return acks, refused


def wanted_positions(work: pd.DataFrame, at: int, extra: int = PREFETCH) -> list[int]:
    """``at`` and the next ``extra`` unread positions after it (then from the start)."""
    unread = work.loc[~work["read"], "position"].tolist()
    after = [p for p in unread if p > at] + [p for p in unread if p < at]
    return [at, *after[:extra]]


@dataclass(frozen=True)
class DeskReply:
    """The reply ``message`` (bytes for the browser), the attempts it acknowledges and the
    positions whose cases it carries."""

    message: bytes
    acks: tuple[str, ...] = ()
    sent: frozenset[int] = frozenset()


def constants(ui: Mapping | None) -> dict:
    """What the browser needs to answer, the same for every reader (no data in it)."""
    return {
        "classes": list(CLASSES),
        "levels": dict(answers.CERTAINTY_LEVELS),
        "type_keys": dict(answers.TYPE_KEYS),
        "level_keys": dict(answers.CERTAINTY_KEYS),
        "default_level": answers.DEFAULT_CERTAINTY,
        "prefetch": PREFETCH,
        "max_marks": db.MAX_MARKS,
        **dict(ui or {}),
    }


def sync(
    study_id: int,
    reader_id: int,
    arm: str,
    request: SyncRequest,
    *,
    start: int | None = None,
    refuse: str | None = None,
    ui: Mapping | None = None,
    db_path=None,
) -> DeskReply:
    """One round trip of the reading page (see the module docstring).

    ``start`` is where a new page begins (the URL's position, else the first unread); ``refuse``
    a reason to refuse every answer (the session's code was revoked); ``ui`` constant texts for
    the page (legends, sizes).
    """
    acks, refused = store_pending(
        study_id, reader_id, arm, request.pending, refuse=refuse, db_path=db_path
    )
    study = reading.study_overview(study_id, db_path=db_path)
    header: dict = {"v": 1, "arm": arm, "desk": desk_key(study_id, reader_id), "acks": acks,
                    "refused": refused, "localise": study["localise"],
                    **constants(ui)}  # fmt: skip
    if refuse or not study["open"]:
        reason = refuse or f"The study {study['name']} is closed."
        message = pack({**header, "status": "stopped", "message": reason, "cases": []}, [])
        return DeskReply(message, tuple(acks))
    work = reading.worklist_status(study_id, reader_id, arm, db_path=db_path)
    first = work.loc[~work["read"], "position"].min() if (~work["read"]).any() else 1
    default = start if start is not None and 1 <= start <= len(work) else int(first)
    at = request.at if request.at is not None and request.at <= len(work) else default
    blobs: list[bytes] = []
    cases = []
    for p in dict.fromkeys([*wanted_positions(work, at), *sorted(request.rest)]):
        if (p in request.have and p not in request.rest) or not 1 <= p <= len(work):
            continue
        case, sources = reading.case_sources(study_id, reader_id, arm, p, db_path=db_path)
        first_only = (
            p == at and p not in request.rest and len(sources) > FIRST_ONLY_FROM
            and not _SLICES.holds(sources)
        )  # fmt: skip
        cases.append(
            case_entry(case, sources, blobs, first_only=first_only, localise=study["localise"])
        )
        if first_only:  # its first slice now; the rest and the prefetch with the next sync
            break
    header.update(
        status="open",
        start=default,
        work=[
            [int(p), str(d), bool(r)]
            for p, d, r in work[["position", "display_id", "read"]].itertuples(index=False)
        ],
        cases=cases,
    )
    return DeskReply(pack(header, blobs), tuple(acks), frozenset(c["position"] for c in cases))


def case_entry(
    case: reading.ReaderCase,
    sources,
    blobs: list[bytes],
    *,
    first_only: bool = False,
    localise: bool = False,
) -> dict:
    """The browser's entry for one case (exactly :data:`CASE_FIELDS`); its slices' compressed
    pixels are appended to ``blobs`` and named by index.

    With ``first_only``, only the slice shown first carries pixels (the others have no ``blob``
    yet): a case the browser did not hold shows at once, and the browser asks for the rest.
    With ``localise`` (the reader marks the lesion) no ROI and no picture of the lesion is sent.
    """
    entry: dict = dict.fromkeys(CASE_FIELDS)
    entry.update(
        position=int(case.position), display_id=str(case.display_id), roi_colour=ROI_COLOUR
    )
    if case.answer_label is not None:
        percent = answers.as_percent(case.answer_confidences or {})
        entry["answer"] = {
            "label": case.answer_label,
            "certainty": answers.certainty_of(case.answer_label, percent),
        }
        if localise:
            entry["answer"]["marks"] = [_browser_mark(m) for m in case.answer_marks]
    # the slice the model used opens first, except where that would point at the lesion
    start = 0 if localise else next((i for i, s in enumerate(sources) if s.roi is not None), 0)
    entry["slices"] = []
    for i, source in enumerate(sources):
        roi = None if source.roi is None or localise else [int(v) for v in source.roi]
        if first_only and i != start:
            entry["slices"].append({**dict.fromkeys(SLICE_FIELDS), "roi": roi})
            continue
        blob, w, h, offset, scale = _SLICES.get(source)
        entry["slices"].append({"w": w, "h": h, "offset": offset, "scale": scale, "roi": roi,
                                "blob": len(blobs)})  # fmt: skip
        blobs.append(blob)
    if sources:
        entry["start"] = start
        entry["presets"] = _presets(sources[start])
    else:
        entry["image_problem"] = case.image_problem or "No image for this case."
    show_crop = case.crop is not None and not localise
    entry["side"] = [{"title": "Lesion crop", "src": png_data_url(case.crop)}] if show_crop else []
    if case.arm == "aided":
        if case.model_probabilities:
            entry["model"] = {name: float(case.model_probabilities[name]) for name in CLASSES}
        if case.gradcam is not None and not localise:
            entry["side"].append(
                {"title": "Grad-CAM, model's top type", "src": png_data_url(case.gradcam)}
            )
        entry["model_note"] = case.gradcam_problem
    return entry


def _browser_mark(mark) -> dict:
    """A stored mark as the browser draws it: a point or a box on a slice."""
    if mark["kind"] == "point":
        return {"slice": int(mark["slice"]), "x": int(mark["x0"]), "y": int(mark["y0"])}
    return {"slice": int(mark["slice"]), **{k: int(mark[k]) for k in ("x0", "y0", "x1", "y1")}}


@functools.lru_cache(maxsize=4096)
def _presets_of(key: str, source) -> tuple:
    decoded = source.decoded()
    return tuple(
        window_presets(np.asarray(decoded.array), decoded.window_center, decoded.window_width)
    )


def _presets(source) -> list[dict]:
    """The window presets of a slice (its file's window, a wide and a narrow one), cached."""
    return [dict(p) for p in _presets_of(source.key, source)]


class _SliceCache:
    """Compressed slices by source key, up to ``limit`` bytes: every reader reads the same cases,
    so each slice is decoded and compressed once per server process. Holds pixels only."""

    def __init__(self, limit: int = 512 * 2**20) -> None:
        self.limit, self.size = limit, 0
        self.items: OrderedDict[str, tuple] = OrderedDict()
        self.lock = threading.Lock()

    def holds(self, sources) -> bool:
        """Whether every one of ``sources`` is compressed already (a case cheap to send whole)."""
        with self.lock:
            return all(source.key in self.items for source in sources)

    def get(self, source) -> tuple[bytes, int, int, float, float]:
        with self.lock:
            if source.key in self.items:
                self.items.move_to_end(source.key)
                return self.items[source.key]
        raw, offset, scale = quantise(source.pixels())
        value = (compress_pixels(raw), int(raw.shape[1]), int(raw.shape[0]), offset, scale)
        with self.lock:
            if source.key not in self.items:
                self.items[source.key] = value
                self.size += len(value[0])
            while self.size > self.limit and len(self.items) > 1:
                self.size -= len(self.items.popitem(last=False)[1][0])
        return value


_SLICES = _SliceCache()
