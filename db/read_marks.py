"""Where a reader saw the lesion: the marks of a read in a localisation study.

A mark is a point (a click) or a box (a drag) on one slice of the case, in whole image pixels,
with the slice's image (when it is one the study knows), SOP Instance UID and pixel spacing kept
so that it can be scored and exported later. Marks belong to their read: saving the read again
replaces them, inside the read's transaction, and the read's audit row carries them.

:func:`read_marks_frame` joins the reads and is for researcher pages only; a reader's page gets
its own marks back through :func:`own_marks`.
"""

from __future__ import annotations

import pandas as pd
import sqlite_utils

MAX_MARKS = 20  # per read: more is not a reading, and bounds what a hostile client can store
MARK_FIELDS = (
    "slice", "image_id", "sop_instance_uid", "kind", "x0", "y0", "x1", "y1",
    "row_spacing_mm", "col_spacing_mm",
)  # fmt: skip


def stored_marks(raw, read_id: int) -> list[dict]:
    """The marks of one read in order, as dicts of :data:`MARK_FIELDS`."""
    cursor = raw.execute(
        "SELECT slice, image_id, sop_instance_uid, kind, x0, y0, x1, y1, row_spacing_mm,"
        " col_spacing_mm FROM read_marks WHERE read_id = ? ORDER BY mark_index",
        (int(read_id),),
    )
    return [dict(zip(MARK_FIELDS, row, strict=True)) for row in cursor.fetchall()]


def replace_marks(raw, read_id: int, marks: list[dict]) -> None:
    """Replace a read's marks inside the caller's transaction (checked by the caller)."""
    if len(marks) > MAX_MARKS:
        raise ValueError(f"a read holds at most {MAX_MARKS} marks, got {len(marks)}")
    raw.execute("DELETE FROM read_marks WHERE read_id = ?", (int(read_id),))
    raw.executemany(
        "INSERT INTO read_marks (read_id, mark_index, slice, image_id, sop_instance_uid, kind,"
        " x0, y0, x1, y1, row_spacing_mm, col_spacing_mm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(int(read_id), i, *(m.get(f) for f in MARK_FIELDS)) for i, m in enumerate(marks)],
    )


def own_marks(
    conn: sqlite_utils.Database, study_id: int, reader_id: int, arm: str, case_id: str
) -> list[dict]:
    """A reader's own marks on one case in one arm (slice, kind, corners): safe for their page."""
    rows = conn.conn.execute(
        "SELECT m.slice, m.kind, m.x0, m.y0, m.x1, m.y1 FROM read_marks m"
        " JOIN reads r ON r.read_id = m.read_id"
        " WHERE r.study_id = ? AND r.reader_id = ? AND r.arm = ? AND r.case_id = ?"
        " ORDER BY m.mark_index",
        (int(study_id), int(reader_id), arm, str(case_id)),
    ).fetchall()
    keys = ("slice", "kind", "x0", "y0", "x1", "y1")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def read_marks_frame(conn: sqlite_utils.Database, study_id: int) -> pd.DataFrame:
    """Every mark of a study's reads with reader, case and arm (researcher pages only)."""
    return pd.read_sql_query(
        "SELECT r.read_id, r.reader_id, d.display_name AS reader, r.case_id, r.arm, m.mark_index,"
        " m.slice, m.image_id, m.sop_instance_uid, m.kind, m.x0, m.y0, m.x1, m.y1,"
        " m.row_spacing_mm, m.col_spacing_mm"
        " FROM read_marks m JOIN reads r ON r.read_id = m.read_id"
        " JOIN readers d ON d.reader_id = r.reader_id"
        " WHERE r.study_id = ? ORDER BY r.read_id, m.mark_index",
        conn.conn,
        params=(int(study_id),),
    )


def replace_model_marks(conn: sqlite_utils.Database, study_id: int, run_id: str, marks) -> int:
    """Store the model's marks on a study's cases (dicts: case_id, class, image_id, x, y,
    row_spacing_mm, col_spacing_mm), replacing earlier ones of the same run; return the count."""
    from db.transactions import write_transaction

    rows = [
        (int(study_id), str(run_id), str(m["case_id"]), str(m["class"]), str(m["image_id"]),
         int(m["x"]), int(m["y"]), m.get("row_spacing_mm"), m.get("col_spacing_mm"))
        for m in marks
    ]  # fmt: skip
    with write_transaction(conn) as raw:
        raw.execute(
            "DELETE FROM model_marks WHERE study_id = ? AND run_id = ?",
            (int(study_id), str(run_id)),
        )
        raw.executemany(
            "INSERT INTO model_marks (study_id, run_id, case_id, class, image_id, x, y,"
            " row_spacing_mm, col_spacing_mm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return len(rows)


def model_marks_frame(conn: sqlite_utils.Database, study_id: int, run_id: str) -> pd.DataFrame:
    """The model's marks on a study's cases (researcher pages only)."""
    return pd.read_sql_query(
        "SELECT case_id, class, image_id, x, y, row_spacing_mm, col_spacing_mm FROM model_marks"
        " WHERE study_id = ? AND run_id = ? ORDER BY case_id, class",
        conn.conn,
        params=(int(study_id), str(run_id)),
    )
