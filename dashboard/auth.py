"""Who is signed in, and what each role may open.

Roles: ``"admin"`` (a researcher holding the admin secret), ``"reader"`` (an expert holding a
study's access code) and ``"annotator"`` (an expert marking lesions, with an ``A`` access code).
Nobody signed in sees only the sign-in page.

A sign-in starts a server-side session (``db.sessions``): the browser holds a random token in the
URL's ``session`` query parameter, the database only its hash. A reload (F5) is a new Streamlit
session, so :func:`restore` signs it in again from that token, as long as the session has not
expired, been signed out, or lost its reader's access code. Neither the admin secret nor an access
code is ever put in the URL.
"""

from __future__ import annotations

import contextlib
import hmac
import os
from dataclasses import dataclass

import streamlit as st

import db
from core.project.admin_secret import ADMIN_SECRET_ENV
from core.project.proxies import LOCALHOST, client_address, trusted_proxies
from dashboard.store import connection

_SESSION_KEY = "auth"
_TOKEN_KEY = "auth_token"
QUERY_PARAM = "session"
MAX_CODE_LENGTH = 64  # an access code is ~20 characters; longer input is cut before hashing
_OTHERS_KEY = "auth_other_sessions"


@dataclass(frozen=True)
class Identity:
    role: str  # "admin" | "reader" | "annotator"
    name: str
    reader_id: int | None = None
    study_id: int | None = None
    annotator_id: int | None = None


def admin_secret() -> str | None:
    """The configured admin secret (the environment first, then Streamlit secrets), or None.

    The same order as ``core.project.admin_secret.read_admin_secret``, so the secret ``make demo`` prints
    is the one this app accepts."""
    if os.environ.get(ADMIN_SECRET_ENV):
        return os.environ[ADMIN_SECRET_ENV]
    try:
        secret = st.secrets.get("admin_secret")
    except Exception:  # st.secrets raises its own error type when no secrets file exists
        secret = None
    return str(secret) if secret else None


def check_admin_secret(candidate: str) -> bool:
    """True when ``candidate`` equals the configured secret; always False when none is set."""
    secret = admin_secret()
    if not secret or not candidate:
        return False
    return hmac.compare_digest(secret.encode(), candidate.encode())


def current() -> Identity | None:
    return st.session_state.get(_SESSION_KEY)


def current_role() -> str | None:
    identity = current()
    return identity.role if identity else None


def client_source() -> dict[str, str | None]:
    """Where this browser session connects from: ``client`` (who the sign-in limits count), the
    connection's own ``address`` and the ``forwarded`` header it sent, for the audit.

    The forwarded hop counts only behind a trusted proxy (``core.project.proxies``): without one,
    a forged ``X-Forwarded-For`` changes nothing but the audit's ``forwarded`` column.
    """
    try:
        forwarded = st.context.headers.get("X-Forwarded-For")
        address = st.context.ip_address
    except Exception:  # noqa: BLE001 - outside a browser session (a bare script): no client
        forwarded, address = None, None
    forwarded = forwarded if isinstance(forwarded, str) and forwarded.strip() else None
    address = address if isinstance(address, str) and address else LOCALHOST  # None on loopback
    client = client_address(address, forwarded, trusted_proxies())
    return {"client": client, "address": address, "forwarded": forwarded}


def _session_ref() -> str | None:
    token = st.session_state.get(_TOKEN_KEY) or st.query_params.get(QUERY_PARAM)
    return db.session_id(token) if token else None


def audit(event: str, **fields) -> None:
    """Append one row to the security audit, with this session's client and session id."""
    identity = current()
    fields.setdefault("role", identity.role if identity else None)
    fields.setdefault("session", _session_ref())
    if identity is not None and identity.reader_id is not None:
        fields.setdefault("reader_id", identity.reader_id)
        fields.setdefault("study_id", identity.study_id)
    with connection() as conn:
        db.record_event(conn, event, **client_source(), **fields)


