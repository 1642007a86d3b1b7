"""Reader studies, their case sets and readers; access codes and each reader's case order.

Access codes: ``add_reader`` returns a code such as ``R7-K3PX-9QMT-W2HZ`` once and stores only a
salted ``hashlib.scrypt`` hash of it. The ``R7`` prefix is the (non-secret) reader ID, so sign-in
checks one hash instead of running scrypt once per reader of every study; the random part (12
symbols from a 30-letter alphabet, about 59 bits from ``secrets``) is what makes a code
unguessable, and scrypt keeps it unrecoverable from a copied database file.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import secrets
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd
import sqlite_utils

from db.clock import now_iso
from db.errors import (
    CaseNotFound,
    DuplicateStudy,
    InvalidAccessCode,
    ReaderNotFound,
    RunNotFound,
    StudyClosed,
    StudyNotFound,
)
from db.security import clean_name
from db.sessions import revoke_reader_sessions
from db.transactions import write_transaction
from db.values import from_json, to_json

ARMS = ("unaided", "aided")
STUDY_STATUSES = ("open", "closed")
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud without confusion
CODE_GROUPS = 3
CODE_GROUP_LEN = 4
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}  # ~16 MiB, tens of ms: cheap per sign-in
_SCRYPT_SLOT = threading.BoundedSemaphore(1)
_CODE_RE = re.compile(r"^R(\d{1,18})-([A-Z0-9]{4}(?:-[A-Z0-9]{4})*)$")  # fits SQLite's INTEGER


@dataclass(frozen=True)
class Reader:
    """A signed-in reader: who they are and which study they read for."""

    reader_id: int
    study_id: int
    display_name: str


SLICE_CHOICES = ("model", "series")  # what readers see of a case (see create_study)


def _study_row(raw, study_id: int) -> dict:
    cursor = raw.execute("SELECT * FROM studies WHERE study_id = ?", (int(study_id),))
    row = cursor.fetchone()
    if row is None:
        raise StudyNotFound(f"study {study_id!r} is not in the database")
    study = dict(zip([d[0] for d in cursor.description], row, strict=True))
    study["arms"] = _arms(study["arms"])
    return study


def _arms(text: str) -> tuple[str, ...]:
    """The ``arms`` column (JSON text) as the tuple every caller gets."""
    return tuple(str(arm) for arm in from_json(text))


def _require_open(study: dict) -> None:
    if study["status"] != "open":
        raise StudyClosed(
            f"study {study['study_id']} ({study['name']!r}) is closed; reopen it to change it"
        )


def create_study(
    conn: sqlite_utils.Database,
    *,
    name: str,
    case_ids: Iterable[str],
    arms: Sequence[str] = ("unaided",),
    order_seed: int = 0,
    model_run_id: str | None = None,
    washout_days: int = 0,
    simulated: bool = False,
    cohorts: Iterable[str] | None = None,
    slices: str = "model",
    localise: bool = False,
    hit_radius_mm: float = 0.0,
) -> int:
    """Create an open reader study over a set of cases; return its ``study_id``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    name : str
        Unique study name.
    case_ids : iterable of str
        The cases every reader reads (each must exist; no duplicates).
    arms : sequence of str
        Reading conditions in order, from ``("unaided", "aided")``; ``"aided"`` needs a model run.
    order_seed : int
        Seeds each reader's random case order (with the reader ID and arm).
    model_run_id : str, optional
        The run whose predictions aided readers see and the study compares against.
    washout_days : int
        Days between a reader's unaided and aided sessions.
    simulated : bool
        True for a study of simulated readers (demo).
    cohorts : iterable of str, optional
        The cohorts the study's cases were drawn from, recorded with the design; every case must
        belong to one of them. Default: the cohorts of ``case_ids``.
    slices : str
        What readers see of a case: ``"model"`` (the slices the model used) or ``"series"``
        (every slice of the case's series, the model's slices marked).
    localise : bool
        Readers also mark where they see the lesion (a click, or a drag for a box); the reference
        ROI is then never shown to them.
    hit_radius_mm : float
        A mark is a hit inside the slice's reference ROI or within this distance of it (mm, from
        the slice's pixel spacing); 0 means inside only.

    Raises
    ------
    DuplicateStudy
        If ``name`` is taken.
    CaseNotFound, RunNotFound
        If a case or the model run is unknown.
    ValueError
        On empty or duplicate cases, unknown arms, ``"aided"`` without a model run, or a case
        outside ``cohorts``.
    """
    name, cases, arms = _check_new_study(name, case_ids, arms, model_run_id, washout_days)
    if slices not in SLICE_CHOICES:
        raise ValueError(f"slices must be one of {', '.join(SLICE_CHOICES)}, not {slices!r}")
    radius = _hit_radius(hit_radius_mm)
    with write_transaction(conn) as raw:
        _check_references(raw, name, cases, model_run_id)
        chosen = _study_cohorts(raw, name, cases, cohorts)
        cursor = raw.execute(
            "INSERT INTO studies (name, created_at, arms, order_seed, model_run_id, washout_days,"
            " simulated, status, cohorts, slices, localise, hit_radius_mm)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
            (name, now_iso(), to_json(list(arms)), int(order_seed),
             None if model_run_id is None else str(model_run_id), int(washout_days),
             int(bool(simulated)), to_json(chosen), slices, int(bool(localise)), radius),
        )  # fmt: skip
        study_id = int(cursor.lastrowid)
        raw.executemany(
            "INSERT INTO study_cases (study_id, case_id) VALUES (?, ?)",
            [(study_id, c) for c in cases],
        )
    return study_id


def _hit_radius(value) -> float:
    radius = float(value)
    if not (math.isfinite(radius) and radius >= 0):
        raise ValueError(f"hit_radius_mm must be a distance >= 0 in mm, not {value!r}")
    return radius


def _check_new_study(
    name, case_ids: Iterable[str], arms: Sequence[str], model_run_id, washout_days
) -> tuple[str, list[str], tuple[str, ...]]:
    """The study's name, cases and arms, cleaned; ValueError on anything a study cannot hold."""
    name = clean_name(name, what="study name")
    cases = [str(c) for c in case_ids]
    if not cases:
        raise ValueError(f"study {name!r} needs at least one case")
    duplicates = (
        sorted({c for c in cases if cases.count(c) > 1}) if len(set(cases)) < len(cases) else []
    )
    if duplicates:
        raise ValueError(f"study {name!r}: case(s) listed twice: {', '.join(duplicates[:10])}")
    arms = tuple(arms)
    bad = [a for a in arms if a not in ARMS]
    if not arms or bad or len(set(arms)) != len(arms):
        raise ValueError(f"study arms {arms!r} must be distinct values from {', '.join(ARMS)}")
    if "aided" in arms and not model_run_id:
        raise ValueError("an 'aided' arm needs model_run_id: the run whose output readers see")
    if int(washout_days) < 0:
        raise ValueError(f"washout_days must be >= 0, got {washout_days}")
    return name, cases, arms


