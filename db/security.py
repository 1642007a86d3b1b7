"""Sign-in protection and the append-only security audit.

Every sign-in attempt, lockout, unlock, sign-out, export, import and change to a reader or an
access code is one row of ``security_audit``. Triggers refuse UPDATE and DELETE on that table, and
this module offers no function that changes or removes a row: the audit can only grow. Each row
keeps the client the limits count apart from the connection's own address and the
``X-Forwarded-For`` value it carried (see ``core.project.proxies``).

The same rows drive the sign-in limits, so there is no second counter to drift from the audit.
The limits slow whoever guesses and never whoever has not failed: failures elsewhere do not block
a client on its first tries.

* **per client** (an address): after ``FREE_FAILURES`` failed sign-ins within ``CLIENT_WINDOW_S``
  and since that client's last success, each further attempt waits ``BASE_DELAY_S * 2**k`` seconds
  after the last failure (k = failures beyond the free ones), capped at ``MAX_DELAY_S``;
* **per credential** (the admin secret, or the reader ID an access code names): once a credential
  has more than ``CREDENTIAL_FREE_FAILURES`` failures within ``CLIENT_WINDOW_S`` from all clients,
  a client that has itself failed waits the same back-off counted on the credential's failures,
  so rotating addresses buys one guess per fresh address;
* **admin lockout, per client**: ``ADMIN_LOCKOUT_AFTER`` consecutive wrong admin secrets from one
  client lock that client's admin sign-in for ``ADMIN_LOCKOUT_S``;
* **unlock**: ``cervixscope unlock-admin``, which reads the secret on disk, audits an
  ``admin_unlocked`` event; failures and lockouts before it no longer count.

:func:`check_sign_in` answers with one indexed query and writes nothing, so a refused attempt
costs no write lock and no scrypt hash; the scrypt hashes of the attempts that are checked run one
at a time (``db.studies``), so a flood of guesses leaves the readers' submits a core.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlite_utils

from db import clock
from db.errors import CervixScopeDBError
from db.transactions import write_transaction

FREE_FAILURES = 3  # a mistyped code or two costs nothing
BASE_DELAY_S = 1.0
MAX_DELAY_S = 300.0  # 5 minutes: the back-off never locks a real person out for long
CLIENT_WINDOW_S = 60 * 60  # longer than MAX_DELAY_S: a patient guesser stays at the cap
CREDENTIAL_FREE_FAILURES = 10  # more than any person mistypes; a flood passes it at once
ADMIN_LOCKOUT_AFTER = 20  # consecutive wrong admin secrets from one client
ADMIN_LOCKOUT_S = 15 * 60
MAX_NAME_LENGTH = 120  # reader display names and study names
MAX_CLIENT_LENGTH = 200  # client, address and forwarded value alike
KINDS = ("admin", "reader", "annotator")
EVENTS = (
    "sign_in",  # ok
    "sign_in_failed",
    "admin_lockout",
    "admin_unlocked",  # by `cervixscope unlock-admin`, which holds the secret file
    "sign_out",
    "concurrent_session",  # a reader signed in while another session of theirs is open
    "read_submitted",  # recorded when the reader has more than one open session
    "reads_exported",
    "reads_imported",
    "reads_import_refused",
    "reader_added",
    "code_revoked",
    "code_reissued",
    "sessions_ended",  # a reader ended their other sessions
    "annotator_added",
    "annotator_code_revoked",
    "marks_imported",  # a DICOM SEG or NIfTI mask became a version of someone's marks
    "mark_choice",  # whose marks ingestion uses in a cohort
)
# control characters, line separators, zero-width and bidirectional overrides (a name must not
# reorder or hide the text around it)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")


class SignInThrottled(CervixScopeDBError, PermissionError):
    """A sign-in refused before checking the secret: too many failures, or admin lockout.

    Attributes
    ----------
    retry_at : datetime
        When the next attempt is allowed (UTC).
    reason : str
        ``"client"``, ``"credential"`` or ``"lockout"``.
    """

    def __init__(self, message: str, *, retry_at: datetime, reason: str) -> None:
        super().__init__(message)
        self.retry_at = retry_at
        self.reason = reason


@dataclass(frozen=True)
class _Counts:
    client_failures: int
    client_last_failure: str | None
    credential_failures: int
    credential_last_failure: str | None
    last_lockout: str | None  # this client's last admin lockout


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


def clean_name(value, *, what: str, max_length: int = MAX_NAME_LENGTH) -> str:
    """A display name as stored: stripped, one line, at most ``max_length`` characters.

    Parameters
    ----------
    value : str
        The name as typed.
    what : str
        What it names, for the message (``"reader display name"``).
    max_length : int
        The most characters allowed.

    Raises
    ------
    ValueError
        On an empty name, a control character (newline, tab, ...) or a name that is too long.
    """
    text = str(value if value is not None else "").strip()
    if not text:
        raise ValueError(f"a {what} cannot be empty: give a non-empty name")
    if _CONTROL.search(text):
        raise ValueError(f"a {what} must be one line of text without control characters")
    if len(text) > max_length:
        raise ValueError(f"a {what} is at most {max_length} characters; this one has {len(text)}")
    return text


def _clip(text: str | None, limit: int) -> str | None:
    return None if text is None else str(text)[:limit]


def record_event(
    conn: sqlite_utils.Database,
    event: str,
    *,
    ok: bool | None = None,
    role: str | None = None,
    client: str | None = None,
    reader_id: int | None = None,
    study_id: int | None = None,
    session: str | None = None,
    detail: str | None = None,
    address: str | None = None,
    forwarded: str | None = None,
    credential: str | None = None,
) -> int:
    """Append one row to the security audit; return its ``event_id``.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    event : str
        One of :data:`EVENTS`.
    ok : bool, optional
        Whether the action succeeded (sign-ins).
    role : str, optional
        ``"admin"`` or ``"reader"``: who acted, or which kind of sign-in was tried.
    client : str, optional
        Who the limits count: the connection's address, or behind a trusted proxy the address
        it forwarded (clipped to 200 characters, as are ``address`` and ``forwarded``).
    reader_id, study_id : int, optional
        The reader and study concerned.
    session : str, optional
        The session id (:func:`db.session_id`), never the token itself.
    detail : str, optional
        One line of context (clipped to 500 characters); never a secret.
    address, forwarded : str, optional
        The connection's own address and the ``X-Forwarded-For`` value it sent, as received.
    credential : str, optional
        The credential tried: ``"admin"`` or ``"reader:<id>"`` (never the secret itself).

    Raises
    ------
    ValueError
        On an unknown event.
    """
    row = {"ok": ok, "role": role, "client": client, "reader_id": reader_id,
           "study_id": study_id, "session": session, "detail": detail, "address": address,
           "forwarded": forwarded, "credential": credential}  # fmt: skip
    with write_transaction(conn) as raw:
        return _insert_event(raw, event, **row)


def _insert_event(raw, event: str, **row) -> int:
    if event not in EVENTS:
        raise ValueError(f"security event {event!r} is not one of {', '.join(EVENTS)}")
    ok, reader_id, study_id = row.get("ok"), row.get("reader_id"), row.get("study_id")
    cursor = raw.execute(
        "INSERT INTO security_audit (at, event, ok, role, client, reader_id, study_id, session,"
        " detail, address, forwarded, credential) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (_iso(clock.utc_now()), event, None if ok is None else int(bool(ok)), row.get("role"),
         _clip(row.get("client"), MAX_CLIENT_LENGTH) or "",
         None if reader_id is None else int(reader_id),
         None if study_id is None else int(study_id), row.get("session"),
         _clip(row.get("detail"), 500), _clip(row.get("address"), MAX_CLIENT_LENGTH),
         _clip(row.get("forwarded"), MAX_CLIENT_LENGTH), _clip(row.get("credential"), 40)),
    )  # fmt: skip
    return int(cursor.lastrowid)


def _counts(raw, client: str, credential: str | None, now: datetime) -> _Counts:
    """Everything :func:`check_sign_in` needs, in one statement over indexed columns.

    Only rows inside ``CLIENT_WINDOW_S`` and after the last ``admin_unlocked`` count.
    """
    row = raw.execute(
        "WITH floor(f) AS (SELECT MAX(?3, COALESCE((SELECT MAX(at) FROM security_audit"
        "   WHERE event = 'admin_unlocked'), ''))) SELECT"
        " (SELECT COUNT(*) FROM security_audit, floor WHERE client = ?1"
        "   AND event = 'sign_in_failed' AND at > f AND at > COALESCE((SELECT MAX(at)"
        "   FROM security_audit WHERE client = ?1 AND event = 'sign_in'), '')),"
        " (SELECT MAX(at) FROM security_audit, floor WHERE client = ?1"
        "   AND event = 'sign_in_failed' AND at > f),"
        " (SELECT COUNT(*) FROM security_audit, floor WHERE credential = ?2"
        "   AND event = 'sign_in_failed' AND at > f),"
        " (SELECT MAX(at) FROM security_audit, floor WHERE credential = ?2"
        "   AND event = 'sign_in_failed' AND at > f),"
        " (SELECT MAX(at) FROM security_audit, floor WHERE client = ?1"
        "   AND event = 'admin_lockout' AND at > f)",
        (client, credential, _iso(now - timedelta(seconds=CLIENT_WINDOW_S))),
    ).fetchone()
    return _Counts(int(row[0]), row[1], int(row[2]), row[3], row[4])


def client_delay_s(failures: int, free: int = FREE_FAILURES) -> float:
    """How long a client waits after the last failure, given the recent failures (0 = none)
    and how many of them are free."""
    beyond = int(failures) - int(free)
    if beyond < 0:
        return 0.0
    return min(BASE_DELAY_S * 2.0 ** min(beyond, 32), MAX_DELAY_S)


def check_sign_in(
    conn: sqlite_utils.Database, *, client: str, kind: str, credential: str | None = None
) -> None:
    """Refuse a sign-in attempt before its secret is checked, when a limit applies.

    Parameters
    ----------
    conn : sqlite_utils.Database
        From :func:`db.connect`.
    client : str
        Who the attempt comes from (see ``core.project.proxies.client_address``).
    kind : str
        ``"admin"`` (the admin secret, which can also be locked out) or ``"reader"``.
    credential : str, optional
        The credential tried (``"admin"``, ``"reader:<id>"`` from :func:`db.code_credential`);
        None when the attempt names none (a code that is not even of the code's form).

    Raises
    ------
    SignInThrottled
        With a message that says when to try again.
    ValueError
        On an unknown ``kind``.
    """
    if kind not in KINDS:
        raise ValueError(f"sign-in kind {kind!r} is not one of {', '.join(KINDS)}")
    now = clock.utc_now()
    counts = _counts(conn.conn, _clip(client, MAX_CLIENT_LENGTH) or "", credential, now)
    blocks = []
    if kind == "admin" and counts.last_lockout:
        until = _parse(counts.last_lockout) + timedelta(seconds=ADMIN_LOCKOUT_S)
        blocks.append((until, "lockout"))
    if counts.client_last_failure and counts.client_failures:
        wait = timedelta(seconds=client_delay_s(counts.client_failures))
        blocks.append((_parse(counts.client_last_failure) + wait, "client"))
        # a client with failures of its own also waits while its credential is under attack
        attacked = counts.credential_failures > CREDENTIAL_FREE_FAILURES
        if attacked and counts.credential_last_failure:
            wait = client_delay_s(counts.credential_failures, free=CREDENTIAL_FREE_FAILURES)
            until = _parse(counts.credential_last_failure) + timedelta(seconds=wait)
            blocks.append((until, "credential"))
    active = [(until, reason) for until, reason in blocks if until > now]
    if active:
        until, reason = max(active)
        raise SignInThrottled(_throttle_message(reason, until, now), retry_at=until, reason=reason)


def _throttle_message(reason: str, until: datetime, now: datetime) -> str:
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    wait = f"{seconds} s" if seconds < 120 else f"{round(seconds / 60)} min"
    when = f"try again at {until:%H:%M:%S} UTC (in {wait})"
    if reason == "lockout":
        return (
            f"Admin sign-in from this address is locked after {ADMIN_LOCKOUT_AFTER} wrong secrets "
            f"in a row; {when}, or run `cervixscope unlock-admin` on the server."
        )
    if reason == "credential":
        return f"Too many failed sign-ins with this credential just now; {when}."
    return f"Too many failed sign-ins from this address; {when}."


def record_sign_in(
    conn: sqlite_utils.Database,
    *,
    ok: bool,
    kind: str,
    client: str,
    reader_id: int | None = None,
    study_id: int | None = None,
    session: str | None = None,
    detail: str | None = None,
    address: str | None = None,
    forwarded: str | None = None,
    credential: str | None = None,
) -> bool:
    """Audit one sign-in attempt that was checked; on a client's ``ADMIN_LOCKOUT_AFTER``-th
    consecutive wrong admin secret, also audit the lockout it starts for that client.

    Returns
    -------
    bool
        True when this failure started an admin lockout.
    """
    if kind not in KINDS:
        raise ValueError(f"sign-in kind {kind!r} is not one of {', '.join(KINDS)}")
    event = "sign_in" if ok else "sign_in_failed"
    source = {"client": client, "address": address, "forwarded": forwarded}
    with write_transaction(conn) as raw:
        _insert_event(raw, event, ok=ok, role=kind, reader_id=reader_id, study_id=study_id,
                      session=session, detail=detail, credential=credential, **source)  # fmt: skip
        if ok or kind != "admin":
            return False
        (failures,) = raw.execute(
            "SELECT COUNT(*) FROM security_audit WHERE event = 'sign_in_failed' AND role = 'admin'"
            " AND client = ?1 AND at > COALESCE((SELECT MAX(at) FROM security_audit"
            " WHERE (client = ?1 AND role = 'admin' AND event IN ('sign_in', 'admin_lockout'))"
            " OR event = 'admin_unlocked'), '')",
            (_clip(client, MAX_CLIENT_LENGTH) or "",),
        ).fetchone()
        if failures < ADMIN_LOCKOUT_AFTER:
            return False
        _insert_event(raw, "admin_lockout", role="admin", credential="admin",
                      detail=f"{failures} wrong admin secrets in a row from this client; locked "
                      f"for {ADMIN_LOCKOUT_S // 60} min", **source)  # fmt: skip
        return True


def unlock_admin(conn: sqlite_utils.Database, *, by: str) -> int:
    """Lift every admin lockout and sign-in back-off, and audit who did it; return the event id.

    Only the command line calls this, after reading the admin secret on disk: whoever can read
    that file is the admin, wherever the guesses came from.
    """
    return record_event(
        conn, "admin_unlocked", ok=True, role="admin", client=by, credential="admin",
        detail="admin lockout and sign-in back-off lifted from the command line",
    )  # fmt: skip


def security_audit_frame(
    conn: sqlite_utils.Database, *, study_id: int | None = None, limit: int = 1000
) -> pd.DataFrame:
    """The security audit, newest first.

    Parameters
    ----------
    study_id : int, optional
        Only this study's events and the events that concern no study (admin sign-ins,
        lockouts); all events when omitted.
    limit : int
        The most rows returned.

    Returns
    -------
    pandas.DataFrame
        Columns ``event_id, at, event, ok, role, client, address, forwarded, credential,
        reader_id, display_name, study_id, session, detail``.
    """
    return pd.read_sql_query(
        "SELECT a.event_id, a.at, a.event, a.ok, a.role, a.client, a.address, a.forwarded,"
        " a.credential, a.reader_id,"
        " r.display_name, a.study_id, a.session, a.detail FROM security_audit a"
        " LEFT JOIN readers r ON r.reader_id = a.reader_id"
        " WHERE ?1 IS NULL OR a.study_id = ?1 OR a.study_id IS NULL"
        " ORDER BY a.event_id DESC LIMIT ?2",
        conn.conn,
        params=(None if study_id is None else int(study_id), int(limit)),
    )