def sign_in_admin(secret: str) -> None:
    """Sign in with the admin secret, within the sign-in limits; every attempt is audited.

    Raises
    ------
    db.SignInThrottled
        When a limit or this client's lockout applies (the secret is not even checked).
    PermissionError
        When the secret is wrong.
    """
    source = client_source()
    with connection() as conn:
        db.check_sign_in(conn, client=source["client"], kind="admin", credential="admin")
        ok = check_admin_secret(secret)
        if not ok:
            locked = db.record_sign_in(conn, ok=False, kind="admin", credential="admin", **source)
            raise PermissionError(
                "That admin secret is not correct."
                + (" Admin sign-in from this address is now locked for a while." if locked else "")
            )
    token = sign_in(Identity(role="admin", name="admin"))
    with connection() as conn:
        db.record_sign_in(conn, ok=True, kind="admin", credential="admin",
                          session=db.session_id(token), **source)  # fmt: skip


def sign_in_with_code(code: str) -> None:
    """Sign in with an access code: an annotator's (``A...``) or a reader's (``R...``)."""
    if db.is_annotator_code(str(code or "").strip()[:MAX_CODE_LENGTH]):
        sign_in_annotator(code)
    else:
        sign_in_reader(code)


def _checked_code(kind: str, code: str, credential, authenticate, source: dict):
    """Who an access code belongs to, within the sign-in limits; a wrong code is audited and
    raises ``db.InvalidAccessCode`` (the code is not even hashed when a limit applies)."""
    with connection() as conn:
        db.check_sign_in(conn, client=source["client"], kind=kind, credential=credential)
        try:
            return authenticate(conn, code)
        except db.InvalidAccessCode:
            db.record_sign_in(conn, ok=False, kind=kind, credential=credential, **source)
            raise


def sign_in_annotator(code: str) -> None:
    """Sign in with an annotator's access code, within the sign-in limits and audited like a
    reader's (raises ``db.SignInThrottled`` or ``db.InvalidAccessCode``)."""
    source = client_source()
    code = str(code or "").strip()[:MAX_CODE_LENGTH]
    credential = db.annotator_credential(code)
    annotator = _checked_code("annotator", code, credential, db.authenticate_annotator, source)
    token = sign_in(Identity(role="annotator", name=annotator.display_name,
                             annotator_id=annotator.annotator_id))  # fmt: skip
    with connection() as conn:
        db.record_sign_in(conn, ok=True, kind="annotator", credential=credential,
                          session=db.session_id(token), **source)  # fmt: skip


def sign_in_reader(code: str) -> None:
    """Sign in with a reader's access code, within the sign-in limits; audited like the admin's.

    Raises
    ------
    db.SignInThrottled
        When a limit applies (the code is not hashed: guessing costs the server nothing).
    db.InvalidAccessCode
        When the code matches no reader.
    """
    source = client_source()
    code = str(code or "").strip()[:MAX_CODE_LENGTH]  # real codes are ~20 characters
    credential = db.code_credential(code)
    reader = _checked_code("reader", code, credential, db.authenticate_reader, source)
    identity = Identity(role="reader", name=reader.display_name, reader_id=reader.reader_id,
                        study_id=reader.study_id)  # fmt: skip
    token = sign_in(identity)
    session = db.session_id(token)
    with connection() as conn:
        others = db.other_live_sessions(conn, reader.reader_id, token)
        db.record_sign_in(conn, ok=True, kind="reader", credential=credential,
                          reader_id=reader.reader_id, study_id=reader.study_id, session=session,
                          **source)  # fmt: skip
        if others:
            db.record_event(conn, "concurrent_session", role="reader", reader_id=reader.reader_id,
                            study_id=reader.study_id, session=session,
                            detail="other open sessions: " + ", ".join(s for s, _ in others),
                            **source)  # fmt: skip


def sign_in(identity: Identity) -> str:
    """Start a server-side session for ``identity``, keep its token in the URL; return it."""
    with connection() as conn:
        token = db.create_session(
            conn,
            identity.role,
            reader_id=identity.reader_id,
            study_id=identity.study_id,
            annotator_id=identity.annotator_id,
        )
    st.session_state[_SESSION_KEY] = identity
    st.session_state[_TOKEN_KEY] = token
    st.query_params[QUERY_PARAM] = token
    return token


