"""Short-lived database connections for pages: one per operation, never shared across sessions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

import db

# What the library raises on purpose or the file system / SQLite raise on a bad database path
# (PermissionError, hence a wrong secret or a throttled sign-in, is an OSError); OverflowError is
# what sqlite3 raises for an integer too large for a column, e.g. from a hostile form value.
LIBRARY_ERRORS = (ValueError, OSError, OverflowError, sqlite3.Error, db.CervixScopeDBError)


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


def refuse_global_cache_clear() -> None:
    """Stop a browser from clearing every session's cache.

    Streamlit answers a ``clear_cache`` message from any connected browser (its menu item or the
    C key in developer mode, or a hand-made websocket message) by clearing ``st.cache_data`` and
    ``st.cache_resource`` for all sessions: one anonymous client could make every reader's next
    page recompute from scratch, as often as it likes. No configuration option turns that off,
    so the handler is replaced here, once per process: it still clears the asking session's own
    state, and never the shared caches. Nothing needs a manual clear: our caches are keyed on
    database versions and file times, so they never serve stale data.
    """
    from streamlit.runtime.app_session import AppSession

    if getattr(AppSession._handle_clear_cache_request, "cervixscope_guard", False):
        return

    def _clear_own_session_only(self) -> None:
        self._session_state.clear()

    _clear_own_session_only.cervixscope_guard = True
    _clear_own_session_only.streamlit_original = AppSession._handle_clear_cache_request
    AppSession._handle_clear_cache_request = _clear_own_session_only
