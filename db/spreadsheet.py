"""Spreadsheet-safe text cells: CSV exports that open as text, and imports that undo it exactly.

A cell starting with ``= + - @``, a tab or a carriage return is a formula to Excel, LibreOffice
and Google Sheets (``=HYPERLINK(...)``, ``+cmd|' /C calc'!A0``). OWASP's rule: prefix such a cell
with a single quote. A cell that already starts with quotes before such a character gets one more,
so that `unescape_cell` removes exactly what `escape_cell` added and every value round-trips.
Only text is escaped: numbers (``-0.5``) stay numbers.
"""

from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _needs_quote(text: str) -> bool:
    return text.lstrip("'").startswith(FORMULA_STARTS)


def escape_cell(text: str) -> str:
    """``text`` as a spreadsheet shows it as text (a quote before a formula start)."""
    return "'" + text if _needs_quote(text) else text


def unescape_cell(text: str) -> str:
    """Inverse of :func:`escape_cell`."""
    return text[1:] if text.startswith("'") and _needs_quote(text[1:]) else text


def escape_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells are escaped (numbers, NaN and None untouched)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(lambda v: escape_cell(v) if isinstance(v, str) else v)
    return out
