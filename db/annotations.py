"""Annotators and their lesion marks, kept in versions.

An annotator signs in with an access code ``A<id>-XXXX-XXXX-XXXX`` stored only as a salted scrypt
hash (as a reader's ``R`` code is). Each save of one case's marks by one author (an annotator's
display name, or ``admin``) is a new version; earlier versions are never changed, so an ingestion
records exactly which versions its crops were cut from (``ingestion_marks``).

A mark row names its slice by SOP Instance UID and frame, its ``kind`` (box, polygon or mask) and
its geometry as JSON (``core.annotation.geometry.Mark.to_json``). This layer stores what it is
given; the checks on a mark's shape are the caller's (``core.annotation``).
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from dataclasses import dataclass

import pandas as pd
import sqlite_utils

from db.clock import now_iso
from db.errors import InvalidAccessCode
from db.security import clean_name
from db.studies import CODE_ALPHABET, CODE_GROUP_LEN, CODE_GROUPS, _hash_code, _normalise_code
from db.transactions import write_transaction

ADMIN_AUTHOR = "admin"
ORIGINS = ("drawn", "dicom-seg", "nifti")
_CODE_RE = re.compile(r"^A(\d{1,18})-([A-Z0-9]{4}(?:-[A-Z0-9]{4})*)$")


@dataclass(frozen=True)
class Annotator:
    annotator_id: int
    display_name: str


def add_annotator(conn: sqlite_utils.Database, display_name: str) -> tuple[int, str]:
    """Add an annotator; return ``(annotator_id, access code)``. The code is shown once.

    Raises
    ------
    ValueError
        If the name is empty, ``admin``, or already an annotator's.
    """
    name = clean_name(display_name, what="annotator display name")
    if name.lower() == ADMIN_AUTHOR:
        raise ValueError("'admin' names the admin's own marks; choose another annotator name")
    salt = secrets.token_bytes(16)
    with write_transaction(conn) as raw:
        if raw.execute("SELECT 1 FROM annotators WHERE display_name = ?", (name,)).fetchone():
            raise ValueError(f"there is already an annotator named {name!r}; choose another")
        cursor = raw.execute(
            "INSERT INTO annotators (display_name, code_salt, code_hash, created_at)"
            " VALUES (?, ?, ?, ?)",
            (name, salt, b"", now_iso()),
        )
        annotator_id = int(cursor.lastrowid)
        groups = [
            "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_GROUP_LEN))
            for _ in range(CODE_GROUPS)
        ]
        code = f"A{annotator_id}-" + "-".join(groups)
        raw.execute(
            "UPDATE annotators SET code_hash = ? WHERE annotator_id = ?",
            (_hash_code(code, salt), annotator_id),
        )
    return annotator_id, code


def is_annotator_code(access_code: str) -> bool:
    """True when the text has the form of an annotator's code (``A<id>-...``)."""
    return bool(_CODE_RE.match(_normalise_code(access_code or "")))


def annotator_credential(access_code: str) -> str | None:
    """``"annotator:<id>"`` from a code's non-secret prefix, for the sign-in limits."""
    match = _CODE_RE.match(_normalise_code(access_code or ""))
    return f"annotator:{int(match.group(1))}" if match else None


def authenticate_annotator(conn: sqlite_utils.Database, access_code: str) -> Annotator:
    """The annotator an access code belongs to; :class:`InvalidAccessCode` when none (or the code
    was revoked). The hash runs even when no annotator matched, so timing reveals no IDs."""
    code = _normalise_code(access_code or "")
    match = _CODE_RE.match(code)
    row = None
    if match:
        row = conn.conn.execute(
            "SELECT annotator_id, display_name, code_salt, code_hash, code_revoked_at"
            " FROM annotators WHERE annotator_id = ?",
            (int(match.group(1)),),
        ).fetchone()
    digest = _hash_code(code, row[2] if row else b"\x00" * 16)
    if row is None or row[4] is not None or not hmac.compare_digest(digest, row[3]):
        raise InvalidAccessCode(
            "That access code is not valid. Check it against the code your admin gave you "
            "(format A<number>-XXXX-XXXX-XXXX for annotators)."
        )
    return Annotator(int(row[0]), str(row[1]))


