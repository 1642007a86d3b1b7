"""The admin secret: the app reads it in the same order as the CLI that prints it."""

from __future__ import annotations

import pytest

from core.project.admin_secret import ADMIN_SECRET_ENV, read_admin_secret
from dashboard import auth


@pytest.fixture
def secrets_toml(tmp_path, monkeypatch):
    """A secrets file as `make demo` writes it, seen by the app as ``st.secrets``."""
    path = tmp_path / "secrets.toml"
    path.write_text('admin_secret = "from-file"\n', encoding="utf-8")
    monkeypatch.setattr(auth.st, "secrets", {"admin_secret": "from-file"})
    return path


@pytest.mark.parametrize(
    ("env_value", "expected"),
    [("from-env", "from-env"), (None, "from-file")],
    ids=["env-set", "env-unset"],
)
def test_app_and_cli_agree_on_the_admin_secret(secrets_toml, monkeypatch, env_value, expected):
    if env_value is None:
        monkeypatch.delenv(ADMIN_SECRET_ENV, raising=False)
    else:
        monkeypatch.setenv(ADMIN_SECRET_ENV, env_value)
    assert read_admin_secret(secrets_toml) == expected
    assert auth.admin_secret() == expected
    assert auth.check_admin_secret(expected)
    assert not auth.check_admin_secret("from-file" if expected == "from-env" else "from-env")


def test_no_secret_anywhere_accepts_nothing(monkeypatch):
    monkeypatch.delenv(ADMIN_SECRET_ENV, raising=False)
    monkeypatch.setattr(auth.st, "secrets", {})
    assert auth.admin_secret() is None
    assert not auth.check_admin_secret("")
    assert not auth.check_admin_secret("anything")