def _check_references(raw, name: str, cases: list[str], model_run_id) -> None:
    """Inside the write transaction: the name is free, the run and every case exist."""
    if raw.execute("SELECT 1 FROM studies WHERE name = ?", (name,)).fetchone():
        raise DuplicateStudy(f"a study named {name!r} already exists; choose another name")
    if (
        model_run_id is not None
        and not raw.execute("SELECT 1 FROM runs WHERE run_id = ?", (str(model_run_id),)).fetchone()
    ):
        raise RunNotFound(f"model run {model_run_id!r} is not in the database")
    known = {c for (c,) in raw.execute("SELECT case_id FROM cases")}
    missing = [c for c in cases if c not in known]
    if missing:
        raise CaseNotFound(
            f"study {name!r}: {len(missing)} case(s) not in the database: {', '.join(missing[:10])}"
        )


def _study_cohorts(raw, name: str, cases: list[str], cohorts) -> list[str]:
    """The cohorts recorded with a new study: those given (every case in one of them), else the
    cases' own."""
    of_case = dict(
        raw.execute(
            "SELECT case_id, cohort FROM cases WHERE case_id IN (SELECT value FROM json_each(?))",
            (to_json(cases),),
        ).fetchall()
    )
    if cohorts is None:
        return sorted(set(of_case.values()))
    chosen = sorted({str(c) for c in cohorts})
    outside = [c for c in cases if of_case[c] not in chosen]
    if outside:
        raise ValueError(
            f"study {name!r} draws from cohort(s) {', '.join(chosen)}, but {len(outside)} case(s) "
            f"are in others: {', '.join(outside[:10])}"
        )
    return chosen


