"""Slow results kept twice: in this process (a rerun copies nothing) and in the database
(``db.save_result``: a restarted server, another process or another researcher's session reads
them back instead of recomputing).

Keys name the inputs' content (a rater frame's digest, a study's reads version) and the code that
computed them (``saved_values.code_digest``), so a saved result is never stale: a new read changes
only the keys of what it affects. Values come back shared: callers must not modify them.

A page that would rather show a table a few seconds old than wait for it (the reader analysis,
live) asks with ``stale_ok``: when only older inputs' value of that kind is at hand, it gets that
one at once while this process recomputes the new one in the background; with ``pending_ok``, a
placeholder when there is none yet. :func:`updating` says what is still being computed, so the
page can say so and refresh when it is done. A background computation that failed is computed by
the page itself (which shows its error) until it succeeds, never queued again meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import db
from core.project import saved_values

log = logging.getLogger(__name__)


class _Pending:
    def __repr__(self) -> str:
        return "PENDING"


PENDING = _Pending()  # what remembered(..., pending_ok=True) gives while a first value is computed
MAX_HELD = 1024  # values held in this process (least recently used dropped first)
MAX_DEFER_SECONDS = 2.0  # how long a background update waits for page runs to end, at most
_MISSING = object()

_held: OrderedDict[tuple, Any] = OrderedDict()  # (database, scope, key) -> value
_newest: dict[tuple, Any] = {}  # (database, scope, what) -> the newest value held of that kind
_failed: dict[tuple, BaseException] = {}  # background computations that raised
_lock = threading.Lock()
_computing: dict[tuple, threading.Lock] = {}  # one computation of a key at a time


def remembered(
    scope: str,
    key: str,
    compute: Callable[[], Any],
    *,
    stale_ok: bool = False,
    pending_ok: bool = False,
) -> Any:
    """``compute()``, or the value saved for ``(scope, key)`` by an earlier call anywhere.

    ``scope`` groups keys (e.g. ``study:3``); ``key`` is ``"<what>|<inputs>"``, whose inputs part
    must change whenever the inputs do. The database keeps the newest value of each ``what`` in a
    scope (older inputs are not asked for again). A value that cannot be encoded is returned
    unsaved. With ``stale_ok``, the newest value of the same ``what`` from older inputs (by the
    same code) is returned instead of waiting, and ``compute`` runs in the background; with
    ``pending_ok`` too, :data:`PENDING` is returned when there is none (the page shows a
    placeholder). A background computation that failed is computed here instead, so that the
    page shows its error, until one succeeds.
    """
    where = (_database(), scope, key)
    value = _held_value(where)
    if value is not _MISSING:
        return value
    if stale_ok:
        with _lock:
            failed = where in _failed
        older = _MISSING if failed else _older_value(where)
        if older is _MISSING and pending_ok and not failed:
            older = PENDING
        if older is not _MISSING:
            _updates.submit(where, compute)
            return older
    return _computed(where, compute)


def updating(scope: str) -> int:
    """How many values of ``scope`` (in this database) are being computed in the background."""
    return len(updating_keys(scope))


def updating_keys(scope: str) -> frozenset[str]:
    """The keys of ``scope`` (in this database) being computed in the background: a page that
    waits for some of them can tell when one is done, whatever else is queued meanwhile."""
    return _updates.pending((_database(), scope))


def later(key: str, job: Callable[[], Any]) -> None:
    """Run ``job()`` in the background, after the page runs in progress, once per ``key`` at a
    time: for what a page will soon want (reads to patch new ones into), never for what it shows
    (nothing is kept; an error is logged)."""
    _updates.submit((_database(), "later", key), job, keep=False)


@contextmanager
def rendering() -> Iterator[None]:
    """Around a page run: background updates wait until no page run is left (at most
    ``MAX_DEFER_SECONDS``), so that the page the user waits for gets the CPU first (the update
    would share the GIL and, on a small server, the cores with it)."""
    _updates.hold()
    try:
        yield
    finally:
        _updates.release()


def wait_until_updated(timeout: float = 60.0) -> bool:
    """Block until no background recomputation is left (True), or ``timeout`` seconds pass."""
    return _updates.wait(timeout)


def clear() -> None:
    """Forget the values held in this process (the database keeps its own)."""
    with _lock:
        _held.clear()
        _newest.clear()
        _failed.clear()


def _database() -> str:
    return str(db.resolve_db_path())


@contextmanager
def _connection(database: str) -> Iterator:
    """The database a value belongs to (a background update may outlive a test's settings)."""
    conn = db.connect(database)
    try:
        yield conn
    finally:
        conn.close()


def _full_key(key: str) -> str:
    """``what|code|digest``: readable before the first bar (what was computed), the code that
    computed it, then a digest of both and the inputs (exact)."""
    what, _, inputs = key.partition("|")
    code = saved_values.code_digest()
    digest = hashlib.sha1(f"{code}|{inputs}".encode()).hexdigest()
    return f"{what}|{code[:16]}|{digest}"


def _held_value(where: tuple) -> Any:
    """The value of ``where`` held in this process or saved in the database, else _MISSING."""
    with _lock:
        if where in _held:
            _held.move_to_end(where)
            return _held[where]
    database, scope, key = where
    with _connection(database) as conn:
        payload = db.saved_result(conn, scope, _full_key(key))
    value = _decoded(payload, where)
    if value is not _MISSING:
        _hold(where, value)
    return value


def _older_value(where: tuple) -> Any:
    """The newest value of the same kind as ``where`` from other inputs, else _MISSING."""
    database, scope, key = where
    what = key.partition("|")[0]
    with _lock:
        value = _newest.get((database, scope, what), _MISSING)
    if value is not _MISSING:
        return value
    with _connection(database) as conn:
        row = db.newest_result(conn, scope, what)
    code = saved_values.code_digest()[:16]
    if row is None or row[0].split("|")[1:2] != [code]:  # another version's value: not shown
        return _MISSING
    return _decoded(row[1], where)


def _decoded(payload: bytes | None, where: tuple) -> Any:
    if payload is None:
        return _MISSING
    try:
        return saved_values.decode(payload)
    except (ValueError, TypeError) as exc:  # a damaged row: recompute and overwrite it
        log.warning("saved result %s/%s unreadable (%s): recomputing", where[1], where[2], exc)
        return _MISSING


def _computed(where: tuple, compute: Callable[[], Any]) -> Any:
    """``compute()`` held and saved; computed once however many sessions ask at the same time."""
    with _lock:
        guard = _computing.setdefault(where, threading.Lock())
    with guard:
        value = _held_value(where)  # another session may have computed it meanwhile
        if value is _MISSING:
            value = compute()
            _hold(where, value)
            _save(where, value)
    with _lock:
        _computing.pop(where, None)
        _failed.pop(where, None)
    return value


def _hold(where: tuple, value: Any) -> None:
    database, scope, key = where
    with _lock:
        _held[where] = value
        _held.move_to_end(where)
        _newest[(database, scope, key.partition("|")[0])] = value
        while len(_held) > MAX_HELD:
            _held.popitem(last=False)


def _save(where: tuple, value: Any) -> None:
    database, scope, key = where
    try:
        payload = saved_values.encode(value)
    except TypeError:
        return
    with _connection(database) as conn:
        db.save_result(conn, scope, key.partition("|")[0], _full_key(key), payload)


class _Updates:
    """One background thread recomputing, in order, the values that pages were shown older
    values of; each key once however often it is asked for."""

    def __init__(self) -> None:
        self._jobs: queue.Queue = queue.Queue()
        self._pending: set[tuple] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._thread: threading.Thread | None = None
        self._rendering = 0  # page runs in progress
        self._rendered = threading.Condition(self._lock)

    def submit(self, where: tuple, compute: Callable[[], Any], *, keep: bool = True) -> None:
        with self._lock:
            if where in self._pending:
                return
            self._pending.add(where)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cervixscope-saved-updates", daemon=True
                )
                self._thread.start()
        self._jobs.put((where, compute, keep))

    def pending(self, database_scope: tuple) -> frozenset[str]:
        with self._lock:
            return frozenset(where[2] for where in self._pending if where[:2] == database_scope)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def hold(self) -> None:
        with self._lock:
            self._rendering += 1

    def release(self) -> None:
        with self._lock:
            self._rendering -= 1
            self._rendered.notify_all()

    def _after_page_runs(self) -> None:
        deadline = time.monotonic() + MAX_DEFER_SECONDS
        with self._rendered:
            while self._rendering > 0 and (left := deadline - time.monotonic()) > 0:
                self._rendered.wait(left)

    def _run(self) -> None:
        while True:
            where, compute, keep = self._jobs.get()
            self._after_page_runs()
            try:
                _computed(where, compute) if keep else compute()
            except Exception as exc:  # shown by the page, which computes it itself next time
                log.warning("background update of %s/%s failed: %s", where[1], where[2], exc)
                if keep:
                    with _lock:
                        _failed[where] = exc
            finally:
                with self._idle:
                    self._pending.discard(where)
                    self._idle.notify_all()


_updates = _Updates()
