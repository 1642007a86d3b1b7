"""Cases (patients), their images, and the ingestions that recorded them."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import sqlite_utils

from db.clock import now_iso
from db.connection import write_transaction
from db.display_ids import random_code
from db.errors import CaseNotFound, LabelChangeRefused

CLASSES = ("SCC", "AC", "ASC")  # same order as core.data.labels.CLASSES; db/ does not import core/

CASE_FIELDS = (
    "case_id", "patient_id", "label", "synthetic", "series_description", "orientation",
    "ingestion_id", "cohort", "site",
)  # fmt: skip
DEFAULT_COHORT = "internal"
KEY_SEPARATOR = "/"  # a case key is "<cohort>/<patient_id>"; a cohort name never holds it
IMAGE_FIELDS = (
    "image_id", "case_id", "source_path", "frame", "roi_x0", "roi_y0", "roi_x1", "roi_y1",
    "crop_cache", "crop_index", "rows", "cols",
)  # fmt: skip
# Written out in full so no SQL is assembled at run time; the columns are IMAGE_FIELDS, in order.
_UPSERT_IMAGE_SQL = (
    "INSERT INTO images (image_id, case_id, source_path, frame, roi_x0, roi_y0, roi_x1, roi_y1,"
    " crop_cache, crop_index, rows, cols) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT(image_id) DO UPDATE SET case_id = excluded.case_id,"
    " source_path = excluded.source_path, frame = excluded.frame, roi_x0 = excluded.roi_x0,"
    " roi_y0 = excluded.roi_y0, roi_x1 = excluded.roi_x1, roi_y1 = excluded.roi_y1,"
    " crop_cache = excluded.crop_cache, crop_index = excluded.crop_index, rows = excluded.rows,"
    " cols = excluded.cols"
)


def check_cohort(cohort: Any) -> str:
    """The cohort name, stripped: 1 to 64 printable characters without ``/``.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.
    """
    name = str(cohort if cohort is not None else "").strip()
    if not name or len(name) > 64 or not name.isprintable() or KEY_SEPARATOR in name:
        raise ValueError(
            f"cohort name {str(cohort)[:80]!r} must be 1 to 64 printable characters without '/'"
        )
    return name


def case_key(cohort: str, patient_id: str) -> str:
    """The one key of a case: ``"<cohort>/<patient_id>"``.

    A patient is identified by its cohort and its patient ID: two hospitals may both number their
    patients from P0001, and those stay two cases.
    """
    patient = str(patient_id)
    if not patient:
        raise ValueError("a case needs a non-empty patient ID")
    return f"{check_cohort(cohort)}{KEY_SEPARATOR}{patient}"


def split_case_key(case_id: str) -> tuple[str, str]:
    """``(cohort, patient_id)`` of a case key made by :func:`case_key`.

    Raises
    ------
    ValueError
        If ``case_id`` has no cohort part.
    """
    cohort, sep, patient = str(case_id).partition(KEY_SEPARATOR)
    if not sep or not cohort or not patient:
        raise ValueError(
            f"case {str(case_id)[:80]!r} is not a case key '<cohort>/<patient_id>': give "
            "patient_id and cohort instead"
        )
    return cohort, patient


def normalise_label(value: Any, *, where: str = "label") -> str | None:
    """Return the class name for a label given as name (any case) or class index; None stays None."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        index = int(value)
        if 0 <= index < len(CLASSES):
            return CLASSES[index]
        raise ValueError(f"{where} {value!r} is not a class index 0..{len(CLASSES) - 1}")
    name = str(value).strip().upper()
    if name not in CLASSES:
        raise ValueError(f"{where} {value!r} is not one of {', '.join(CLASSES)}")
    return name