def get_study(conn: sqlite_utils.Database, study_id: int) -> dict:
    """One study as a dict: the ``studies`` columns (``arms`` and ``cohorts`` tuples of str), plus
    ``case_ids``, ``n_cases`` and ``n_readers``.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    raw = conn.conn
    study = _study_row(raw, study_id)
    study["case_ids"] = [
        c
        for (c,) in raw.execute(
            "SELECT case_id FROM study_cases WHERE study_id = ? ORDER BY case_id", (int(study_id),)
        )
    ]
    study["n_cases"] = len(study["case_ids"])
    study["cohorts"] = tuple(
        from_json(study["cohorts"])
        if study["cohorts"]
        else [  # a study made before cohorts were recorded: its cases' own
            c for (c,) in raw.execute(
                "SELECT DISTINCT c.cohort FROM study_cases s JOIN cases c ON c.case_id = s.case_id"
                " WHERE s.study_id = ? ORDER BY c.cohort", (int(study_id),),
            )
        ]
    )  # fmt: skip
    study["n_readers"] = raw.execute(
        "SELECT COUNT(*) FROM readers WHERE study_id = ?", (int(study_id),)
    ).fetchone()[0]
    return study


def studies_frame(conn: sqlite_utils.Database) -> pd.DataFrame:
    """All studies with counts.

    Returns
    -------
    pandas.DataFrame
        Columns ``study_id, name, status, arms`` (a tuple of str, as in :func:`get_study`),
        ``order_seed, model_run_id, washout_days, simulated, created_at, n_cases, n_readers,
        n_reads``, by ``study_id``.
    """
    frame = pd.read_sql_query(
        "SELECT s.study_id, s.name, s.status, s.arms, s.order_seed, s.model_run_id,"
        " s.washout_days, s.simulated, s.created_at,"
        " (SELECT COUNT(*) FROM study_cases c WHERE c.study_id = s.study_id) AS n_cases,"
        " (SELECT COUNT(*) FROM readers r WHERE r.study_id = s.study_id) AS n_readers,"
        " (SELECT COUNT(*) FROM reads d WHERE d.study_id = s.study_id) AS n_reads"
        " FROM studies s ORDER BY s.study_id",
        conn.conn,
    )
    frame["arms"] = pd.Series(
        [_arms(text) for text in frame["arms"]], index=frame.index, dtype=object
    )
    return frame


def set_study_status(conn: sqlite_utils.Database, study_id: int, status: str) -> None:
    """Open or close a study; a closed study accepts no reads and no new readers.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    ValueError
        If ``status`` is not ``"open"`` or ``"closed"``.
    """
    if status not in STUDY_STATUSES:
        raise ValueError(f"study status {status!r} is not one of {', '.join(STUDY_STATUSES)}")
    with write_transaction(conn) as raw:
        _study_row(raw, study_id)
        raw.execute("UPDATE studies SET status = ? WHERE study_id = ?", (status, int(study_id)))


def close_study(conn: sqlite_utils.Database, study_id: int) -> None:
    """Close a study (see :func:`set_study_status`)."""
    set_study_status(conn, study_id, "closed")


def _new_code(reader_id: int) -> str:
    groups = [
        "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LEN))
        for _ in range(CODE_GROUPS)
    ]
    return f"R{reader_id}-" + "-".join(groups)


def _hash_code(code: str, salt: bytes) -> bytes:
    # One scrypt at a time in this process: a flood of guesses costs at most one core.
    with _SCRYPT_SLOT:
        return hashlib.scrypt(code.encode(), salt=salt, maxmem=64 * 2**20, **SCRYPT)


def _normalise_code(code: str) -> str:
    return re.sub(r"\s+", "", str(code)).upper()


def code_credential(access_code: str) -> str | None:
    """The credential an access code tries, for the sign-in limits: ``"reader:<id>"`` from its
    non-secret prefix, or None when the text is not of the code's form."""
    match = _CODE_RE.match(_normalise_code(access_code or ""))
    return f"reader:{int(match.group(1))}" if match else None


