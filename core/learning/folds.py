"""Which cases a model may learn from: the outer folds of a run and the inner early-stopping split.

Both split whole patients (every slice of a case lands on one side) and stratify by class.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from core.labels import CLASSES


def make_folds(case_ids, labels, *, n_splits: int, seed: int) -> np.ndarray:
    """Assign each entry to one of ``n_splits`` folds, stratified by class, grouped by case.

    Parameters
    ----------
    case_ids : array-like of str, shape (n,)
        Case (patient) of each entry; entries may repeat a case (e.g. one per image).
    labels : array-like of int, shape (n,)
        Class index of each entry; constant within a case.
    n_splits : int
    seed : int
        The split depends only on the set of cases, their labels and the seed, not on input
        order, so every model of a comparison gets identical folds.

    Returns
    -------
    ndarray of int, shape (n,)
        Fold number of each entry, in ``0..n_splits-1``.

    Raises
    ------
    ValueError
        If the smallest class has fewer cases than ``n_splits`` (some test fold would lack it).
    """
    case_ids = np.asarray(case_ids).astype(str)
    labels = np.asarray(labels, dtype=np.int64)
    if len(case_ids) != len(labels):
        raise ValueError(f"case_ids has {len(case_ids)} entries but labels has {len(labels)}")
    cases, first, inverse = np.unique(case_ids, return_index=True, return_inverse=True)
    case_labels = labels[first]
    if not np.array_equal(case_labels[inverse], labels):
        raise ValueError("labels must be constant within each case")
    _check_enough_cases(case_labels, n_splits)
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    case_fold = np.empty(len(cases), dtype=np.int64)
    # One row per case (sorted ids), so images per case do not weigh the stratification.
    for fold, (_, test) in enumerate(splitter.split(cases, case_labels, groups=cases)):
        case_fold[test] = fold
    return case_fold[inverse]


def _check_enough_cases(case_labels: np.ndarray, n_splits: int) -> None:
    counts = np.bincount(case_labels, minlength=len(CLASSES))
    present = [(CLASSES[c], int(n)) for c, n in enumerate(counts) if n > 0]
    name, smallest = min(present, key=lambda item: item[1])
    if n_splits < 2:
        raise ValueError(f"n_splits={n_splits}: need at least 2 folds")
    if smallest < n_splits:
        raise ValueError(
            f"n_splits={n_splits} but class {name} has only {smallest} cases: every test fold "
            f"needs at least one case of each class; use --folds <= {smallest}"
        )


def inner_split(case_ids: np.ndarray, labels: np.ndarray, *, fraction: float, seed: int):
    """Boolean mask of the early-stopping validation images: whole patients, stratified.

    Parameters
    ----------
    case_ids, labels : ndarray, shape (n,)
        The training fold's images.
    fraction : float
        About this share of the cases is held out (``round(1 / fraction)`` groups, one kept).
    seed : int

    Returns
    -------
    ndarray of bool, shape (n,)
        True for validation images. Stratified when every class has a case per group; grouped
        only otherwise.
    """
    n_splits = max(2, round(1 / fraction))
    cases, first = np.unique(case_ids, return_index=True)
    smallest = np.bincount(labels[first])[np.unique(labels[first])].min()
    if smallest < n_splits:
        splitter = GroupKFold(n_splits=min(n_splits, len(cases)), shuffle=True, random_state=seed)
        _, val = next(splitter.split(case_ids, labels, groups=case_ids))
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        _, val = next(splitter.split(case_ids, labels, groups=case_ids))
    mask = np.zeros(len(case_ids), dtype=bool)
    mask[val] = True
    return mask
