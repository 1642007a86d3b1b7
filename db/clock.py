"""The one clock: every timestamp and time-stamped id in CervixScope reads the time here.

It lives in db/, the lowest floor, because db/ stamps reads and audits itself; core/ and the
dashboard import it from here. Tests may monkeypatch ``utc_now``.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def now_iso(*, timespec: str = "milliseconds") -> str:
    """The current UTC time as ISO 8601, e.g. ``2026-11-25T19:30:00.123+00:00``."""
    return utc_now().isoformat(timespec=timespec)


def stamped_id(prefix: str) -> str:
    """A sortable unique id: ``prefix`` + UTC second + 6 random hex digits, e.g. ``r20261125T193000-a1b2c3``."""
    return f"{prefix}{utc_now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
