"""A reader study's reads as MRMC input: which reads an analysis can use (fully crossed, or a
split-plot of reader groups each with its own cases) and why, the two comparisons the analysis
page shows (AI-aided against unaided, the model against the readers) with their non-inferiority
tests, a pilot's variance components for the power planner, and the iMRMC export. Repeat reads
never enter: they measure a reader's consistency, not a second reader. The statistics themselves
are :mod:`core.statistics.mrmc`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.reader_study.study_data import MODEL, SCORE_COLUMNS, StudyData, among
from core.statistics.mrmc import (
    modality_noninferiority,
    model_noninferiority,
    or_analysis,
    reader_groups,
    split_plot_analysis,
    standalone_vs_readers,
    to_imrmc,
)
from core.statistics.power import VarianceComponents

FEW_READERS = 4  # below this, an MRMC generalisation to new readers rests on too few readers

MRMC_FOMS = {
    "auc_macro": "macro one-vs-rest AUC (from confidences)",
    "auc:SCC": "AUC SCC vs rest",
    "auc:AC": "AUC AC vs rest",
    "auc:ASC": "AUC ASC vs rest",
    "accuracy": "accuracy (from labels)",
}


def mrmc_reads(data: StudyData, arms: list[str]) -> pd.DataFrame:
    """The reads of a fully crossed design: only cases every reader read in every one of
    ``arms`` (MRMC needs each reader on each case).

    Returns
    -------
    pandas.DataFrame
        Long reads ``reader, modality, case, truth, label, c_SCC, c_AC, c_ASC``.
    """
    reads = _first_reads(data, arms)
    needed = reads["reader"].nunique() * len(arms)
    per_case = reads.drop_duplicates(["case_id", "reader", "arm"])["case_id"].value_counts()
    return _long(reads[among(reads["case_id"], per_case.index[per_case == needed])])


def _first_reads(data: StudyData, arms: list[str]) -> pd.DataFrame:
    """The reads of ``arms``, repeat reads left out."""
    reads = data.reads[data.reads["arm"].isin(arms)]
    if "repeat" in reads.columns:
        reads = reads[~reads["repeat"].astype(bool)]
    return reads


def _long(reads: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "reader": reads["reader"],
            "modality": reads["arm"],
            "case": reads["case_id"],
            "truth": reads["truth"],
            "label": reads["label"],
            **{col: reads[col] for col in SCORE_COLUMNS},
        }
    ).reset_index(drop=True)


@dataclass
class ReadSelection:
    """The reads an MRMC analysis uses, the design they form and, in words, why."""

    frame: pd.DataFrame  # long reads (see mrmc_reads)
    design: str  # "crossed" or "split-plot"
    n_used: int
    n_total: int
    n_readers: int
    explanation: str


def read_selection(data: StudyData, arms: list[str]) -> ReadSelection:
    """Choose the reads for an MRMC analysis of ``arms`` and say which and why.

    Every reader on every case in every arm is a crossed design, analysed as it is. When the
    crossed subset loses reads, readers are grouped by the cases they read in all arms: groups
    with disjoint case sets (each group crossed) form a split-plot design, analysed with every
    such read (:func:`core.statistics.mrmc.split_plot_analysis`); otherwise only the crossed
    subset is used. Repeat reads are never used.
    """
    reads = _first_reads(data, arms)
    total = len(reads)
    crossed = mrmc_reads(data, arms)
    readers = int(reads["reader"].nunique())
    repeats = data.reads["repeat"].astype(bool).sum() if "repeat" in data.reads.columns else 0
    note = (
        f" {int(repeats)} repeat read(s) measure consistency and are not used." if repeats else ""
    )
    if len(crossed) == total:
        text = f"All {total} reads used: every reader read every case in {', '.join(arms)}."
        return ReadSelection(crossed, "crossed", total, total, readers, text + note)
    split = _split_plot_reads(reads, arms)
    if split is not None and len(split) > len(crossed):
        groups = reader_groups(split)
        text = (
            f"Split-plot design: {len(groups)} reader groups each read their own cases "
            f"({', '.join(str(len(g)) for g in groups)} readers); {len(split)} of {total} reads "
            "used (reads of cases a reader did not finish in every arm are left out), analysed "
            "with case covariances within groups."
        )
        return ReadSelection(split, "split-plot", len(split), total, readers, text + note)
    text = (
        f"{len(crossed)} of {total} reads used: only the "
        f"{crossed['case'].nunique()} cases that every reader read in every arm ("
        f"{', '.join(arms)}) count, since readers share some cases but not all."
    )
    return ReadSelection(crossed, "crossed", len(crossed), total, readers, text + note)


def _split_plot_reads(reads: pd.DataFrame, arms: list[str]) -> pd.DataFrame | None:
    """Each reader's cases read in every arm; a split-plot frame when the readers' case sets
    are equal or disjoint and there are at least two groups, else None."""
    complete = reads.groupby(["reader", "case_id"])["arm"].transform("nunique") == len(arms)
    long = _long(reads[complete])
    if long.empty:
        return None
    try:
        groups = reader_groups(long)
    except ValueError:
        return None
    return long if len(groups) > 1 else None


def _analyse(selection: ReadSelection, n_modalities: int):
    frame = selection.frame
    readers = frame["reader"].nunique()
    if readers < 2:
        raise ValueError(f"MRMC needs at least 2 readers who read the same cases; have {readers}")
    if frame["modality"].nunique() < n_modalities:
        raise ValueError("no case has been read by every reader in both arms yet")


def mrmc_aided_vs_unaided(data: StudyData, *, fom: str = "auc_macro"):
    """Obuchowski-Rockette (random readers and cases, jackknife, Hillis df) of aided against
    unaided reading; split-plot designs get the split-plot analysis (:func:`read_selection`).

    Raises
    ------
    ValueError
        When the reads cannot support it (the message says why).
    """
    selection = read_selection(data, ["aided", "unaided"])
    _analyse(selection, 2)
    analyse = split_plot_analysis if selection.design == "split-plot" else or_analysis
    return analyse(selection.frame, fom=fom, cov="jackknife", analysis="random_readers")


def mrmc_model_vs_readers(data: StudyData, arm: str, *, fom: str = "auc_macro"):
    """The standalone model against the reader panel of ``arm`` on the same cases (OR analysis
    of reader-minus-model FOM differences). In a split-plot design each reader's second
    modality is the model on that reader's cases, and the split-plot analysis compares the
    modalities ``"readers"`` and ``"model"``.

    Raises
    ------
    ValueError
        When the study has no model run or the reads cannot support it.
    """
    if data.model is None:
        raise ValueError("the study has no model run to compare with")
    selection = read_selection(data, [arm])
    _analyse(selection, 1)
    frame = selection.frame
    model = data.model[among(data.model["case_id"], frame["case"].unique())]
    model = model.rename(columns={"case_id": "case"}).drop(columns=["truth"])
    if selection.design == "split-plot":
        as_reads = frame[["reader", "case", "truth"]].merge(model, on="case")
        both = pd.concat(
            [frame.assign(modality="readers"), as_reads.assign(modality="model")],
            ignore_index=True,
        )
        return split_plot_analysis(both, fom=fom, cov="jackknife", analysis="random_readers")
    return standalone_vs_readers(frame, model, fom=fom, cov="jackknife", analysis="random_readers")


def noninferiority(result, *, margin: float, alpha: float = 0.05):
    """Non-inferiority of the new reading to the reference, from either comparison's result:
    AI-aided to unaided, or the model to the readers."""
    if hasattr(result, "model_fom"):
        return model_noninferiority(result, margin=margin, alpha=alpha)
    names = set(result.modality_means.index)
    new, reference = ("model", "readers") if "model" in names else ("aided", "unaided")
    return modality_noninferiority(result, new=new, reference=reference, margin=margin, alpha=alpha)


def check_pilot_arms(arms) -> None:
    """Raise the pilot's ValueError unless ``arms`` (a study's, or those its reads are in) hold
    both the unaided and the aided arm: a study set up with one arm needs none of its reads read
    to say so."""
    if not {"aided", "unaided"} <= set(arms):
        raise ValueError(
            "a pilot needs reads in both the unaided and the aided arm; type the variance "
            "components in instead"
        )


def pilot_components(data: StudyData, *, fom: str = "auc_macro") -> VarianceComponents:
    """The study as a pilot for the power planner: the OR variance components of its aided
    against unaided comparison (effect size aided minus unaided).

    Raises
    ------
    ValueError
        When the study cannot yet give them (e.g. a single arm, or fewer than 2 readers).
    """
    check_pilot_arms(data.reads["arm"].unique())
    result = mrmc_aided_vs_unaided(data, fom=fom)
    components = VarianceComponents.from_or_result(result)
    # from_or_result takes the first modality minus the second ("aided" sorts before "unaided")
    return components


def few_readers(data: StudyData, arm: str) -> bool:
    """True when ``arm`` has fewer than :data:`FEW_READERS` readers (excluding the model)."""
    readers = set(data.reads.loc[data.reads["arm"] == arm, "reader"].unique()) - {MODEL}
    return len(readers) < FEW_READERS


def imrmc_text(data: StudyData, positive_class: str) -> str:
    """The study's fully crossed reads (every arm a modality) in iMRMC's input format, for one
    class against the rest, to cross-check the MRMC results in iMRMC or RJafroc.

    Raises
    ------
    ValueError
        When no case has been read by every reader in every arm.
    """
    frame = mrmc_reads(data, data.arms)
    if frame.empty:
        raise ValueError("no case has been read by every reader in every arm yet")
    return to_imrmc(frame, positive_class=positive_class)
