"""Cross-validation runs: their record, provenance, lifecycle and warnings.

Their state and liveness are ``db.run_status``; their folds ``db.folds``; their out-of-fold
predictions ``db.predictions``.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
import sqlite_utils

from db.clock import now_iso, stamped_id
from db.errors import RunNotFound
from db.run_status import (
    ACTIVE_STATUSES,
    RUN_STATUSES,
    TERMINAL_STATUSES,
    RunCancelled,
    reap_stale_runs,
)
from db.transactions import write_transaction
from db.values import from_json, to_iso, to_json

# A run id names a folder under <home>/runs: letters, digits, dot, dash, underscore, no "..".
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_UPDATABLE = (
    "status", "progress", "message", "started_at", "ended_at", "timings", "heartbeat_at", "pid",
    "host",
)  # fmt: skip
# Provenance a worker fills in when it picks up a run queued by the dashboard.
_PROVENANCE = ("config", "data_hash", "device", "weights", "code_version", "packages")
_JSON_COLUMNS = ("config", "packages", "timings")  # stored as JSON text, decoded by get_run
# One fixed statement per updatable column: no SQL is ever built from caller input.
_UPDATE_SQL = {
    column: "UPDATE runs SET " + column + " = ? WHERE run_id = ?"  # noqa: S608 - fixed names
    for column in _UPDATABLE + _PROVENANCE
}


def new_run_id() -> str:
    """A run ID such as ``r20261125T193012-4f2a9c``: sortable by time, unique by the random tail."""
    return stamped_id("r")


def check_run_id(run_id: str) -> str:
    """``run_id`` if it is a plain name that can be a folder under ``runs/``, else ValueError.

    A run's files go to ``<home>/runs/<run_id>/``: an id such as ``../../x`` would write outside.
    """
    text = str(run_id)
    if not RUN_ID_PATTERN.fullmatch(text) or ".." in text:
        raise ValueError(
            f"run id {text[:100]!r} is not allowed: use 1-80 letters, digits, '.', '-' or '_', "
            "starting with a letter or digit, without '..'"
        )
    return text


def _require_run(raw, run_id: str) -> None:
    if raw.execute("SELECT 1 FROM runs WHERE run_id = ?", (str(run_id),)).fetchone() is None:
        raise RunNotFound(f"run {run_id!r} is not in the database")


def _run_ids(run_ids: str | Sequence[str] | None) -> list[str] | None:
    if run_ids is None:
        return None
    if isinstance(run_ids, str):
        return [run_ids]
    return [str(r) for r in run_ids]


def create_run(
    conn: sqlite_utils.Database,
    *,
    model: str,
    mode: str,
    config: Mapping[str, Any] | Any,
    seed: int | None,
    data_hash: str | None = None,
    device: str | None = None,
    weights: str | None = None,
    code_version: str | None = None,
    packages: Mapping[str, str] | None = None,
    comparison_id: str | None = None,
    run_id: str | None = None,
    message: str | None = None,
    repeat_group: str | None = None,
    repeat_index: int | None = None,
) -> str:
    """Register (queue) a run with status ``queued``; return its ``run_id``.

    A run's lifecycle: ``create_run`` -> (``record_provenance``, when a worker takes a run queued
    without it) -> ``start_run`` -> ``report_progress``... -> ``finish_run`` or ``fail_run``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    model, mode, seed : str, str, int
        Architecture (e.g. ``"resnet18"``), training mode (e.g. ``"features"``), random seed.
    config : dict or object with ``to_dict()``
        The full run configuration, stored as JSON.
    data_hash, device, weights, code_version, packages : optional
        Provenance: dataset hash, torch device, weights name, git commit, {package: version}.
        A run queued by the dashboard has none yet: its worker calls :func:`record_provenance`.
    comparison_id : str, optional
        Groups runs of one model comparison (same splits).
    run_id : str, optional
        Use this ID instead of a new one from :func:`new_run_id`.
    message : str, optional
        A first status line, e.g. ``"queued from the dashboard"``.
    repeat_group, repeat_index : str and int, optional
        The repeated cross-validation this run is repeat ``repeat_index`` (0, 1, ...) of.

    Raises
    ------
    ValueError
        If ``run_id`` is already taken or not a plain name (see :func:`check_run_id`), or
        ``model``/``mode`` is empty.
    """
    if not model or not mode:
        raise ValueError(f"model and mode must be non-empty, got model={model!r}, mode={mode!r}")
    run_id = check_run_id(run_id) if run_id else new_run_id()
    with write_transaction(conn) as raw:
        if raw.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone():
            raise ValueError(f"run {run_id!r} already exists; pass another run_id or none")
        raw.execute(
            "INSERT INTO runs (run_id, comparison_id, model, mode, config, seed, code_version,"
            " packages, data_hash, device, weights, status, progress, message, created_at,"
            " repeat_group, repeat_index)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?)",
            (run_id, comparison_id, str(model), str(mode), to_json(config),
             None if seed is None else int(seed), code_version, to_json(packages), data_hash,
             None if device is None else str(device), weights, message, now_iso(),
             repeat_group, None if repeat_index is None else int(repeat_index)),
        )  # fmt: skip
    return run_id


def get_run(conn: sqlite_utils.Database, run_id: str) -> dict:
    """One run as a dict, its JSON columns decoded once, here.

    Returns
    -------
    dict
        Every column of ``runs`` (a run whose process is gone is first marked failed, see
        :func:`reap_stale_runs`); ``config``, ``packages`` and ``timings`` are dicts (or None),
        ``warnings`` a list of str, oldest first. ``timings`` holds the seconds of each step and
        ``inference_seconds_per_case`` (the one timing key for the model's time per case).

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    """
    reap_stale_runs(conn)  # a run whose process is gone is shown failed, not running
    cursor = conn.conn.execute("SELECT * FROM runs WHERE run_id = ?", (str(run_id),))
    row = cursor.fetchone()
    if row is None:
        raise RunNotFound(f"run {run_id!r} is not in the database")
    run = dict(zip([d[0] for d in cursor.description], row, strict=True))
    for key in _JSON_COLUMNS:
        run[key] = from_json(run[key])
    run["warnings"] = [
        text
        for (text,) in conn.conn.execute(
            "SELECT text FROM run_warnings WHERE run_id = ? ORDER BY warning_id", (str(run_id),)
        )
    ]
    return run


def check_run_merge(
    conn: sqlite_utils.Database,
    run_id: str,
    *,
    config: Mapping[str, Any],
    data_hash: str,
    per_job: Iterable[str] = (),
) -> dict | None:
    """The run a job would add its folds to, after checking that they may merge.

    Parameters
    ----------
    run_id : str
    config : dict
        The job's configuration; every setting but those in ``per_job`` must equal the run's
        (a setting the run did not record is not compared).
    data_hash : str
        The job's data; it must be the run's (a run queued without data yet accepts any).
    per_job : iterable of str
        Settings that may differ between the jobs of one run (e.g. which folds they compute).

    Returns
    -------
    dict or None
        The run as :func:`get_run` returns it, or None if there is no run ``run_id`` yet.

    Raises
    ------
    ValueError
        If the settings or the data differ, naming them.
    """
    try:
        run = get_run(conn, run_id)
    except RunNotFound:
        return None
    old, skip = run["config"] or {}, set(per_job)
    diff = sorted(k for k, v in config.items() if k not in skip and old.get(k, v) != v)
    if diff:
        raise ValueError(
            f"run {run_id} was made with other settings ({', '.join(diff)}): "
            "merge only folds of the same configuration, or start a new run"
        )
    if run["data_hash"] not in (None, data_hash):
        raise ValueError(
            f"run {run_id} used data {run['data_hash']}, "
            f"this data is {data_hash}: merge folds only on the same data"
        )
    return run


def record_provenance(
    conn: sqlite_utils.Database,
    run_id: str,
    *,
    config: Mapping[str, Any] | Any,
    data_hash: str,
    device: str,
    weights: str,
    code_version: str,
    packages: Mapping[str, str],
) -> None:
    """Record what runs a queued run, when a worker takes it (see :func:`create_run`).

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    ValueError
        If the run is no longer queued.
    """
    update_run(
        conn, run_id, config=config, data_hash=data_hash, device=device, weights=weights,
        code_version=code_version, packages=packages,
    )  # fmt: skip


def start_run(
    conn: sqlite_utils.Database, run_id: str, *, message: str | None = "starting"
) -> None:
    """Mark a run ``running`` from now, owned by this process (pid and host, a first heartbeat).

    Raises
    ------
    RunCancelled
        If the run was cancelled meanwhile.
    """
    update_run(
        conn, run_id, status="running", message=message, heartbeat_at=now_iso(),
        pid=os.getpid(), host=socket.gethostname(),
    )  # fmt: skip


def report_progress(
    conn: sqlite_utils.Database, run_id: str, fraction: float, message: str | None
) -> None:
    """Set a running run's progress (a fraction in [0, 1]) and its status line; also a heartbeat.

    Raises
    ------
    RunCancelled
        If the run was cancelled: its process should stop.
    """
    update_run(conn, run_id, progress=fraction, message=message, heartbeat_at=now_iso())


def cancel_run(conn: sqlite_utils.Database, run_id: str, reason: str = "cancelled") -> dict:
    """Mark a queued or running run ``cancelled`` now; return it as it was before.

    From then on its process's progress and results are refused (:class:`RunCancelled`), so
    nothing it writes afterwards can make the run look done.

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    ValueError
        If the run is not queued or running (naming its status).
    """
    with write_transaction(conn) as raw:
        run = get_run(conn, run_id)
        if run["status"] not in ACTIVE_STATUSES:
            raise ValueError(
                f"run {run_id} is {run['status']}: only a queued or running run can be cancelled"
            )
        raw.execute(
            "UPDATE runs SET status = 'cancelled', message = ?, ended_at = ? WHERE run_id = ?",
            (str(reason), now_iso(), str(run_id)),
        )
    return run


def finish_run(
    conn: sqlite_utils.Database,
    run_id: str,
    *,
    status: str,
    progress: float | None = None,
    timings: Mapping[str, float] | None = None,
    message: str | None = None,
) -> None:
    """End a job of a run: ``done`` (every fold in) or ``partial`` (folds left for other jobs).

    Parameters
    ----------
    status : {"done", "partial"}
    progress : float, optional
        Fraction of the run's folds done (``done`` defaults to 1).
    timings : dict, optional
        Seconds per step, merged over the run's jobs by the caller.
    message : str, optional
        What is left to do, for a partial run.
    """
    if status not in ("done", "partial"):
        raise ValueError(f"finish_run: status {status!r} is not done or partial")
    fields: dict[str, Any] = {"status": status, "message": message}
    if progress is not None:
        fields["progress"] = progress
    if timings is not None:
        fields["timings"] = dict(timings)
    update_run(conn, run_id, **fields)


def fail_run(conn: sqlite_utils.Database, run_id: str, reason: str) -> None:
    """Mark a run ``failed`` now, with ``reason`` as its message (a cancelled run stays so)."""
    try:
        update_run(conn, run_id, status="failed", message=reason)
    except RunCancelled:
        pass


def fail_queued_run(conn: sqlite_utils.Database, run_id: str, reason: str) -> bool:
    """Mark a run ``failed`` if, and only if, it is still ``queued``; say whether it was.

    A run queued by the dashboard must not stay queued forever when its worker stops before
    starting it; a run that is unknown, running or finished is left as it is.
    """
    with write_transaction(conn) as raw:
        row = raw.execute("SELECT status FROM runs WHERE run_id = ?", (str(run_id),)).fetchone()
        if row is None or row[0] != "queued":
            return False
        fail_run(conn, run_id, reason)
    return True


def update_run(conn: sqlite_utils.Database, run_id: str, **fields: Any) -> None:
    """Update a run's ``status, progress, message, started_at, ended_at, timings``, or the
    provenance ``config, data_hash, device, weights, code_version, packages`` of a queued run.

    The lifecycle functions (:func:`start_run`, :func:`report_progress`, :func:`finish_run`,
    :func:`fail_run`, :func:`record_provenance`) are the usual way in. Moving to ``running`` sets
    ``started_at``, and to ``done``/``failed``/``partial`` sets ``ended_at`` (and ``progress=1``
    for ``done``), unless those fields are given.

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    ValueError
        On an unknown field, an unknown status or a progress outside [0, 1], or provenance for a
        run that is no longer queued.
    """
    values = _update_values(fields)
    with write_transaction(conn) as raw:
        _require_run(raw, run_id)
        _refuse_cancelled(raw, run_id)
        provenance = set(values) & set(_PROVENANCE)
        if provenance:
            _require_queued(raw, run_id, provenance)
        for key, value in values.items():
            raw.execute(_UPDATE_SQL[key], (value, str(run_id)))


def _update_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Column -> stored value of an update, validated (see :func:`update_run`)."""
    allowed = _UPDATABLE + _PROVENANCE
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(
            f"update_run: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}"
        )
    values = _status_values(fields)
    if "progress" in fields:
        progress = float(fields["progress"])
        if not 0.0 <= progress <= 1.0:
            raise ValueError(f"run progress {progress} is not in [0, 1]")
        values["progress"] = progress
    if "message" in fields:
        values["message"] = None if fields["message"] is None else str(fields["message"])
    for key in ("started_at", "ended_at"):
        if key in fields:
            values[key] = to_iso(fields[key], name=key)
    for key in _JSON_COLUMNS:
        if key in fields:
            value = fields[key]
            values[key] = to_json(value.to_dict() if hasattr(value, "to_dict") else value)
    for key in ("data_hash", "device", "weights", "code_version", "heartbeat_at", "host"):
        if key in fields:
            values[key] = None if fields[key] is None else str(fields[key])
    if "pid" in fields:
        values["pid"] = None if fields["pid"] is None else int(fields["pid"])
    return values


def _status_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """A new status and the times and progress it implies, unless given."""
    status = fields.get("status")
    if status is None:
        return {}
    if status not in RUN_STATUSES:
        raise ValueError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
    values: dict[str, Any] = {"status": status}
    if status == "running" and "started_at" not in fields:
        values["started_at"] = now_iso()
    if status in TERMINAL_STATUSES and "ended_at" not in fields:
        values["ended_at"] = now_iso()
    if status == "done" and "progress" not in fields:
        values["progress"] = 1.0
    return values


def _refuse_cancelled(raw, run_id: str) -> None:
    row = raw.execute(
        "SELECT message FROM runs WHERE run_id = ? AND status = 'cancelled'", (str(run_id),)
    ).fetchone()
    if row is not None:
        raise RunCancelled(f"run {run_id} was cancelled ({row[0] or 'no reason given'})")


def _require_queued(raw, run_id: str, provenance: set[str]) -> None:
    status = raw.execute("SELECT status FROM runs WHERE run_id = ?", (str(run_id),)).fetchone()[0]
    if status != "queued":
        raise ValueError(
            f"run {run_id}: {', '.join(sorted(provenance))} can only be set while the run "
            f"is queued, it is {status}"
        )


def add_run_warning(conn: sqlite_utils.Database, run_id: str, text: str) -> None:
    """Append a warning such as ``"ImageNet weights unavailable, random init"`` to a run.

    Raises
    ------
    RunNotFound
        If ``run_id`` is unknown.
    """
    if not str(text).strip():
        raise ValueError("a run warning needs non-empty text")
    with write_transaction(conn) as raw:
        _require_run(raw, run_id)
        raw.execute(
            "INSERT INTO run_warnings (run_id, at, text) VALUES (?, ?, ?)",
            (str(run_id), now_iso(), str(text)),
        )


def runs_frame(conn: sqlite_utils.Database) -> pd.DataFrame:
    """All runs, newest first, with counts of folds, predictions and warnings.

    Runs whose process is gone are first marked failed (:func:`reap_stale_runs`).

    Returns
    -------
    pandas.DataFrame
        Columns ``run_id, comparison_id, model, mode, status, progress, message, seed, device,
        weights, data_hash, code_version, created_at, started_at, ended_at, heartbeat_at, pid,
        host, repeat_group, repeat_index, n_folds,
        n_predictions, n_warnings``, then decoded as in :func:`get_run`: ``warnings`` (a list of
        str per run), ``config`` and ``timings`` (a dict or None per run).
    """
    reap_stale_runs(conn)
    frame = pd.read_sql_query(
        "SELECT r.run_id, r.comparison_id, r.model, r.mode, r.status, r.progress, r.message,"
        " r.seed, r.device, r.weights, r.data_hash, r.code_version, r.created_at, r.started_at,"
        " r.ended_at, r.heartbeat_at, r.pid, r.host, r.repeat_group, r.repeat_index,"
        " (SELECT COUNT(*) FROM folds f WHERE f.run_id = r.run_id) AS n_folds,"
        " (SELECT COUNT(*) FROM predictions p WHERE p.run_id = r.run_id) AS n_predictions,"
        " (SELECT COUNT(*) FROM run_warnings w WHERE w.run_id = r.run_id) AS n_warnings,"
        " (SELECT json_group_array(text) FROM"
        "   (SELECT text FROM run_warnings w WHERE w.run_id = r.run_id ORDER BY warning_id))"
        "   AS warnings,"
        " r.config, r.timings"
        " FROM runs r ORDER BY r.created_at DESC, r.run_id DESC",
        conn.conn,
    )
    for key in ("warnings", "config", "timings"):  # pandas reads a NULL as None or NaN
        decoded = [from_json(text) if isinstance(text, str) else None for text in frame[key]]
        frame[key] = pd.Series(decoded, index=frame.index, dtype=object)
    return frame