def _as_dicts(rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> list[dict[str, Any]]:
    if isinstance(rows, pd.DataFrame):
        return rows.to_dict("records")
    return [dict(row) for row in rows]


def _check_keys(row: dict, allowed: tuple[str, ...], required: tuple[str, ...], what: str) -> None:
    unknown = sorted(set(row) - set(allowed))
    if unknown:
        raise ValueError(
            f"{what} {row.get(required[0] if required else 'case_id')!r}: unknown field(s) {', '.join(unknown)}; "
            f"allowed: {', '.join(allowed)}"
        )
    missing = [key for key in required if row.get(key) in (None, "")]
    if missing:
        raise ValueError(f"{what} {row!r}: missing required field(s) {', '.join(missing)}")


def _plain(value: Any) -> Any:
    # numpy scalars -> Python; sqlite3 cannot bind numpy.int64
    return value.item() if hasattr(value, "item") else value


def record_ingestion(
    conn: sqlite_utils.Database,
    *,
    data_dir: Any,
    manifest: Any,
    crop_cache: Any,
    data_hash: str | None,
    crop_size: int | None,
    issues: Iterable[Any] = (),
    margin: float | None = None,
) -> int:
    """Record one ingestion and its issues; return its ``ingestion_id``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    data_dir, manifest, crop_cache : path-like or str
        Where the data, the manifest and the crop cache are.
    data_hash : str
        ``CropSet.data_hash()`` of what was ingested.
    crop_size : int
        Crop edge in pixels.
    margin : float, optional
        How far each crop grew around its lesion box (fraction of the box side).
    issues : iterable
        Objects with ``row, path, problem`` attributes (``core.data.ingest.IngestIssue``) or dicts.

    Returns
    -------
    int
        The new ingestion's ID.
    """
    issue_rows = []
    for issue in issues:
        get = (
            issue.get if isinstance(issue, Mapping) else lambda key, i=issue: getattr(i, key, None)
        )
        problem = get("problem")
        if not problem:
            raise ValueError(f"ingestion issue {issue!r} has no problem text")
        row = get("row")
        issue_rows.append(
            (None if row is None else int(row), None if get("path") is None else str(get("path")),
             str(problem))
        )  # fmt: skip
    with write_transaction(conn) as raw:
        cursor = raw.execute(
            "INSERT INTO ingestions (created_at, data_dir, manifest, crop_cache, data_hash,"
            " crop_size, n_issues, margin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                now_iso(),
                None if data_dir is None else str(data_dir),
                None if manifest is None else str(manifest),
                None if crop_cache is None else str(crop_cache),
                data_hash,
                None if crop_size is None else int(crop_size),
                len(issue_rows),
                None if margin is None else float(margin),
            ),
        )
        ingestion_id = int(cursor.lastrowid)
        raw.executemany(
            "INSERT INTO ingestion_issues (ingestion_id, row, path, problem) VALUES (?, ?, ?, ?)",
            [(ingestion_id, *issue) for issue in issue_rows],
        )
    return ingestion_id


def _new_display_id(raw) -> str:
    while True:  # 309 M choices: a collision is rare, and then we simply draw again
        candidate = f"C-{random_code()}"
        if raw.execute("SELECT 1 FROM cases WHERE display_id = ?", (candidate,)).fetchone() is None:
            return candidate


def _case_identity(row: dict) -> tuple[str, str, str]:
    """``(case_id, cohort, patient_id)`` of a row given by patient ID (and cohort) or by key."""
    if row.get("patient_id") not in (None, ""):
        cohort = check_cohort(row.get("cohort") or DEFAULT_COHORT)
        key = case_key(cohort, str(row["patient_id"]))
        if row.get("case_id") not in (None, "", key):
            raise ValueError(
                f"case {row['case_id']!r} does not match cohort {cohort!r} and patient "
                f"{row['patient_id']!r}: its key would be {key!r}"
            )
        return key, cohort, str(row["patient_id"])
    cohort, patient = split_case_key(row["case_id"])
    if row.get("cohort") not in (None, "", cohort):
        raise ValueError(f"case {row['case_id']!r} is not in cohort {row['cohort']!r}")
    return case_key(cohort, patient), check_cohort(cohort), patient


def _case_records(rows, ingestion_id) -> list[dict]:
    records = []
    for row in _as_dicts(rows):
        _check_keys(row, CASE_FIELDS, (), "case")
        if row.get("case_id") in (None, "") and row.get("patient_id") in (None, ""):
            raise ValueError(f"case {row!r}: give patient_id (and cohort) or case_id")
        key, cohort, patient = _case_identity(row)
        records.append(
            {
                "case_id": key,
                "patient_id": patient,
                "cohort": cohort,
                "label": normalise_label(row.get("label"), where=f"case {key}: label"),
                "synthetic": int(bool(_plain(row.get("synthetic") or 0))),
                "series_description": row.get("series_description"),
                "orientation": None if row.get("orientation") is None else str(row["orientation"]),
                "ingestion_id": _plain(row.get("ingestion_id") or ingestion_id),
                "site": None if row.get("site") in (None, "") else str(row["site"]),
            }
        )
    return records


def _runs_using(raw, case_id: str) -> list[str]:
    return [
        r for (r,) in raw.execute(
            "SELECT DISTINCT run_id FROM predictions WHERE case_id = ? ORDER BY run_id", (case_id,)
        )
    ]  # fmt: skip


