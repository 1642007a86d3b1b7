"""The reads as arrays: a fully crossed reader x modality x case design, checked once.

Also the one setup both analyses share (:func:`estimate_foms`): check the options, lay the reads
out, build the figure of merit, and estimate the FOMs and their case covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.statistics.mrmc.covariance import COVARIANCES, fom_covariance
from core.statistics.mrmc.figures_of_merit import Fom, build_fom, check_fom_defined, fom_values

REQUIRED = ("reader", "modality", "case", "truth")
ANALYSES = ("random_readers", "fixed_readers")


@dataclass
class Design:
    """Sorted readers, modalities and cases of fully crossed reads, with one truth per case."""

    readers: list
    modalities: list
    cases: list
    truth: pd.Series  # per case, in case order
    frame: pd.DataFrame

    def cube(self, column: str) -> np.ndarray:
        """Values of one column as an array (modality, reader, case)."""
        if column == "label" and "label" not in self.frame.columns:
            column = "score"
        if column not in self.frame.columns:
            raise ValueError(
                f"reads have no column {column!r} needed by this FOM; columns are "
                f"{list(self.frame.columns)}"
            )
        wide = self.frame.pivot(index=["modality", "reader"], columns="case", values=column)
        wide = wide.reindex(
            index=pd.MultiIndex.from_product([self.modalities, self.readers]), columns=self.cases
        )
        values = wide.to_numpy()
        if pd.isna(values).any():
            where = np.argwhere(pd.isna(values))[0]
            m, r = wide.index[where[0]]
            case = wide.columns[where[1]]
            raise ValueError(
                f"column {column!r} is missing for reader {show(r)}, modality {show(m)}, "
                f"case {show(case)}: every read needs a value"
            )
        if values.dtype != object:
            values = values.astype(float)
        return values.reshape(len(self.modalities), len(self.readers), len(self.cases))


def show(value) -> str:
    """repr of a value for messages, without numpy's ``np.int64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _sorted(column: pd.Series) -> list:
    values = column.unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # mixed types: fall back to text order
        return sorted(values, key=str)


def _check_reads(frame: pd.DataFrame) -> None:
    """Required columns present, at least one read, no read twice, one truth per case."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"reads are missing column(s) {missing}: need {', '.join(REQUIRED)} plus the FOM's "
            f"score columns; got {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError("reads are empty: need at least one read")
    dupes = frame.duplicated(["reader", "modality", "case"])
    if dupes.any():
        row = frame.loc[dupes, ["reader", "modality", "case"]].iloc[0].tolist()
        raise ValueError(
            f"reader {show(row[0])} read case {show(row[2])} twice in modality {show(row[1])}"
        )
    truth_per_case = frame.groupby("case", sort=True)["truth"].nunique()
    if (truth_per_case > 1).any():
        case = truth_per_case.index[truth_per_case > 1][0]
        raise ValueError(f"case {show(case)} has conflicting truth values across reads")


def _check_fully_crossed(frame: pd.DataFrame, n_readers: int, n_modalities: int, n_cases: int):
    expected = n_readers * n_modalities * n_cases
    if len(frame) == expected:
        return
    counts = frame.groupby(["modality", "reader"]).size()
    short = counts[counts < n_cases]
    where = (
        f"reader {show(short.index[0][1])} in modality {show(short.index[0][0])} read "
        f"{int(short.iloc[0])} of {n_cases} cases"
        if len(short)
        else "some reader x modality pairs are missing"
    )
    raise ValueError(
        f"the design is not fully crossed ({len(frame)} reads, expected {expected}): {where}"
    )


def read_design(frame: pd.DataFrame) -> Design:
    """Check long reads and lay them out as a :class:`Design`.

    Parameters
    ----------
    frame : DataFrame
        Long reads with columns ``reader, modality, case, truth`` and the FOM's columns.

    Returns
    -------
    Design

    Raises
    ------
    ValueError
        A missing column, no reads, a read given twice, conflicting truth for a case, or a
        design that is not fully crossed; the message names the reader, modality or case.
    """
    _check_reads(frame)
    readers = _sorted(frame["reader"])
    modalities = _sorted(frame["modality"])
    cases = _sorted(frame["case"])
    _check_fully_crossed(frame, len(readers), len(modalities), len(cases))
    truth = frame.drop_duplicates("case").set_index("case")["truth"].reindex(cases)
    return Design(readers, modalities, cases, truth.reset_index(drop=True), frame)


def check_options(cov: str, analysis: str, alpha: float) -> None:
    """Raise a ValueError naming ``cov``, ``analysis`` or ``alpha`` when it is not allowed."""
    if cov not in COVARIANCES:
        raise ValueError(f"cov={cov!r} is not allowed: use one of {', '.join(COVARIANCES)}")
    if analysis not in ANALYSES:
        raise ValueError(f"analysis={analysis!r} is not allowed: use one of {', '.join(ANALYSES)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")


@dataclass
class FomEstimates:
    """What both analyses start from: the design, the FOM, its values and their covariance."""

    design: Design
    fom: Fom
    theta: np.ndarray  # (modality, reader) FOMs
    cov: np.ndarray  # (t*J, t*J) case covariance of theta, modality-major


def estimate_foms(
    frame: pd.DataFrame,
    *,
    fom,
    cov: str,
    analysis: str,
    n_boot: int,
    seed: int,
    reference=None,
) -> FomEstimates:
    """Lay out the reads, build the FOM and estimate the FOMs with their case covariance.

    Parameters
    ----------
    frame : DataFrame
        Long reads (see :func:`read_design`).
    fom, cov, analysis, n_boot, seed
        As in :func:`core.statistics.mrmc.or_analysis`; the options are assumed checked
        (:func:`check_options`).
    reference : optional
        A reader ID that stands for a reference (the standalone model), not counted among the
        readers a random-readers analysis needs at least 2 of.

    Returns
    -------
    FomEstimates
    """
    design = read_design(frame)
    n_readers = len([r for r in design.readers if reference is None or r != reference])
    if analysis == "random_readers" and n_readers < 2:
        raise ValueError(
            f"analysis='random_readers' needs at least 2 readers, got {n_readers}; "
            "use analysis='fixed_readers'"
        )
    built = build_fom(fom, design.cube, design.truth)
    check_fom_defined(built)
    return FomEstimates(design, built, fom_values(built), fom_covariance(built, cov, n_boot, seed))
