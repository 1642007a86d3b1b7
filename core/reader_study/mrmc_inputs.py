"""A reader study's reads as MRMC input: the fully crossed reads, the two comparisons the
analysis page shows (AI-aided against unaided, the model against the readers) and the iMRMC
export. The statistics themselves are :mod:`core.statistics.mrmc`'s.
"""

from __future__ import annotations

import pandas as pd

from core.reader_study.study_data import SCORE_COLUMNS, StudyData
from core.statistics.mrmc import or_analysis, standalone_vs_readers, to_imrmc

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
    reads = data.reads[data.reads["arm"].isin(arms)]
    readers = sorted(set(reads["reader"]))
    needed = len(readers) * len(arms)
    per_case = reads.groupby("case_id")[["reader", "arm"]].apply(
        lambda g: len(set(zip(g["reader"], g["arm"], strict=True)))
    )
    crossed = set(per_case[per_case == needed].index)
    reads = reads[reads["case_id"].isin(crossed)]
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


def mrmc_aided_vs_unaided(data: StudyData, *, fom: str = "auc_macro"):
    """Obuchowski-Rockette (random readers and cases, jackknife, Hillis df) of aided against
    unaided reading.

    Raises
    ------
    ValueError
        When the reads cannot support it (the message says why).
    """
    frame = mrmc_reads(data, ["aided", "unaided"])
    _check_mrmc(frame, 2)
    return or_analysis(frame, fom=fom, cov="jackknife", analysis="random_readers")


def mrmc_model_vs_readers(data: StudyData, arm: str, *, fom: str = "auc_macro"):
    """The standalone model against the reader panel of ``arm`` on the same cases (OR analysis
    of reader-minus-model FOM differences).

    Raises
    ------
    ValueError
        When the study has no model run or the reads cannot support it.
    """
    if data.model is None:
        raise ValueError("the study has no model run to compare with")
    frame = mrmc_reads(data, [arm])
    _check_mrmc(frame, 1)
    model = data.model[data.model["case_id"].isin(set(frame["case"]))]
    model = model.rename(columns={"case_id": "case"}).drop(columns=["truth"])
    return standalone_vs_readers(frame, model, fom=fom, cov="jackknife", analysis="random_readers")


def _check_mrmc(frame: pd.DataFrame, n_modalities: int) -> None:
    readers = frame["reader"].nunique()
    if readers < 2:
        raise ValueError(f"MRMC needs at least 2 readers who read the same cases; have {readers}")
    if frame["modality"].nunique() < n_modalities:
        raise ValueError("no case has been read by every reader in both arms yet")


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
