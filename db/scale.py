"""A larger copy of a cohort, for measuring how pages grow (``cervixscope bench --scale``).

:func:`replicate_cases` adds ``factor - 1`` copies of every case: the same label, images (the same
files, the same boxes) and every run's out-of-fold predictions, under new patient IDs
(``<patient>~<k>``) and fresh display IDs. The copies are ordinary cases in every other way, so
every page and query treats them as a cohort ``factor`` times the size. Meant for a copy of a
database made for the benchmark, never for one holding real data: nothing marks a copy as one
except its patient ID.
"""

from __future__ import annotations

import sqlite_utils

from db.cases import _new_display_id
from db.clock import now_iso
from db.transactions import write_transaction


def _fresh_display_id(raw, drawn: set[str]) -> str:
    """A display ID neither stored nor drawn earlier in this batch (the batch is inserted at once,
    so the database alone cannot tell: 5,769 draws from 309 million collide about 5% of the
    time)."""
    while True:
        candidate = _new_display_id(raw)
        if candidate not in drawn:
            drawn.add(candidate)
            return candidate


def replicate_cases(conn: sqlite_utils.Database, factor: int) -> int:
    """Make the database's cohort ``factor`` times as large; return the number of cases now."""
    if int(factor) < 1:
        raise ValueError(f"factor must be a whole number >= 1, got {factor!r}")
    with write_transaction(conn) as raw:
        cases = raw.execute(
            "SELECT case_id, cohort, patient_id, label, synthetic, series_description,"
            " orientation, ingestion_id, site FROM cases ORDER BY case_id"
        ).fetchall()
        images = raw.execute(
            "SELECT image_id, case_id, source_path, frame, roi_x0, roi_y0, roi_x1, roi_y1,"
            " crop_cache, crop_index, rows, cols FROM images ORDER BY image_id"
        ).fetchall()
        predictions = raw.execute(
            "SELECT run_id, case_id, fold, p_SCC, p_AC, p_ASC FROM predictions"
        ).fetchall()
        image_predictions = raw.execute(
            "SELECT run_id, image_id, case_id, fold, p_SCC, p_AC, p_ASC FROM image_predictions"
        ).fetchall()
        now = now_iso()
        drawn: set[str] = set()
        for k in range(1, int(factor)):
            new_id = {c[0]: f"{c[1]}/{c[2]}~{k}" for c in cases}
            raw.executemany(
                "INSERT INTO cases (case_id, cohort, patient_id, display_id, label, synthetic,"
                " series_description, orientation, ingestion_id, site, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(new_id[c[0]], c[1], f"{c[2]}~{k}", _fresh_display_id(raw, drawn), *c[3:], now,
                  now) for c in cases],
            )  # fmt: skip
            raw.executemany(
                "INSERT INTO images (image_id, case_id, source_path, frame, roi_x0, roi_y0,"
                " roi_x1, roi_y1, crop_cache, crop_index, rows, cols)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(f"{i[0]}~{k}", new_id[i[1]], *i[2:]) for i in images],
            )
            raw.executemany(
                "INSERT INTO predictions (run_id, case_id, fold, p_SCC, p_AC, p_ASC)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [(p[0], new_id[p[1]], *p[2:]) for p in predictions],
            )
            raw.executemany(
                "INSERT INTO image_predictions (run_id, image_id, case_id, fold, p_SCC, p_AC,"
                " p_ASC) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(p[0], f"{p[1]}~{k}", new_id[p[2]], *p[3:]) for p in image_predictions],
            )
        return int(raw.execute("SELECT COUNT(*) FROM cases").fetchone()[0])