def restore() -> None:
    """On every full run: check the session token (revoked or expired: signed out) and, in a
    fresh browser session (a reload), sign in again from the token in the URL."""
    token = st.session_state.get(_TOKEN_KEY) or st.query_params.get(QUERY_PARAM)
    if not token:  # nobody signed in (every sign-in through sign_in() carries a token)
        return
    try:
        with connection() as conn:
            info = db.resolve_session(conn, token)
    except (OSError, ValueError, db.CervixScopeDBError):  # a broken database: nobody signed in
        info = None
    if info is None:
        _forget()
        return
    st.session_state[_SESSION_KEY] = Identity(
        role=info.role,
        name=info.display_name,
        reader_id=info.reader_id,
        study_id=info.study_id,
        annotator_id=info.annotator_id,
    )
    st.session_state[_TOKEN_KEY] = token
    with contextlib.suppress(OSError, ValueError, db.CervixScopeDBError):
        _check_others(info)
    if st.query_params.get(QUERY_PARAM) != token:  # a page switch drops query parameters
        st.query_params[QUERY_PARAM] = token


def _forget() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]
    if QUERY_PARAM in st.query_params:
        del st.query_params[QUERY_PARAM]


def sign_out() -> None:
    """End the server-side session and forget everything this browser session held."""
    token = st.session_state.get(_TOKEN_KEY) or st.query_params.get(QUERY_PARAM)
    if token:
        if current() is not None:
            audit("sign_out")
        with connection() as conn:
            db.revoke_session(conn, token)
    _forget()


def other_sessions() -> list[tuple[str, str]]:
    """The signed-in reader's other open sessions, as :func:`restore` last found them."""
    return list(st.session_state.get(_OTHERS_KEY) or [])


def _check_others(info) -> None:
    """Readers only: note their other open sessions (one indexed query per full run)."""
    if info.role != "reader":
        return
    token = st.session_state.get(_TOKEN_KEY)
    with connection() as conn:
        st.session_state[_OTHERS_KEY] = db.other_live_sessions(conn, info.reader_id, token)


def end_other_sessions() -> int:
    """End the signed-in reader's other sessions (their code was in use elsewhere)."""
    identity = current()
    token = st.session_state.get(_TOKEN_KEY)
    if identity is None or identity.reader_id is None or not token:
        return 0
    with connection() as conn:
        ended = db.revoke_other_sessions(conn, identity.reader_id, token)
    audit("sessions_ended", detail=f"{ended} other session(s) ended by the reader")
    st.session_state[_OTHERS_KEY] = []
    return ended


def note_submit(what: str) -> None:
    """After a reader's answers were stored: when their code is open in another session too,
    audit them with this session's id, so two people answering on one code leave a trace of both."""
    identity = current()
    token = st.session_state.get(_TOKEN_KEY)
    if identity is None or identity.reader_id is None or not token:
        return
    with connection() as conn:
        others = db.other_live_sessions(conn, identity.reader_id, token)
    st.session_state[_OTHERS_KEY] = others
    if others:
        audit("read_submitted", detail=f"{what}; other open sessions: "
              + ", ".join(sid for sid, _ in others))  # fmt: skip


def session_refusal() -> str | None:
    """Why this session may no longer answer (signed out elsewhere, expired, code revoked), or
    None. A fragment run does not pass :func:`restore`, so a reading sync checks here."""
    token = st.session_state.get(_TOKEN_KEY)
    try:
        with connection() as conn:
            live = token is not None and db.resolve_session(conn, token) is not None
    except (OSError, ValueError, db.CervixScopeDBError):
        live = False
    if live:
        return None
    return (
        "Your session has ended (your access code was revoked, or you signed out elsewhere): "
        "your answers were not saved. Ask the study admin."
    )


def require_role(*roles: str) -> Identity:
    """Stop the page unless the signed-in role is one of ``roles``; return the identity."""
    identity = current()
    if identity is None or identity.role not in roles:
        st.error("You do not have access to this page. Sign in with the right role first.")
        st.stop()
    return identity
