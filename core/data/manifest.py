"""The manifest CSV that lists the images to ingest, one row per image.

Columns: ``patient_id``, ``path`` (relative to the data folder), ``label`` (SCC, AC or ASC), the
lesion box ``x0, y0, x1, y1`` in pixel coordinates (x along columns, x1/y1 exclusive) or a
``mask`` path (a DICOM, PNG or .npy file whose non-zero pixels mark the lesion), or neither (the
box then comes from the lesion marks stored in the database, drawn or imported), and an optional
``frame`` for multi-frame files, and an optional ``site`` (the hospital or scanner the image came
from; used by site-grouped cross-validation and per-site results). Rows are numbered by their line in the file (the header is
line 1), the way a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.data.labels import CLASSES, parse_label

REQUIRED = ("patient_id", "path", "label")
MAX_LENGTH = {"patient_id": 128, "path": 1024, "mask": 1024, "site": 128}  # characters
BOX = ("x0", "y0", "x1", "y1")


@dataclass(frozen=True)
class IngestIssue:
    """One problem found while ingesting: ``row`` is the manifest line (0 when not row-bound).

    ``level`` is ``"error"`` when the row was skipped and ``"warning"`` when it was ingested
    anyway (for example a series that does not look like T2 sagittal).
    """

    row: int
    path: str
    problem: str
    level: str = "error"

    def __str__(self) -> str:
        where = f"row {self.row} ({self.path})" if self.row else self.path
        return f"{self.level}: {where}: {self.problem}"


@dataclass(frozen=True)
class ManifestRow:
    """One valid manifest row. ``box`` is None when the lesion is given by ``mask``; both are None
    when it comes from the lesion marks stored in the database (or is still to be marked)."""

    row: int
    patient_id: str
    path: str
    label: int
    box: tuple[float, float, float, float] | None
    mask: str | None
    frame: int
    site: str | None = None

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]


def _norm_path(text: str) -> str:
    """Compare paths the same way whether written with / or \\ or a leading ./"""
    return str(PurePosixPath(text.strip().replace("\\", "/")))


def _outside(text: str) -> bool:
    """True for a path that would leave the data folder: absolute, a drive, or through '..'."""
    path = PurePosixPath(text.strip().replace("\\", "/"))
    drive = len(path.parts) > 0 and len(path.parts[0]) == 2 and path.parts[0][1] == ":"
    return path.is_absolute() or drive or ".." in path.parts


def read_manifest(path: str | Path) -> tuple[list[ManifestRow], list[IngestIssue]]:
    """Parse a manifest, keeping the valid rows and describing every invalid one.

    Parameters
    ----------
    path : str or Path
        The manifest CSV (comma-separated UTF-8, a byte-order mark is accepted).

    Returns
    -------
    rows : list of ManifestRow
        Rows that passed the checks, in file order.
    issues : list of IngestIssue
        One per rejected row: missing patient or path, a path or mask outside the data folder,
        unknown label, missing or non-numeric box, empty box, bad frame, duplicate image, or a
        patient labelled differently in two rows.

    Raises
    ------
    FileNotFoundError
        If the manifest does not exist.
    ValueError
        If the file is empty, not UTF-8, not comma-separated, or its header lacks a required
        column (the message lists what is required).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    reader = csv.DictReader(io.StringIO(_decode(path), newline=""))
    reader.fieldnames = _checked_header(path, reader.fieldnames)
    rows: list[ManifestRow] = []
    issues: list[IngestIssue] = []
    seen: dict[tuple[str, int], int] = {}
    patient_label: dict[str, tuple[int, int]] = {}
    for i, rec in enumerate(reader):
        line = i + 2
        values = {k: (v or "").strip() for k, v in rec.items() if k}
        if not any(values.values()):
            continue  # blank line
        rel = _norm_path(values.get("path", "")) if values.get("path") else ""
        problem = _check(values) or _conflict(values, rel, seen, patient_label)
        if problem is not None:
            issues.append(IngestIssue(line, rel or "-", problem))
            continue
        row = _row(line, values, rel)
        seen[(rel, row.frame)] = line
        patient_label.setdefault(row.patient_id, (row.label, line))
        rows.append(row)
    return rows, issues


