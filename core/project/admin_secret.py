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


MIN_SECRET_LENGTH = 12


def check_secret_strength(secret: str) -> None:
    """Refuse an admin secret a guesser could find: shorter than 12 characters, or one repeated
    character. Raises ValueError naming where it came from and what is needed."""
    if len(secret) < MIN_SECRET_LENGTH or len(set(secret)) < 4:
        raise ValueError(
            f"the admin secret ({ADMIN_SECRET_ENV} or .streamlit/secrets.toml) is too weak: use "
            f"at least {MIN_SECRET_LENGTH} characters, not one repeated (or unset it and a strong "
            "one is generated)"
        )


def ensure_admin_secret(secrets_path: Path) -> tuple[str, bool]:
    """Return ``(secret, created)``, writing a fresh random secret to ``secrets_path`` if none is set.

    The file is created readable by its owner only (0600) from its first byte.

    Raises
    ------
    ValueError
        If a configured secret is too weak (see `check_secret_strength`).
    """
    existing = read_admin_secret(secrets_path)
    if existing:
        check_secret_strength(existing)
        return existing, False
    secret = secrets.token_urlsafe(16)
    secrets_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(f'admin_secret = "{secret}"\n')
    os.chmod(secrets_path, 0o600)  # an existing file keeps its mode through os.open
    return secret, True
