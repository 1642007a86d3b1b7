"""Short-lived database connections for pages: one per operation, never shared across sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import db


@contextmanager
def connection() -> Iterator:
    """Open the configured database (``CERVIXSCOPE_DB``), migrate it, and close it afterwards."""
    conn = db.connect()
    try:
        yield conn
    finally:
        conn.close()
