"""Downloads of a reader study: its reads as CSV and the analysis tables in one CSV text."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

import db
from db.spreadsheet import escape_frame


def reads_csv(conn, study_id: int) -> bytes:
    """The study's reads as :func:`db.export_reads_csv` writes them (no truth in it)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.csv"
        db.export_reads_csv(conn, study_id, path)
        return path.read_bytes()


def tables_csv(tables: dict[str, pd.DataFrame]) -> str:
    """Several analysis tables in one CSV text, each under a ``# title`` line.

    Confusion tables (titles starting ``confusion``) keep their ``true <class>`` row labels;
    the others have no useful index.
    """
    parts = []
    for title, frame in tables.items():
        text = escape_frame(frame).to_csv(index=title.startswith("confusion"))
        parts.append(f"# {title}\n" + text)
    return "\n".join(parts)
