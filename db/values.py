"""How values cross into and out of SQLite text columns: ISO 8601 timestamps and JSON."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def to_iso(value: str | datetime | None, *, name: str = "timestamp") -> str | None:
    """Normalise a datetime or ISO 8601 string to UTC ISO 8601 with milliseconds (naive = UTC)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"{name} {value!r} is not an ISO 8601 time such as 2026-11-25T19:30:00+00:00"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime or ISO 8601 string, got {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (Path, datetime)):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"cannot store {type(value).__name__} value {value!r} as JSON")


def to_json(value: Any) -> str | None:
    """Serialise ``value`` to JSON (numpy values, paths and ``to_dict()`` objects allowed)."""
    if value is None:
        return None
    return json.dumps(value, default=_json_default, sort_keys=True)


def from_json(text: str | None) -> Any:
    """Inverse of :func:`to_json`; ``None`` stays ``None``."""
    return None if text is None else json.loads(text)
