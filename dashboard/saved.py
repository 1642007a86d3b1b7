"""Slow results kept twice: in this process (``st.cache_resource``: a rerun copies nothing) and in
the database (``db.save_result``: a restarted server, another process or another researcher's
session reads them back instead of recomputing).

Keys name the inputs' content (a rater frame's digest, a study's reads version) and the code that
computed them (``saved_values.code_digest``), so a saved result is never stale: a new read changes
only the keys of what it affects. Values come back shared: callers must not modify them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from typing import Any

import streamlit as st

import db
from core.project import saved_values
from dashboard.store import connection

log = logging.getLogger(__name__)


def remembered(scope: str, key: str, compute: Callable[[], Any]) -> Any:
    """``compute()``, or the value saved for ``(scope, key)`` by an earlier call anywhere.

    ``scope`` groups keys (e.g. ``study:3``); ``key`` is ``"<what>|<inputs>"``, whose inputs part
    must change whenever the inputs do. The database keeps the newest value of each ``what`` in a
    scope (older inputs are not asked for again). A value that cannot be encoded is returned
    unsaved.
    """
    return _in_process(scope, key, compute)


@st.cache_resource(max_entries=1024, show_spinner=False)
def _in_process(scope: str, key: str, _compute: Callable[[], Any]) -> Any:
    # readable before the bar (what was computed), exact after it (from what, by which code)
    what, _, inputs = key.partition("|")
    digest = hashlib.sha1(f"{saved_values.code_digest()}|{inputs}".encode()).hexdigest()
    full_key = f"{what}|{digest}"
    with connection() as conn:
        payload = db.saved_result(conn, scope, full_key)
    if payload is not None:
        try:
            return saved_values.decode(payload)
        except (ValueError, TypeError) as exc:  # a damaged row: recompute and overwrite it
            log.warning("saved result %s/%s unreadable (%s): recomputing", scope, key, exc)
    value = _compute()
    try:
        payload = saved_values.encode(value)
    except TypeError:
        return value
    with connection() as conn:
        db.save_result(conn, scope, what, full_key, payload)
    return value


def clear() -> None:
    """Forget the values held in this process (the database keeps its own)."""
    _in_process.clear()