def _label_changes(raw, records: list[dict]) -> list[dict]:
    changes = []
    for rec in records:
        row = raw.execute("SELECT label FROM cases WHERE case_id = ?", (rec["case_id"],)).fetchone()
        if row is not None and row[0] != rec["label"]:
            changes.append(
                {"case_id": rec["case_id"], "old": row[0], "new": rec["label"],
                 "runs": _runs_using(raw, rec["case_id"])}
            )  # fmt: skip
    return changes


def label_changes(
    conn: sqlite_utils.Database, rows: Iterable[Mapping[str, Any]] | pd.DataFrame
) -> list[dict]:
    """The stored cases whose label ``rows`` would change (see :func:`upsert_cases`).

    Returns
    -------
    list of dict
        ``case_id, old, new, runs`` per changed case (``runs``: those that predicted it).
    """
    return _label_changes(conn.conn, _case_records(rows, None))


def _audit_case_change(raw, rec: dict, field: str, old, now: str) -> None:
    raw.execute(
        "INSERT INTO case_audit (case_id, field, old, new, ingestion_id, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (rec["case_id"], field, old, rec[field], rec["ingestion_id"], now),
    )


def _write_case(raw, rec: dict, now: str) -> None:
    old = raw.execute(
        "SELECT label, site FROM cases WHERE case_id = ?", (rec["case_id"],)
    ).fetchone()
    if old is None:
        raw.execute(
            "INSERT INTO cases (case_id, patient_id, display_id, label, synthetic,"
            " series_description, orientation, ingestion_id, cohort, site, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (rec["case_id"], rec["patient_id"], _new_display_id(raw), rec["label"],
             rec["synthetic"], rec["series_description"], rec["orientation"],
             rec["ingestion_id"], rec["cohort"], rec["site"], now, now),
        )  # fmt: skip
        return
    for field, before in zip(("label", "site"), old, strict=True):
        if before != rec[field]:
            _audit_case_change(raw, rec, field, before, now)
    raw.execute(
        "UPDATE cases SET label = ?, synthetic = ?, series_description = ?, orientation = ?,"
        " ingestion_id = COALESCE(?, ingestion_id), site = ?, updated_at = ? WHERE case_id = ?",
        (rec["label"], rec["synthetic"], rec["series_description"], rec["orientation"],
         rec["ingestion_id"], rec["site"], now, rec["case_id"]),
    )  # fmt: skip


def upsert_cases(
    conn: sqlite_utils.Database,
    rows: Iterable[Mapping[str, Any]] | pd.DataFrame,
    *,
    ingestion_id: int | None = None,
    allow_label_change: bool = False,
) -> int:
    """Insert or update cases in one transaction; return how many rows were written.

    A case is identified by its cohort and patient ID; its key is ``case_key(cohort,
    patient_id)``, so cohorts that reuse patient IDs never touch each other's cases. A new case
    gets a random ``display_id`` (``C-`` and 6 characters of ``db.display_ids.ALPHABET``, which
    cannot spell a class name) that says nothing about its label; an existing case keeps it.
    Re-ingestion may update a case's images, series, orientation and site (a site change is
    audited); it may change a stored label only with ``allow_label_change``, and that change is
    audited in ``case_audit``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    rows : iterable of dict or DataFrame
        ``patient_id`` and ``cohort`` (default ``internal``), or a ``case_id`` key; ``label``
        (class name or index), ``synthetic``, ``series_description``, ``orientation``,
        ``ingestion_id`` and ``site`` (optional).
    ingestion_id : int, optional
        Default ``ingestion_id`` for rows without one.
    allow_label_change : bool, default False
        Change the label of stored cases whose label differs (else refuse, writing nothing).

    Raises
    ------
    LabelChangeRefused
        If a stored case's label would change and ``allow_label_change`` is false; it names each
        case, its old and new label and the runs that used it. Nothing is written.
    ValueError
        On an unknown field, a missing patient ID, a bad cohort name or an unknown label.
    """
    records = _case_records(rows, ingestion_id)
    now = now_iso()
    with write_transaction(conn) as raw:
        changes = _label_changes(raw, records)
        if changes and not allow_label_change:
            raise LabelChangeRefused(changes)
        for rec in records:
            _write_case(raw, rec, now)
    return len(records)


