"""Reads exported in iMRMC's input format, to cross-check our analyses in iMRMC (Java/R) or RJafroc."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.data.labels import CLASSES
from core.statistics.mrmc.design import Design, read_design
from core.statistics.mrmc.figures_of_merit import class_of, truth_indices


def _id(value, what: str) -> str:
    text = str(value)
    if not text or any(ch in text for ch in ",\r\n") or text != text.strip():
        raise ValueError(
            f"{what} {value!r} cannot be written to iMRMC: IDs must be non-empty, without commas, "
            "line breaks or surrounding spaces"
        )
    return text


def _binary_truth(design: Design, positive_class) -> tuple[np.ndarray, str]:
    """Truth per case as 0/1 and the column that holds the matching score."""
    if positive_class is None:
        truth = design.truth.to_numpy()
        if not set(np.unique(truth).tolist()) <= {0, 1}:
            raise ValueError(
                "iMRMC needs binary truth 0/1: give positive_class='SCC'|'AC'|'ASC' for "
                "3-class reads"
            )
        return truth, "score"
    c = class_of(str(positive_class))
    return (truth_indices(design.truth) == c).astype(int), f"c_{CLASSES[c]}"


def _numeric_scores(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise ValueError(f"reads have no column {column!r} to export as the score")
    scores = pd.to_numeric(frame[column], errors="coerce")
    if scores.isna().any():
        raise ValueError(
            f"column {column!r} has missing or non-numeric scores; iMRMC needs numbers"
        )
    return scores


def _read_lines(frame: pd.DataFrame, design: Design, scores: pd.Series) -> list[str]:
    """``readerID,caseID,modalityID,score`` rows in the design's modality, reader, case order."""
    rank = {
        col: {v: i for i, v in enumerate(values)}
        for col, values in (
            ("modality", design.modalities),
            ("reader", design.readers),
            ("case", design.cases),
        )
    }
    ordered = frame.assign(_score=scores).sort_values(
        ["modality", "reader", "case"], key=lambda col: col.map(rank[col.name])
    )
    return [
        f"{_id(r, 'reader')},{_id(c, 'case')},{_id(m, 'modality')},{s:g}"
        for r, c, m, s in zip(
            ordered["reader"], ordered["case"], ordered["modality"], ordered["_score"], strict=True
        )
    ]


def to_imrmc(
    frame: pd.DataFrame,
    *,
    positive_class=None,
    description: str = "CervixScope reads exported for iMRMC",
) -> str:
    """Reads in iMRMC's input format, to cross-check results in iMRMC (Java/R) or RJafroc.

    The text is free header lines, ``NR``/``N0``/``N1``/``NM`` counts, ``BEGIN DATA:``, one truth
    row per case (``-1,caseID,0,truth`` with truth 0/1), then one row per read
    ``readerID,caseID,modalityID,score``.

    Parameters
    ----------
    frame : DataFrame
        Long reads ``reader, modality, case, truth, score`` with binary truth; or 3-class reads
        with ``positive_class`` set, when truth becomes ``truth == class`` and the score column
        is ``c_<class>``.
    positive_class : str or int, optional
    description : str
        First header line.

    Returns
    -------
    str
    """
    design = read_design(frame)
    truth, column = _binary_truth(design, positive_class)
    scores = _numeric_scores(frame, column)
    for r in design.readers:
        if str(r) == "-1":
            raise ValueError("reader ID -1 is reserved by iMRMC for truth rows: rename that reader")
    lines = [
        description.replace("\n", " "),
        f"NR: {len(design.readers)}",
        f"N0: {int((truth == 0).sum())}",
        f"N1: {int((truth == 1).sum())}",
        f"NM: {len(design.modalities)}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{_id(c, 'case')},0,{int(v)}" for c, v in zip(design.cases, truth, strict=True)]
    lines += _read_lines(frame, design, scores)
    return "\n".join(lines) + "\n"


def write_imrmc(frame: pd.DataFrame, path, **kwargs) -> Path:
    """Write :func:`to_imrmc` text to ``path`` (use the ``.imrmc`` extension for RJafroc).

    Returns
    -------
    Path
        The path written.
    """
    path = Path(path)
    path.write_text(to_imrmc(frame, **kwargs), encoding="utf-8")
    return path


def read_imrmc(text: str) -> pd.DataFrame:
    """Reads from iMRMC's input format (as :func:`to_imrmc` writes and iMRMC / RJafroc read).

    Parameters
    ----------
    text : str
        Header lines, ``BEGIN DATA:``, truth rows ``-1,caseID,0,truth`` and read rows
        ``readerID,caseID,modalityID,score``.

    Returns
    -------
    pandas.DataFrame
        Long reads ``reader, modality, case, truth, score`` (IDs as text, truth 0/1).
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip().upper().startswith("BEGIN DATA")]
    if not starts:
        raise ValueError("not an iMRMC file: no 'BEGIN DATA:' line")
    truth, reads = {}, []
    for number, line in enumerate(lines[starts[0] + 1 :], start=starts[0] + 2):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 4:
            raise ValueError(
                f"iMRMC line {number}: expected 4 comma-separated fields, got {line!r}"
            )
        try:
            value = float(parts[3])
        except ValueError:
            raise ValueError(f"iMRMC line {number}: {parts[3]!r} is not a number") from None
        if parts[0] == "-1":
            truth[parts[1]] = int(value)
        else:
            reads.append((parts[0], parts[2], parts[1], value))
    frame = pd.DataFrame(reads, columns=["reader", "modality", "case", "score"])
    missing = sorted(set(frame["case"]) - set(truth))
    if missing:
        raise ValueError(f"iMRMC file has no truth row for case {missing[0]!r}")
    return frame.assign(truth=frame["case"].map(truth))[
        ["reader", "modality", "case", "truth", "score"]
    ]
