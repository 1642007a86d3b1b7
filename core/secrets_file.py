"""The admin secret for the dashboard: read from the environment or `.streamlit/secrets.toml`,
generated once for demos when neither is set (never a fixed default password)."""

from __future__ import annotations

import os
import secrets
import tomllib
from pathlib import Path

ADMIN_SECRET_ENV = "CERVIXSCOPE_ADMIN_SECRET"


def read_admin_secret(secrets_path: Path) -> str | None:
    """The configured secret: the environment first, then ``secrets_path``; None when unset."""
    if os.environ.get(ADMIN_SECRET_ENV):
        return os.environ[ADMIN_SECRET_ENV]
    if secrets_path.exists():
        with secrets_path.open("rb") as fh:
            value = tomllib.load(fh).get("admin_secret")
        return str(value) if value else None
    return None


def ensure_admin_secret(secrets_path: Path) -> tuple[str, bool]:
    """Return ``(secret, created)``, writing a fresh random secret to ``secrets_path`` if none is set."""
    existing = read_admin_secret(secrets_path)
    if existing:
        return existing, False
    secret = secrets.token_urlsafe(12)
    secrets_path.parent.mkdir(parents=True, exist_ok=True)
    with secrets_path.open("a", encoding="utf-8") as fh:
        fh.write(f'admin_secret = "{secret}"\n')
    secrets_path.chmod(0o600)
    return secret, True
