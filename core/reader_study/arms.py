"""The arms of a reader study for one reader: which are open, and the ID a case carries in each.

The AI-aided arm opens only after the reader has finished the unaided arm and the study's washout
has passed since their last unaided read. Once it has opened, the unaided arm is locked: a reader
who may have seen the model's output must not change an unaided answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

import db
import db.repeats
from db.clock import utc_now
from db.display_ids import code_from_digest

UNAIDED_LOCKED = "unaided answers are locked once the AI-aided arm has opened"


@dataclass(frozen=True)
class ArmStatus:
    """Where a reader stands in one arm of the study."""

    arm: str
    n_cases: int
    n_read: int
    open: bool
    reason: str = ""  # why a closed arm is closed (e.g. the washout end date)


def check_arm(study: Mapping, arm: str) -> None:
    """Raise ValueError unless ``arm`` is one of the study's arms.

    Parameters
    ----------
    study : mapping
        As :func:`db.get_study` returns it (``arms`` a tuple of str).
    arm : str
        The arm asked for.
    """
    if arm not in study["arms"]:
        raise ValueError(
            f"arm {arm!r} is not part of this study: it has {', '.join(study['arms'])}"
        )


def reader_arms(
    study_id: int, reader_id: int, *, db_path=None, now: datetime | None = None
) -> list[ArmStatus]:
    """Each arm of the study for this reader, in the study's order.

    Parameters
    ----------
    study_id, reader_id : int
        The study and one of its readers.
    db_path : path, optional
        The database (default: the configured one).
    now : datetime, optional
        The moment to judge the washout at (default: the clock's now).

    Returns
    -------
    list of ArmStatus
        The aided arm is closed until the unaided arm is finished and the washout has passed;
        the unaided arm is closed once the aided arm has opened or holds a read.
    """
    with db.connect(db_path) as conn:  # closed on exit
        return arm_statuses(conn, study_id, reader_id, now or utc_now())


def arm_statuses(conn, study_id: int, reader_id: int, now: datetime) -> list[ArmStatus]:
    """:func:`reader_arms` on an open connection (the reading service checks it before a write)."""
    study = db.get_study(conn, study_id)
    arms = study["arms"]
    reads = db.reader_reads_frame(conn, study_id, reader_id)  # no truth in it
    statuses: dict[str, ArmStatus] = {}
    unaided_done_at: datetime | None = None
    for arm in arms:
        work = db.worklist(conn, study_id, reader_id, arm)
        again = db.repeats.reader_repeats(conn, study_id, reader_id, arm)  # an arm ends after them
        n_cases = len(work) + len(again)
        n_read = int(work["label_read"].notna().sum()) + int(again["answered"].sum())
        status = ArmStatus(arm, n_cases, n_read, True)
        if arm == "unaided" and n_cases and n_read == n_cases:
            unaided_done_at = _last_submit(reads[reads["arm"] == "unaided"]) or now
        if arm == "aided" and "unaided" in arms:
            washout = timedelta(days=float(study["washout_days"] or 0))
            status = _gate_aided(status, unaided_done_at, washout, now)
        statuses[arm] = status
    _lock_unaided_once_aided_opened(statuses, reads)
    return [statuses[arm] for arm in arms]


def _gate_aided(
    status: ArmStatus, unaided_done_at: datetime | None, washout: timedelta, now: datetime
) -> ArmStatus:
    """The aided arm's status: closed until the unaided reads are done and the washout is over."""
    if unaided_done_at is None:
        return ArmStatus(
            status.arm, status.n_cases, status.n_read, False, "Finish the unaided reads first."
        )
    if now < unaided_done_at + washout:
        opens = (unaided_done_at + washout).strftime("%Y-%m-%d %H:%M UTC")
        return ArmStatus(
            status.arm, status.n_cases, status.n_read, False, f"Opens on {opens} (washout)."
        )
    return status


def _lock_unaided_once_aided_opened(statuses: dict[str, ArmStatus], reads: pd.DataFrame) -> None:
    aided, unaided = statuses.get("aided"), statuses.get("unaided")
    if unaided is None or aided is None:
        return
    if aided.open or bool((reads["arm"] == "aided").any()):
        reason = "Your unaided answers are locked: the AI-aided arm has opened."
        statuses["unaided"] = ArmStatus("unaided", unaided.n_cases, unaided.n_read, False, reason)


def _last_submit(reads: pd.DataFrame) -> datetime | None:
    """The latest ``submitted_at`` of some reads, timezone-aware (naive times are UTC)."""
    times = [_parse_time(t) for t in reads["submitted_at"]]
    times = [t for t in times if t is not None]
    return max(times) if times else None


def _parse_time(text) -> datetime | None:
    if text is None or (isinstance(text, float) and text != text):
        return None
    moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def require_open_arm(conn, study: Mapping, reader_id: int, arm: str) -> None:
    """Raise ValueError when ``arm`` takes no answers from this reader now.

    Parameters
    ----------
    conn : sqlite_utils.Database
        An open connection.
    study : mapping
        As :func:`db.get_study` returns it.
    reader_id : int
        The reader who answers.
    arm : str
        The arm answered in; a one-arm study has no gating.
    """
    check_arm(study, arm)
    if "aided" not in study["arms"]:
        return
    statuses = arm_statuses(conn, study["study_id"], reader_id, utc_now())
    status = next(s for s in statuses if s.arm == arm)
    if not status.open:
        raise ValueError(UNAIDED_LOCKED if arm == "unaided" else status.reason)


def arm_display_id(study_id: int, arm: str, case_id: str, display_id: str) -> str:
    """The ID a reader sees for a case in ``arm``.

    The case's own display ID in the unaided arm, and an unrelated one per study in any later
    arm, so that a case cannot be recognised across the washout by its ID.
    """
    if arm == "unaided":
        return display_id
    digest = hashlib.sha256(f"{study_id}\x1f{arm}\x1f{case_id}".encode()).digest()
    return f"{arm[0].upper()}-{code_from_digest(digest, 8)}"
