"""Who is signed in, and what each role may open.

Roles: ``"admin"`` (a researcher holding the admin secret) and ``"reader"`` (an expert holding a
one-time access code). Nobody signed in sees only the sign-in page. The role lives in
``st.session_state`` (per browser tab); readers resume from the database, not from the session.
"""

from __future__ import annotations

import hmac
import os
from dataclasses import dataclass

import streamlit as st

from core.secrets_file import ADMIN_SECRET_ENV

_SESSION_KEY = "auth"


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
    st.session_state[_SESSION_KEY] = identity


def sign_out() -> None:
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def require_role(*roles: str) -> Identity:
    """Stop the page unless the signed-in role is one of ``roles``; return the identity."""
    identity = current()
    if identity is None or identity.role not in roles:
        st.error("You do not have access to this page. Sign in with the right role first.")
        st.stop()
    return identity
