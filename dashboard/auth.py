"""Who is signed in, and what each role may open.

Roles: ``"admin"`` (a researcher holding the admin secret) and ``"reader"`` (an expert holding an
access code). Nobody signed in sees only the sign-in page.

A sign-in starts a server-side session (``db.sessions``): the browser holds a random token in the
URL's ``session`` query parameter, the database only its hash. A reload (F5) is a new Streamlit
session, so :func:`restore` signs it in again from that token, as long as the session has not
expired, been signed out, or lost its reader's access code. Neither the admin secret nor an access
code is ever put in the URL.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

import streamlit as st

import db
from core.secrets_file import ADMIN_SECRET_ENV
from dashboard.store import connection

_SESSION_KEY = "auth"
_TOKEN_KEY = "auth_token"
QUERY_PARAM = "session"


@dataclass(frozen=True)
class Identity:
    role: str  # "admin" | "reader"
    name: str
    reader_id: int | None = None
    study_id: int | None = None


def admin_secret() -> str | None:
    """The configured admin secret (the environment first, then Streamlit secrets), or None.

    The same order as ``core.secrets_file.read_admin_secret``, so the secret ``make demo`` prints
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


def sign_in(identity: Identity) -> None:
    """Start a server-side session for ``identity`` and keep its token in the URL."""
    with connection() as conn:
        token = db.create_session(
            conn, identity.role, reader_id=identity.reader_id, study_id=identity.study_id
        )
    st.session_state[_SESSION_KEY] = identity
    st.session_state[_TOKEN_KEY] = token
    st.query_params[QUERY_PARAM] = token


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
        role=info.role, name=info.display_name, reader_id=info.reader_id, study_id=info.study_id
    )
    st.session_state[_TOKEN_KEY] = token
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
        with connection() as conn:
            db.revoke_session(conn, token)
    _forget()


def require_role(*roles: str) -> Identity:
    """Stop the page unless the signed-in role is one of ``roles``; return the identity."""
    identity = current()
    if identity is None or identity.role not in roles:
        st.error("You do not have access to this page. Sign in with the right role first.")
        st.stop()
    return identity