def revoke_annotator_code(conn: sqlite_utils.Database, annotator_id: int) -> None:
    """End an annotator's code and sessions (their marks stay)."""
    with write_transaction(conn) as raw:
        raw.execute(
            "UPDATE annotators SET code_revoked_at = ? WHERE annotator_id = ?"
            " AND code_revoked_at IS NULL",
            (now_iso(), int(annotator_id)),
        )
        raw.execute(
            "UPDATE sessions SET revoked_at = ? WHERE annotator_id = ? AND revoked_at IS NULL",
            (now_iso(), int(annotator_id)),
        )


def annotators_frame(conn: sqlite_utils.Database) -> pd.DataFrame:
    """Columns ``annotator_id, display_name, created_at, code_revoked_at, cases_marked``."""
    return pd.read_sql_query(
        "SELECT a.annotator_id, a.display_name, a.created_at, a.code_revoked_at,"
        " (SELECT COUNT(DISTINCT case_id) FROM mark_versions v"
        "  WHERE v.author = a.display_name) AS cases_marked"
        " FROM annotators a ORDER BY a.annotator_id",
        conn.conn,
    )


def _current_version(raw, case_id: str, author: str) -> tuple[int, int] | None:
    return raw.execute(
        "SELECT version_id, version FROM mark_versions WHERE case_id = ? AND author = ?"
        " ORDER BY version DESC LIMIT 1",
        (case_id, author),
    ).fetchone()


def current_mark_version(conn: sqlite_utils.Database, case_id: str, author: str) -> int:
    """The number of the author's latest version of the case's marks (0: never saved)."""
    found = _current_version(conn.conn, case_id, author)
    return 0 if found is None else int(found[1])


def _mark_rows(raw, version_id: int) -> list[tuple]:
    return [
        tuple(r)
        for r in raw.execute(
            "SELECT sop_instance_uid, frame, kind, geometry FROM marks WHERE version_id = ?"
            " ORDER BY mark_id",
            (int(version_id),),
        )
    ]


def save_marks(
    conn: sqlite_utils.Database,
    case_id: str,
    author: str,
    marks: list[dict],
    *,
    origin: str = "drawn",
    origin_detail: str = "",
    annotator_id: int | None = None,
) -> int:
    """Store ``marks`` as the case's next version by ``author``; return its version number.

    ``marks`` are dicts with ``sop_instance_uid``, ``frame``, ``kind`` and ``geometry`` (a dict).
    Saving exactly the current marks again stores nothing and returns the current version (a
    repeated save from the browser is one version). An empty list is a version too (the author
    removed their marks), except on a case they never marked (returns 0). The whole version is stored in one transaction, or nothing is.
    """
    if origin not in ORIGINS:
        raise ValueError(f"mark origin {origin!r} is not one of {', '.join(ORIGINS)}")
    rows = [
        (str(m["sop_instance_uid"]), int(m.get("frame") or 0), str(m["kind"]),
         json.dumps(m["geometry"], sort_keys=True, separators=(",", ":")))
        for m in marks
    ]  # fmt: skip
    with write_transaction(conn) as raw:
        if raw.execute("SELECT 1 FROM cases WHERE case_id = ?", (case_id,)).fetchone() is None:
            raise ValueError(f"case {case_id!r} is not in the database")
        current = _current_version(raw, case_id, author)
        if current is None and not rows:
            return 0  # nothing drawn on a case never marked: no version to keep
        if current is not None and _mark_rows(raw, current[0]) == rows:
            return int(current[1])
        version = 1 if current is None else int(current[1]) + 1
        version_id = raw.execute(
            "INSERT INTO mark_versions (case_id, author, annotator_id, version, created_at,"
            " origin, origin_detail) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (case_id, author, annotator_id, version, now_iso(), origin, origin_detail[:500]),
        ).lastrowid
        raw.executemany(
            "INSERT INTO marks (version_id, sop_instance_uid, frame, kind, geometry)"
            " VALUES (?, ?, ?, ?, ?)",
            [(version_id, *row) for row in rows],
        )
    return version


_MARKS_SELECT = (
    "SELECT v.case_id, v.author, v.annotator_id, v.version_id, v.version, v.created_at,"
    " v.origin, v.origin_detail, m.sop_instance_uid, m.frame, m.kind, m.geometry"
    " FROM mark_versions v LEFT JOIN marks m ON m.version_id = v.version_id"
)
_LATEST = (
    " WHERE v.version = (SELECT MAX(version) FROM mark_versions w"
    " WHERE w.case_id = v.case_id AND w.author = v.author)"
)


