"""Encode analysis results as bytes to save in the database (``db.save_result``), and back.

JSON, not pickle: a payload read back from the file can build only plain values, NumPy arrays,
pandas frames (as Parquet), Plotly figures, and the dataclasses and named tuples of ``core``,
never run code. :func:`encode` raises TypeError on anything else: such a value is simply not
saved.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import importlib
import io
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_TAG = "__saved__"


def encode(value: Any) -> bytes:
    """``value`` as a JSON document (UTF-8).

    Raises
    ------
    TypeError
        If ``value`` holds something that cannot be saved (e.g. a function).
    """
    return json.dumps(_plain(value), separators=(",", ":")).encode()


def decode(payload: bytes) -> Any:
    """The value :func:`encode` saved.

    Raises
    ------
    ValueError
        If ``payload`` is not such a document, or names a class outside ``core``.
    """
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a saved value: {exc}") from exc
    return _value(document)


def frame_digest(frame: pd.DataFrame) -> str:
    """A digest of a frame's columns, dtypes and values (not its index): equal frames, equal
    digests, so a result keyed on it is recomputed exactly when its input changed."""
    h = hashlib.sha1(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


@cache
def code_digest() -> str:
    """A digest of CervixScope's own source (core and dashboard): saved results computed by
    other code are never read back, so an upgrade cannot show stale tables."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha1()
    for package in ("core", "dashboard"):
        for path in sorted((root / package).rglob("*.py")):
            h.update(path.relative_to(root).as_posix().encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _plain(value: Any) -> Any:  # noqa: C901 - one branch per kind of value, flat on purpose
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return {_TAG: "float", "v": repr(float(value))}  # NaN and infinities survive
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, pd.DataFrame):
        return {_TAG: "frame", "v": _parquet(value)}
    if isinstance(value, pd.Series):
        return {_TAG: "series", "name": _plain(value.name),
                "v": _parquet(value.to_frame(name="__series__"))}  # fmt: skip
    if isinstance(value, np.ndarray):
        return {_TAG: "array", "dtype": value.dtype.str, "shape": list(value.shape),
                "v": base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()}  # fmt: skip
    if _is_figure(value):
        return {_TAG: "figure", "v": value.to_json()}
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        return {_TAG: "namedtuple", "class": _class_name(value), "v": [_plain(v) for v in value]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {_TAG: "dataclass", "class": _class_name(value), "v": fields}
    if isinstance(value, tuple):
        return {_TAG: "tuple", "v": [_plain(v) for v in value]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_TAG: "dict", "v": [[_plain(k), _plain(v)] for k, v in value.items()]}
    raise TypeError(f"a {type(value).__name__} cannot be saved")


def _value(doc: Any) -> Any:  # noqa: C901 - the inverse of _plain, branch for branch
    if isinstance(doc, list):
        return [_value(v) for v in doc]
    if not isinstance(doc, dict):
        return doc
    kind, v = doc.get(_TAG), doc.get("v")
    if kind == "float":
        return float(v)
    if kind == "frame":
        return _unparquet(v)
    if kind == "series":
        return _unparquet(v)["__series__"].rename(_value(doc.get("name")))
    if kind == "array":
        raw = base64.b64decode(v)
        return np.frombuffer(raw, dtype=np.dtype(doc["dtype"])).reshape(doc["shape"]).copy()
    if kind == "figure":
        import plotly.io

        return plotly.io.from_json(v)
    if kind == "namedtuple":
        return _core_class(doc["class"])(*[_value(x) for x in v])
    if kind == "dataclass":
        return _rebuilt(_core_class(doc["class"]), {k: _value(x) for k, x in v.items()})
    if kind == "tuple":
        return tuple(_value(x) for x in v)
    if kind == "dict":
        return {_hashable(_value(k)): _value(x) for k, x in v}
    raise ValueError(f"not a saved value: unknown kind {kind!r}")


def _parquet(frame: pd.DataFrame) -> str:
    out = io.BytesIO()
    named = frame
    if not all(isinstance(c, str | tuple) for c in named.columns):  # Parquet's own rule
        raise TypeError("a frame with non-string column names cannot be saved")
    try:
        named.to_parquet(out, engine="pyarrow")
    except (ValueError, TypeError, ImportError) as exc:  # pyarrow's errors subclass these
        raise TypeError(f"this frame cannot be saved: {exc}") from exc
    return base64.b64encode(out.getvalue()).decode()


def _unparquet(text: str) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(base64.b64decode(text)), engine="pyarrow")


def _is_figure(value: Any) -> bool:
    return type(value).__module__.startswith("plotly.") and hasattr(value, "to_json")


def _class_name(value: Any) -> str:
    cls = type(value)
    if not cls.__module__.startswith("core."):
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a CervixScope class")
    return f"{cls.__module__}:{cls.__qualname__}"


def _core_class(name: str) -> type:
    module, _, qualname = str(name).partition(":")
    if not module.startswith("core.") or not qualname:
        raise ValueError(f"not a saved value: {name!r} is not a CervixScope class")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not isinstance(cls, type) or not (
        dataclasses.is_dataclass(cls) or (issubclass(cls, tuple) and hasattr(cls, "_fields"))
    ):
        raise ValueError(f"not a saved value: {name!r} is not a dataclass or named tuple")
    return cls


def _rebuilt(cls: type, fields: dict) -> Any:
    """A dataclass instance from its fields, including those its ``__init__`` does not take."""
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: v for k, v in fields.items() if k in init})
    for k, v in fields.items():
        if k not in init:
            object.__setattr__(obj, k, v)
    return obj


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key
