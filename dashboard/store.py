"""Short-lived database connections for pages: one per operation, never shared across sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

import db

# What the library raises on purpose or the file system / SQLite raise on a bad database path
LIBRARY_ERRORS = (ValueError, OSError, sqlite3.Error, db.CervixScopeDBError)


@contextmanager
def connection() -> Iterator:
    """Open the configured database (``CERVIXSCOPE_DB``), migrate it, and close it afterwards."""
    conn = db.connect()
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def errors_shown() -> Iterator[None]:
    """Run library calls; a library error becomes one ``st.error`` line and stops the page."""
    try:
        yield
    except LIBRARY_ERRORS as exc:
        st.error(str(exc))
        st.stop()