def _checked_header(path: Path, fieldnames) -> list[str]:
    """The lower-cased header, or a ValueError saying which columns a manifest needs."""
    header = [(h or "").strip().lower() for h in (fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    if not missing:
        return header
    need = ", ".join(REQUIRED) + ", and optionally " + ",".join(BOX) + " or mask"
    if not header:
        raise ValueError(f"manifest {path} is empty; it needs a header row with {need}")
    other = [d for d in ";\t|" if len(header) == 1 and d in header[0]]
    if other:
        raise ValueError(
            f"manifest {path} looks separated by {other[0]!r}, not commas (header "
            f"{header[0]!r}); save it as comma-separated CSV with columns {need}"
        )
    raise ValueError(f"manifest {path} has columns {', '.join(header)}; it needs {need}")


def _conflict(values: dict, rel: str, seen: dict, patient_label: dict) -> str | None:
    """A row that repeats an image, or gives a patient a second label."""
    label = parse_label(values["label"])
    frame = int(values.get("frame") or 0)
    prior = patient_label.get(values["patient_id"])
    if (rel, frame) in seen:
        return f"duplicate row: {rel} frame {frame} is already listed in row {seen[(rel, frame)]}"
    if prior is not None and prior[0] != label:
        return (
            f"patient {values['patient_id']} is labelled {CLASSES[label]} here but "
            f"{CLASSES[prior[0]]} in row {prior[1]}; a patient has one label"
        )
    return None


def _row(line: int, values: dict, rel: str) -> ManifestRow:
    box = tuple(float(values[c]) for c in BOX) if values.get("x0") else None
    return ManifestRow(
        row=line,
        patient_id=values["patient_id"],
        path=rel,
        label=parse_label(values["label"]),
        box=box,
        mask=_norm_path(values["mask"]) if not box and values.get("mask") else None,
        frame=int(values.get("frame") or 0),
        site=values.get("site") or None,
    )


def _decode(path: Path) -> str:
    """The manifest's text: UTF-8 with or without a byte-order mark, anything else explained."""
    data = path.read_bytes()
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ValueError(f"manifest {path} is UTF-16 text; save it as UTF-8 CSV (comma-separated)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"manifest {path} is not UTF-8 text: byte 0x{data[exc.start]:02x} on line {line} is "
            "not valid UTF-8; save it as UTF-8 CSV (Excel: 'CSV UTF-8')"
        ) from None


def _check(values: dict[str, str]) -> str | None:
    """The problem with one row's fields, or None when they are usable."""
    if not values.get("patient_id"):
        return "patient_id is empty"
    if not values.get("path"):
        return "path is empty"
    for field, limit in MAX_LENGTH.items():
        if len(values.get(field) or "") > limit:
            return f"{field} is {len(values[field]):,} characters long; at most {limit} are allowed"
    for field in ("path", "mask"):
        text = values.get(field) or ""
        if text and _outside(text):
            return (
                f"{field} {text} must lie inside the data folder: give it relative to the "
                "folder, without '..' or a leading / or drive"
            )
    try:
        parse_label(values.get("label", ""))
    except ValueError as exc:
        return str(exc)
    frame = values.get("frame") or "0"
    # isdigit() alone admits "²" and other digits int() cannot read.
    if not (frame.isascii() and frame.isdigit() and len(frame) <= 6):
        return f"frame {frame!r} is not a whole number >= 0"
    box_text = [values.get(c, "") for c in BOX]
    if any(box_text):
        try:
            x0, y0, x1, y1 = (float(v) for v in box_text)
        except ValueError:
            return f"lesion box {','.join(box_text)} needs four numbers x0,y0,x1,y1"
        if not (x1 > x0 and y1 > y0):
            return f"lesion box {x0:g},{y0:g},{x1:g},{y1:g} is empty: need x1 > x0 and y1 > y0"
    return None
