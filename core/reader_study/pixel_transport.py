"""Lossless, compressed 16-bit pixels for the browser, and the one binary message the reading page
receives.

A slice travels as its 16-bit values after a row-wise delta (neighbouring pixels are alike, so the
differences are small), with the low bytes of all pixels before the high bytes (the high bytes are
then mostly zero), deflated (zlib). The browser undoes the three steps with its own
``DecompressionStream("deflate")``: nothing is lost, and no image library is needed on either side.

A message is ``MAGIC``, the length of a UTF-8 JSON header (4 bytes, little-endian), the header, then
the slices' compressed bytes one after another; the header names each slice's ``[offset, length]``
in that tail. The header is all a blinding test has to walk: the tail holds pixels only.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

import numpy as np

MAGIC = b"CSR1"
LEVEL = 1  # fast: the server compresses each slice once (cached), the browser inflates it
U16_MAX = 65535


def quantise(image: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``(raw, offset, scale)`` with ``value = raw * scale + offset`` and ``raw`` uint16.

    Integer images whose range fits 16 bits are exact (``scale`` 1); others are quantised to
    65,536 levels over their range.
    """
    array = np.asarray(image, dtype=np.float64)
    lo, hi = float(array.min()), float(array.max())
    span = hi - lo
    integral = bool(np.all(array == np.round(array)))
    scale = 1.0 if (integral and span <= U16_MAX) or span == 0 else span / U16_MAX
    raw = np.round((array - lo) / scale).clip(0, U16_MAX).astype("<u2")
    return raw, lo, scale


def compress_pixels(raw: np.ndarray) -> bytes:
    """A 2-D uint16 array as delta, byte-shuffled, deflated bytes (see the module docstring)."""
    raw = np.ascontiguousarray(raw, dtype="<u2")
    delta = raw.copy()
    delta[:, 1:] = raw[:, 1:] - raw[:, :-1]  # uint16 arithmetic wraps, as the browser's does
    pairs = delta.view(np.uint8).reshape(-1, 2)
    return zlib.compress(pairs[:, 0].tobytes() + pairs[:, 1].tobytes(), LEVEL)


def decompress_pixels(blob: bytes, h: int, w: int) -> np.ndarray:
    """The uint16 array :func:`compress_pixels` compressed (the browser does the same in JS)."""
    shuffled = np.frombuffer(zlib.decompress(blob), dtype=np.uint8)
    n = h * w
    if shuffled.size != 2 * n:
        raise ValueError(f"a {h}x{w} slice needs {2 * n} bytes, the blob holds {shuffled.size}")
    delta = (shuffled[:n].astype(np.uint16) | (shuffled[n:].astype(np.uint16) << 8)).reshape(h, w)
    return np.cumsum(delta, axis=1, dtype=np.uint16)


def pack(header: dict, blobs: Sequence[bytes]) -> bytes:
    """One message: the header (JSON) and the blobs it refers to by index."""
    offsets, at = [], 0
    for blob in blobs:
        offsets.append([at, len(blob)])
        at += len(blob)
    text = json.dumps({**header, "blobs": offsets}, separators=(",", ":")).encode("utf-8")
    return b"".join([MAGIC, struct.pack("<I", len(text)), text, *blobs])


def unpack(message: bytes) -> tuple[dict, list[bytes]]:
    """The header and blobs of a :func:`pack` message (tests and benchmarks read it so)."""
    if message[:4] != MAGIC:
        raise ValueError("not a CervixScope reading message (bad magic)")
    (length,) = struct.unpack("<I", message[4:8])
    header = json.loads(message[8 : 8 + length].decode("utf-8"))
    tail = message[8 + length :]
    blobs = [tail[start : start + size] for start, size in header.get("blobs", [])]
    return header, blobs