def assignment_order(
    case_ids: Iterable[str], *, order_seed: int, reader_id: int, arm: str
) -> list[str]:
    """The reading order of one reader in one arm: a shuffle of the sorted case IDs, seeded by
    ``order_seed``, ``reader_id`` and the arm (so it is reproducible and differs between arms)."""
    digest = hashlib.sha256(f"{int(order_seed)}:{int(reader_id)}:{arm}".encode()).digest()
    order = sorted(case_ids)
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def add_reader(
    conn: sqlite_utils.Database,
    study_id: int,
    display_name: str,
    *,
    simulated: bool = False,
    role: str = "reader",
) -> tuple[int, str]:
    """Add a reader to a study, with a random case order per arm; return ``(reader_id, code)``.

    The access code is returned once and never stored: hand it to the reader now.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    StudyClosed
        If the study is closed.
    ValueError
        If ``display_name`` is empty or already used in this study.
    """
    display_name = clean_name(display_name, what="reader display name")
    salt = secrets.token_bytes(16)
    with write_transaction(conn) as raw:
        study = _study_row(raw, study_id)
        _require_open(study)
        if raw.execute(
            "SELECT 1 FROM readers WHERE study_id = ? AND display_name = ?",
            (int(study_id), display_name),
        ).fetchone():
            raise ValueError(
                f"study {study_id} already has a reader named {display_name!r}; choose another"
            )
        # Insert first to learn the reader ID the code carries, then store the code's hash.
        cursor = raw.execute(
            "INSERT INTO readers (study_id, display_name, role, code_salt, code_hash, simulated,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (int(study_id), display_name, str(role), salt, b"", int(bool(simulated)), now_iso()),
        )
        reader_id = int(cursor.lastrowid)
        code = _new_code(reader_id)
        raw.execute(
            "UPDATE readers SET code_hash = ? WHERE reader_id = ?",
            (_hash_code(code, salt), reader_id),
        )
        _assign_cases(raw, study, reader_id)
    return reader_id, code


def _assign_cases(raw, study: dict, reader_id: int) -> None:
    """Give a new reader the study's cases in their own random order, in each arm."""
    study_id = int(study["study_id"])
    cases = [
        c for (c,) in raw.execute("SELECT case_id FROM study_cases WHERE study_id = ?", (study_id,))
    ]
    for arm in study["arms"]:
        order = assignment_order(
            cases, order_seed=study["order_seed"], reader_id=reader_id, arm=arm
        )
        raw.executemany(
            "INSERT INTO assignments (study_id, reader_id, arm, case_id, position)"
            " VALUES (?, ?, ?, ?, ?)",
            [(study_id, reader_id, arm, c, pos) for pos, c in enumerate(order, start=1)],
        )


