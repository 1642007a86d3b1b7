"""Which cases a new reader study reads: a stratified random sample that keeps every class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.data.labels import CLASSES

RUN_COHORT = "the model run's own cohort"  # the study page's default choice of cohorts


def stratified_sample(cases: pd.DataFrame, n: int, *, seed: int = 0) -> list[str]:
    """``n`` case ids drawn at random within each class, in proportion to the class counts.

    Every class present keeps at least one case (so the rare ASC class is never dropped); the
    remaining places go to the largest fractional shares (Hamilton's method).

    Parameters
    ----------
    cases : pandas.DataFrame
        Columns ``case_id, label`` (as :func:`db.cases_frame`); unlabelled cases are skipped.
    n : int
        The sample size.
    seed : int
        Seeds the draw within each class.

    Returns
    -------
    list of str
        The chosen case ids, sorted.

    Raises
    ------
    ValueError
        If ``n`` is not between the number of classes present and the number of cases.
    """
    labelled = cases[cases["label"].isin(CLASSES)]
    total = len(labelled)
    present = [c for c in CLASSES if (labelled["label"] == c).any()]
    if not len(present) <= n <= total:
        raise ValueError(
            f"sample size {n} is not allowed: choose between {len(present)} (one per class) "
            f"and {total} (all labelled cases)"
        )
    counts = np.array([(labelled["label"] == c).sum() for c in present])
    quota = counts * n / total
    take = np.maximum(1, np.floor(quota).astype(int))
    while take.sum() > n:  # the floor of 1 per class may overshoot: trim the largest class
        take[np.argmax(take)] -= 1
    order = np.argsort(-(quota - np.floor(quota)), kind="stable")
    take[order[: n - int(take.sum())]] += 1  # fewer than one per class are ever left over
    rng = np.random.default_rng(seed)
    chosen: list[str] = []
    for name, k in zip(present, take, strict=True):
        ids = np.sort(labelled.loc[labelled["label"] == name, "case_id"].astype(str).to_numpy())
        chosen.extend(rng.choice(ids, size=int(k), replace=False).tolist())
    return sorted(chosen)


def default_cohorts(conn, model_run_id: str | None) -> list[str]:
    """The cohorts a new study draws from unless the admin picks others: the model run's own
    cohort (the cases it predicted out of fold), else the default cohort.

    External validation cohorts are never drawn by default: a study compares readers with the
    model on the cases the model was cross-validated on.
    """
    import db

    if model_run_id:
        cohorts = db.run_cohorts(conn, model_run_id)
        if cohorts:
            return cohorts
    return [db.cases.DEFAULT_COHORT]


def cases_in_cohorts(cases: pd.DataFrame, cohorts) -> pd.DataFrame:
    """The rows of ``cases`` (as :func:`db.cases_frame`) in ``cohorts``.

    Raises
    ------
    ValueError
        If no cohort is given, or one has no case.
    """
    chosen = list(dict.fromkeys(str(c) for c in cohorts))
    if not chosen:
        raise ValueError("choose at least one cohort to draw the study's cases from")
    empty = [c for c in chosen if not (cases["cohort"] == c).any()]
    if empty:
        raise ValueError(f"cohort(s) {', '.join(empty)} hold no case; known: "
                         f"{', '.join(sorted(cases['cohort'].unique()))}")  # fmt: skip
    return cases[cases["cohort"].isin(chosen)]