def current_marks_frame(
    conn: sqlite_utils.Database, *, case_id: str | None = None, cohort: str | None = None
) -> pd.DataFrame:
    """Every author's current marks: one row per mark (an empty version: one row, no mark).

    Columns ``case_id, author, annotator_id, version_id, version, created_at, origin,
    origin_detail, sop_instance_uid, frame, kind, geometry`` (geometry decoded to a dict).
    """
    sql, params = _MARKS_SELECT + _LATEST, []
    if case_id is not None:
        sql += " AND v.case_id = ?"
        params.append(case_id)
    if cohort is not None:
        sql += " AND v.case_id IN (SELECT case_id FROM cases WHERE cohort = ?)"
        params.append(cohort)
    frame = pd.read_sql_query(sql + " ORDER BY v.case_id, v.author, m.mark_id", conn.conn,
                              params=params)  # fmt: skip
    frame["geometry"] = [json.loads(g) if isinstance(g, str) else None for g in frame["geometry"]]
    return frame


def mark_versions_frame(conn: sqlite_utils.Database, case_id: str) -> pd.DataFrame:
    """Every version of a case's marks, newest first, with how many marks each holds."""
    return pd.read_sql_query(
        "SELECT v.version_id, v.author, v.version, v.created_at, v.origin, v.origin_detail,"
        " COUNT(m.mark_id) AS marks FROM mark_versions v"
        " LEFT JOIN marks m ON m.version_id = v.version_id WHERE v.case_id = ?"
        " GROUP BY v.version_id ORDER BY v.created_at DESC, v.version_id DESC",
        conn.conn,
        params=(case_id,),
    )


def set_mark_choice(conn: sqlite_utils.Database, cohort: str, author: str | None) -> None:
    """Whose marks ingestion uses in ``cohort`` (None: forget the choice)."""
    with write_transaction(conn) as raw:
        raw.execute("DELETE FROM mark_choices WHERE cohort = ?", (cohort,))
        if author:
            raw.execute(
                "INSERT INTO mark_choices (cohort, author, chosen_at) VALUES (?, ?, ?)",
                (cohort, str(author), now_iso()),
            )


def mark_choice(conn: sqlite_utils.Database, cohort: str) -> str | None:
    row = conn.conn.execute(
        "SELECT author FROM mark_choices WHERE cohort = ?", (cohort,)
    ).fetchone()
    return None if row is None else str(row[0])


def record_ingestion_marks(
    conn: sqlite_utils.Database, ingestion_id: int, used: list[tuple[str, int]]
) -> None:
    """Which mark version each image's crop was cut from (``(image_id, version_id)`` pairs)."""
    with write_transaction(conn) as raw:
        raw.executemany(
            "INSERT OR REPLACE INTO ingestion_marks (ingestion_id, image_id, version_id)"
            " VALUES (?, ?, ?)",
            [(int(ingestion_id), str(i), int(v)) for i, v in used],
        )


def ingestion_marks_frame(conn: sqlite_utils.Database, ingestion_id: int) -> pd.DataFrame:
    """The mark versions an ingestion cut its crops from: ``image_id, case_id, author, version,
    version_id, created_at, origin``."""
    return pd.read_sql_query(
        "SELECT i.image_id, v.case_id, v.author, v.version, v.version_id, v.created_at, v.origin"
        " FROM ingestion_marks i JOIN mark_versions v ON v.version_id = i.version_id"
        " WHERE i.ingestion_id = ? ORDER BY i.image_id",
        conn.conn,
        params=(int(ingestion_id),),
    )


def run_mark_versions(conn: sqlite_utils.Database, run_id: str) -> pd.DataFrame:
    """The mark versions behind a run's crops: those of the latest ingestion with its data hash
    (the hash covers the versions, so any ingestion with it cut the same crops)."""
    row = conn.conn.execute(
        "SELECT i.ingestion_id FROM runs r JOIN ingestions i ON i.data_hash = r.data_hash"
        " WHERE r.run_id = ? ORDER BY i.ingestion_id DESC LIMIT 1",
        (str(run_id),),
    ).fetchone()
    if row is None:
        return ingestion_marks_frame(conn, -1)
    return ingestion_marks_frame(conn, int(row[0]))