def authenticate_reader(conn: sqlite_utils.Database, access_code: str) -> Reader:
    """Return the reader an access code belongs to.

    Parameters
    ----------
    access_code : str
        As handed out by :func:`add_reader`; case and whitespace are ignored.

    Raises
    ------
    InvalidAccessCode
        If the code matches no reader (the message does not say which part was wrong).
    """
    code = _normalise_code(access_code or "")
    match = _CODE_RE.match(code)
    row = None
    if match:
        row = conn.conn.execute(
            "SELECT reader_id, study_id, display_name, code_salt, code_hash FROM readers"
            " WHERE reader_id = ?",
            (int(match.group(1)),),
        ).fetchone()
    # Hash even when no reader matched, so the response time does not reveal valid reader IDs.
    salt = row[3] if row else b"\x00" * 16
    digest = _hash_code(code, salt)
    if row is None or not hmac.compare_digest(digest, row[4]):
        raise InvalidAccessCode(
            "That access code is not valid. Check it against the code your study admin gave you "
            "(format R<number>-XXXX-XXXX-XXXX)."
        )
    return Reader(reader_id=int(row[0]), study_id=int(row[1]), display_name=str(row[2]))


def require_reader(raw, study_id: int, reader_id: int) -> str:
    """Return the reader's display name, or raise ReaderNotFound if not a reader of the study."""
    row = raw.execute(
        "SELECT display_name FROM readers WHERE reader_id = ? AND study_id = ?",
        (int(reader_id), int(study_id)),
    ).fetchone()
    if row is None:
        raise ReaderNotFound(f"reader {reader_id!r} is not a reader of study {study_id}")
    return row[0]


def set_study_instructions(conn: sqlite_utils.Database, study_id: int, text: str) -> None:
    """Store the reader instructions (Markdown, shown to each reader before their first case).

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    ValueError
        If the text is longer than 20,000 characters.
    """
    text = str(text or "").strip()
    if len(text) > 20_000:
        raise ValueError(f"instructions are {len(text)} characters long; keep them under 20,000")
    with write_transaction(conn) as raw:
        _study_row(raw, study_id)
        raw.execute("UPDATE studies SET instructions = ? WHERE study_id = ?", (text, int(study_id)))


def _reader_row(raw, reader_id: int) -> tuple:
    row = raw.execute(
        "SELECT reader_id, study_id, display_name FROM readers WHERE reader_id = ?",
        (int(reader_id),),
    ).fetchone()
    if row is None:
        raise ReaderNotFound(f"reader {reader_id!r} is not in the database")
    return row


def revoke_reader_code(conn: sqlite_utils.Database, reader_id: int) -> None:
    """Revoke a reader's access code: it no longer signs in, and their open sessions end.

    The reader's reads stay; :func:`reissue_reader_code` gives them a new code.

    Raises
    ------
    ReaderNotFound
        If ``reader_id`` is unknown.
    """
    with write_transaction(conn) as raw:
        _reader_row(raw, reader_id)
        raw.execute(
            "UPDATE readers SET code_hash = ?, code_revoked_at = ? WHERE reader_id = ?",
            (b"", now_iso(), int(reader_id)),
        )
        revoke_reader_sessions(raw, reader_id)


def reissue_reader_code(conn: sqlite_utils.Database, reader_id: int) -> str:
    """Give a reader a new access code (returned once); the old code and sessions stop working.

    Raises
    ------
    ReaderNotFound
        If ``reader_id`` is unknown.
    """
    salt = secrets.token_bytes(16)
    code = _new_code(int(reader_id))
    with write_transaction(conn) as raw:
        _reader_row(raw, reader_id)
        raw.execute(
            "UPDATE readers SET code_salt = ?, code_hash = ?, code_revoked_at = NULL"
            " WHERE reader_id = ?",
            (salt, _hash_code(code, salt), int(reader_id)),
        )
        revoke_reader_sessions(raw, reader_id)
    return code


def readers_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """The readers of a study and whether their access code works.

    Returns
    -------
    pandas.DataFrame
        Columns ``reader_id, display_name, simulated, created_at, code_revoked_at``, by
        ``reader_id``.

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    _study_row(conn.conn, study_id)
    return pd.read_sql_query(
        "SELECT reader_id, display_name, simulated, created_at, code_revoked_at FROM readers"
        " WHERE study_id = ? ORDER BY reader_id",
        conn.conn,
        params=(int(study_id),),
    )