def upsert_images(
    conn: sqlite_utils.Database, rows: Iterable[Mapping[str, Any]] | pd.DataFrame
) -> int:
    """Insert or update images (slices) in one transaction; return how many rows were written.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    rows : iterable of dict or DataFrame
        Fields ``image_id`` and ``case_id`` (required; the case must exist), ``source_path``,
        ``frame``, ``roi_x0``, ``roi_y0``, ``roi_x1``, ``roi_y1``, ``crop_cache``, ``crop_index``,
        ``rows``, ``cols``.

    Raises
    ------
    CaseNotFound
        If a row names a case that is not in the database (nothing is written).
    ValueError
        On an unknown or missing field.
    """
    records = []
    for row in _as_dicts(rows):
        _check_keys(row, IMAGE_FIELDS, ("image_id", "case_id"), "image")
        rec = {key: _plain(row.get(key)) for key in IMAGE_FIELDS}
        rec["image_id"], rec["case_id"] = str(rec["image_id"]), str(rec["case_id"])
        rec["frame"] = int(rec["frame"] or 0)
        for key in ("source_path", "crop_cache"):
            rec[key] = None if rec[key] is None else str(rec[key])
        records.append(rec)
    with write_transaction(conn) as raw:
        wanted = sorted({rec["case_id"] for rec in records})
        missing = [c for c in wanted if not raw.execute(
            "SELECT 1 FROM cases WHERE case_id = ?", (c,)).fetchone()]  # fmt: skip
        if missing:
            raise CaseNotFound(
                f"images refer to {len(missing)} unknown case(s): {', '.join(missing[:10])}; "
                "upsert the cases first"
            )
        raw.executemany(
            _UPSERT_IMAGE_SQL, [tuple(rec[key] for key in IMAGE_FIELDS) for rec in records]
        )
    return len(records)


def cases_frame(conn: sqlite_utils.Database) -> pd.DataFrame:
    """All cases with their image count.

    Returns
    -------
    pandas.DataFrame
        Columns ``case_id, cohort, patient_id, display_id, label, synthetic,
        series_description, orientation, ingestion_id, site, n_images, created_at,
        updated_at``, ordered by ``case_id``.
    """
    return pd.read_sql_query(
        "SELECT c.case_id, c.cohort, c.patient_id, c.display_id, c.label, c.synthetic,"
        " c.series_description, c.orientation, c.ingestion_id, c.site,"
        " COUNT(i.image_id) AS n_images, c.created_at, c.updated_at"
        " FROM cases c LEFT JOIN images i ON i.case_id = c.case_id"
        " GROUP BY c.case_id ORDER BY c.case_id",
        conn.conn,
    )


def images_frame(conn: sqlite_utils.Database, case_id: str | None = None) -> pd.DataFrame:
    """Images, all or of one case, with the case's label.

    Returns
    -------
    pandas.DataFrame
        Columns of ``images`` plus ``label``, ordered by ``case_id, image_id``.

    Raises
    ------
    CaseNotFound
        If ``case_id`` is given and unknown.
    """
    sql = (
        "SELECT i.*, c.label FROM images i JOIN cases c ON c.case_id = i.case_id"
        " WHERE (? IS NULL OR i.case_id = ?) ORDER BY i.case_id, i.image_id"
    )
    if (
        case_id is not None
        and not conn.conn.execute(
            "SELECT 1 FROM cases WHERE case_id = ?", (str(case_id),)
        ).fetchone()
    ):
        raise CaseNotFound(f"case {case_id!r} is not in the database")
    key = None if case_id is None else str(case_id)
    return pd.read_sql_query(sql, conn.conn, params=(key, key))


def latest_ingestion(conn: sqlite_utils.Database) -> dict | None:
    """The most recent ingestion as a dict (``ingestion_id, created_at, data_dir, ...``), or None."""
    cursor = conn.conn.execute("SELECT * FROM ingestions ORDER BY ingestion_id DESC LIMIT 1")
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def ingestion_issues_frame(conn: sqlite_utils.Database, ingestion_id: int) -> pd.DataFrame:
    """Issues of one ingestion: columns ``row, path, problem`` in the order they were found."""
    return pd.read_sql_query(
        "SELECT row, path, problem FROM ingestion_issues WHERE ingestion_id = ? ORDER BY issue_id",
        conn.conn,
        params=(int(ingestion_id),),
    )


def get_ingestion(conn: sqlite_utils.Database, ingestion_id: int) -> dict | None:
    """One ingestion as a dict (``ingestion_id, created_at, data_dir, manifest, ...``), or None."""
    cursor = conn.conn.execute(
        "SELECT * FROM ingestions WHERE ingestion_id = ?", (int(ingestion_id),)
    )
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def case_audit_frame(conn: sqlite_utils.Database) -> pd.DataFrame:
    """Every audited change of a stored case (label, site), oldest first.

    Returns
    -------
    pandas.DataFrame
        Columns ``audit_id, case_id, field, old, new, ingestion_id, at``.
    """
    return pd.read_sql_query(
        "SELECT audit_id, case_id, field, old, new, ingestion_id, at FROM case_audit"
        " ORDER BY audit_id",
        conn.conn,
    )
