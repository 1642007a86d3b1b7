"""A reader study's reads and its model's predictions as *rater frames*, the input of every table.

A *rater* is a reader or the model. Each rater frame has one row per case with ``case_id, truth,
label`` (class names) and per-class scores ``c_SCC, c_AC, c_ASC`` (reader confidences, or the
model's out-of-fold probabilities under the same names). Frames carry the truth: researcher pages
only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd

import db
import db.repeats
from core.data.labels import CLASSES

SCORE_COLUMNS = [f"c_{name}" for name in CLASSES]
MODEL = "Model"
TIMING_KEY = "inference_seconds_per_case"  # the one timing key core.learning.cv writes
READ_COLUMNS = ["reader", "reader_id", "simulated", "case_id", "arm", "truth", "label"]


@dataclass
class StudyData:
    """Everything the analysis needs for one study, read once."""

    study: dict  # as db.get_study returns it
    reads: pd.DataFrame  # tidy_reads: one row per reader, case and arm
    model: pd.DataFrame | None  # one row per case of the run: case_id, truth, label, c_*
    model_seconds_per_case: float | None = None
    simulated_readers: list[str] = field(default_factory=list)
    repeats: pd.DataFrame | None = None  # repeat reads (tidy, repeat=True): intra-reader only
    version: str = ""  # the db.reads_version it was read at, when the caller caches on it
    read_mark: int | None = None  # the last read_audit row its reads include
    basis: dict | None = None  # what else it was read from (db.reads_version_parts but reads)
    read_ids: np.ndarray | None = None  # each row's read_id (ascending): where a changed read goes
    # (the read_mark it was patched from, the readers whose reads changed since); None: read whole
    patch: tuple[int, frozenset[str]] | None = None

    @cached_property
    def arms(self) -> list[str]:
        """The study's arms that hold reads, in the study's order (all of them if none does)."""
        arms = list(self.study["arms"])
        read = set(self.reads["arm"].unique())
        return [a for a in arms if a in read] or arms


def tidy_reads(reads: pd.DataFrame) -> pd.DataFrame:
    """:func:`db.reads_frame` rows as the analysis reads them.

    Returns
    -------
    pandas.DataFrame
        Columns ``reader, reader_id, simulated, case_id, arm, truth, label, c_SCC, c_AC, c_ASC,
        seconds, repeat`` (``seconds`` from ``duration_ms``; ``repeat`` True for a repeat read,
        from a ``repeat`` column when the frame has one).
    """
    if reads.empty:
        return pd.DataFrame(columns=[*READ_COLUMNS, *SCORE_COLUMNS, "seconds", "repeat"])
    out = pd.DataFrame(
        {
            "reader": reads["display_name"].astype(str),
            "reader_id": reads["reader_id"].astype(int),
            "simulated": reads["reader_simulated"].fillna(0).astype(bool),
            "case_id": reads["case_id"].astype(str),
            "arm": reads["arm"].astype(str),
            "truth": reads["truth"].astype(str),
            "label": reads["label"].astype(str),
        }
    )
    for col in SCORE_COLUMNS:
        out[col] = reads[col].astype(float)
    out["seconds"] = reads["duration_ms"].astype(float).to_numpy() / 1000.0
    repeat = reads["repeat"] if "repeat" in reads.columns else pd.Series(False, index=reads.index)
    out["repeat"] = repeat.fillna(0).astype(bool).to_numpy()
    return out.reset_index(drop=True)


def model_frame(predictions: pd.DataFrame, case_ids) -> pd.DataFrame:
    """The model's out-of-fold predictions on ``case_ids`` as a rater frame.

    Parameters
    ----------
    predictions : pandas.DataFrame
        As :func:`db.predictions_frame` returns them (``label`` is the truth, ``p_*`` scores).
    case_ids : iterable of str
        The cases to keep.
    """
    rows = predictions[among(predictions["case_id"].astype(str), list(map(str, case_ids)))]
    probs = rows[[f"p_{name}" for name in CLASSES]].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "case_id": rows["case_id"].astype(str).to_numpy(),
            "truth": rows["label"].astype(str).to_numpy(),
            "label": np.array(CLASSES)[probs.argmax(axis=1)] if len(rows) else [],
        }
    )
    for j, col in enumerate(SCORE_COLUMNS):
        out[col] = probs[:, j]
    return out


def model_seconds_per_case(run: dict | None) -> float | None:
    """Seconds per case the model needs at inference, if the run recorded it.

    Parameters
    ----------
    run : dict or None
        As :func:`db.get_run` returns it (``timings`` a dict or None).
    """
    value = ((run or {}).get("timings") or {}).get(TIMING_KEY)
    return None if value is None else float(value)


def load_study_data(conn, study_id: int, previous: StudyData | None = None) -> StudyData:
    """Read the study, its reads (with truth: researcher pages only) and the model's predictions.

    With ``previous`` (this study as read earlier) and only reads written since, just those are
    read and patched in: the result equals a full read, at a fraction of its cost on a study of
    many reads (a live study gains one read at a time).

    Raises
    ------
    StudyNotFound
        If ``study_id`` is unknown.
    """
    basis = db.reads_version_parts(conn, study_id)
    del basis["reads"]
    if previous is not None and previous.read_ids is not None and previous.basis == basis:
        return _patched(previous, *db.reads_since(conn, study_id, previous.read_mark, brief=True))
    study = db.get_study(conn, study_id)
    frame, mark = db.reads_since(conn, study_id, brief=True)
    reads = tidy_reads(frame)
    model, seconds = None, None
    run_id = study["model_run_id"]
    if run_id:
        # all of the run's cases; `raters` keeps only those the readers of an arm have read
        predictions = db.predictions_frame(conn, [run_id])
        model = model_frame(predictions, predictions["case_id"])
        try:
            seconds = model_seconds_per_case(db.get_run(conn, run_id))
        except db.RunNotFound:
            seconds = None
    # repeat reads come from their own table and stay out of `reads` (and so of every table and
    # MRMC input built from it); only the intra-reader agreement reads them
    repeats = tidy_reads(db.repeats.repeat_reads_frame(conn, study_id))
    return StudyData(
        study, reads, model, seconds, _simulated(reads), repeats, read_mark=mark, basis=basis,
        read_ids=frame["read_id"].to_numpy(dtype=np.int64),
    )  # fmt: skip


def among(values: pd.Series, wanted) -> np.ndarray:
    """``values.isin(wanted)`` by one hash lookup per value: pandas' own builds an Arrow scalar
    per element of ``wanted`` for string columns (20 ms at 6,410 cases)."""
    index = pd.Index(pd.unique(np.asarray(wanted, dtype=object)))
    return index.get_indexer(values.to_numpy(dtype=object)) >= 0


def _simulated(reads: pd.DataFrame) -> list[str]:
    return sorted(map(str, reads.loc[reads["simulated"], "reader"].unique()))


def _patched(previous: StudyData, frame: pd.DataFrame, mark: int) -> StudyData:
    """``previous`` with the reads ``frame`` holds (each as it is now) in their place: a changed
    read where its read_id was, a new one last, as a full read orders them."""
    if frame.empty:
        patch = (previous.read_mark, frozenset())
        return dataclasses.replace(previous, read_mark=mark, version="", patch=patch)
    changed, ids = tidy_reads(frame), frame["read_id"].to_numpy(dtype=np.int64)
    before = previous.read_ids
    where = np.searchsorted(before, ids)
    old = where < len(before)
    old[old] = before[where[old]] == ids[old]
    reads = _replaced(previous.reads, where[old], changed[old], changed[~old])
    read_ids = before.copy()
    read_ids[where[old]] = ids[old]
    return dataclasses.replace(
        previous, reads=reads, read_mark=mark, version="", simulated_readers=_simulated(reads),
        read_ids=np.concatenate([read_ids, ids[~old]]),
        patch=(previous.read_mark, frozenset(changed["reader"])),
    )  # fmt: skip


_MANY_CHANGES = 64


def _replaced(
    frame: pd.DataFrame, at: np.ndarray, rows: pd.DataFrame, appended: pd.DataFrame
) -> pd.DataFrame:
    """``frame`` with its rows ``at`` (ascending) replaced by ``rows``, then ``appended``: the
    slices between the replaced rows are joined in one copy (a live study changes a few reads
    among 128,000; selecting the kept rows and reordering took two)."""
    if len(at) > _MANY_CHANGES:  # select and reorder instead of joining as many slices
        kept = np.ones(len(frame), dtype=bool)
        kept[at] = False
        combined = pd.concat([frame[kept], rows], ignore_index=True)
        place = np.concatenate([np.flatnonzero(kept), at])
        frame = combined.take(np.argsort(place, kind="stable"))
        return pd.concat([frame, appended], ignore_index=True)
    pieces, start = [], 0
    for i, row in enumerate(at):
        pieces += [frame.iloc[start:row], rows.iloc[i : i + 1]]
        start = row + 1
    return pd.concat([*pieces, frame.iloc[start:], appended], ignore_index=True)


def raters(
    data: StudyData,
    arm: str,
    *,
    with_model: bool = True,
    earlier: tuple[int, dict[str, pd.DataFrame]] | None = None,
) -> dict[str, pd.DataFrame]:
    """``{name: rater frame}`` for each reader of ``arm`` and, when the study has one, the model
    first, restricted to the cases any reader of the arm has read (the same cases).

    ``earlier`` is (read_mark, this function's result) for the data ``data`` was patched from,
    when at hand: then only the frames of the readers whose reads changed are built anew, and
    every other frame is the earlier one itself (equal frames, so equal results).
    """
    if earlier is not None and data.patch is not None and data.patch[0] == earlier[0]:
        return _patched_raters(data, arm, earlier[1], data.patch[1], with_model)
    reads = data.reads[data.reads["arm"] == arm]
    out = {
        name: group.drop(columns=["reader", "arm"]).reset_index(drop=True)
        for name, group in reads.groupby("reader", sort=True)
    }
    if with_model and data.model is not None and len(reads):
        seen = reads["case_id"].unique()  # not set(): iterating 128,000 strings takes 0.1 s
        model = data.model[among(data.model["case_id"], seen)].reset_index(drop=True)
        if len(model):
            out = {MODEL: model, **out}
    return out


def _patched_raters(data, arm, before, changed, with_model) -> dict[str, pd.DataFrame]:
    reads = data.reads
    mine = reads[reads["reader"].isin(changed).to_numpy() & (reads["arm"] == arm).to_numpy()]
    out = {name: frame for name, frame in before.items() if name != MODEL and name not in changed}
    for name, group in mine.groupby("reader", sort=True):
        out[name] = group.drop(columns=["reader", "arm"]).reset_index(drop=True)
    out = dict(sorted(out.items()))
    if not with_model or data.model is None or not out:
        return out
    model = before.get(MODEL)
    # reads are only added or changed, so the arm's cases only grow: the same model frame,
    # unless a changed read is of a case new to the arm
    if model is None or not among(mine["case_id"], model["case_id"]).all():
        return raters(data, arm, with_model=with_model)
    return {MODEL: model, **out}
