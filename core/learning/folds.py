"""Which cases a model may learn from: the outer folds of a run and the inner early-stopping split.

Both split whole patients (every slice of a case lands on one side) and stratify by class.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import GroupKFold, StratifiedGroupKFold

from core.data.labels import CLASSES


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


def make_site_folds(case_ids, sites, labels, *, n_splits: int, seed: int) -> np.ndarray:
    """Assign each entry to a fold so that every site lies wholly in one fold.

    Leave-one-site-out when there are at most ``n_splits`` sites (then there is one fold per
    site, numbered in sorted site order); otherwise sites are grouped into ``n_splits`` folds by
    ``GroupKFold`` (shuffled with ``seed``), so a test fold holds whole sites the model never saw.

    Parameters
    ----------
    case_ids : array-like of str, shape (n,)
        Case (patient) of each entry.
    sites : array-like of str, shape (n,)
        Site of each entry; constant within a case, never empty.
    labels : array-like of int, shape (n,)
        Class index of each entry (checked constant within a case; not stratified: whole sites
        cannot be balanced by class).
    n_splits : int
        The most folds wanted; fewer sites mean fewer folds.
    seed : int

    Returns
    -------
    ndarray of int, shape (n,)
        Fold number of each entry, in ``0..n_folds-1`` with ``n_folds = min(n_splits, n_sites)``.

    Raises
    ------
    ValueError
        If a site is missing, a case spans two sites, there are fewer than 2 sites, or
        ``n_splits`` < 2.
    """
    case_ids = np.asarray(case_ids).astype(str)
    labels = np.asarray(labels, dtype=np.int64)
    site_values = np.asarray(sites, dtype=object)
    if not len(case_ids) == len(labels) == len(site_values):
        raise ValueError("case_ids, sites and labels must have one entry each per image")
    if any(s is None or (isinstance(s, float) and s != s) or str(s).strip() == "" for s in sites):
        raise ValueError("every case needs a site for site-grouped folds (manifest column site)")
    site_values = site_values.astype(str)
    cases, first, inverse = np.unique(case_ids, return_index=True, return_inverse=True)
    if not np.array_equal(site_values[first][inverse], site_values):
        raise ValueError("a case lies in two sites; each case must come from one site")
    if not np.array_equal(labels[first][inverse], labels):
        raise ValueError("labels must be constant within each case")
    names, site_of_case = np.unique(site_values[first], return_inverse=True)
    if n_splits < 2:
        raise ValueError(f"n_splits={n_splits}: need at least 2 folds")
    if len(names) < 2:
        raise ValueError(f"only one site ({names[0]}): site-grouped folds need at least 2 sites")
    if len(names) <= n_splits:
        return site_of_case[inverse].astype(np.int64)  # leave one site out
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    case_fold = np.empty(len(cases), dtype=np.int64)
    for fold, (_, test) in enumerate(splitter.split(cases, groups=site_of_case)):
        case_fold[test] = fold
    return case_fold[inverse]


def assign_folds(case_ids, labels, cfg) -> np.ndarray:
    """The outer folds a run's config asks for: patient-grouped and stratified (the default), or
    site-grouped when ``cfg.extra["group_by"] == "site"`` with ``cfg.extra["sites"]`` mapping each
    case to its site (see :func:`make_site_folds`; ``cfg.n_folds`` must then equal
    ``min(folds wanted, number of sites)``, which ``cervixscope cv --group-by site`` sets).

    Raises
    ------
    ValueError
        When site grouping gives another number of folds than ``cfg.n_folds``.
    """
    if cfg.extra.get("group_by", "patient") != "site":
        return make_folds(case_ids, labels, n_splits=cfg.n_folds, seed=cfg.seed)
    sites = cfg.extra.get("sites") or {}
    site_of = [sites.get(str(case)) for case in np.asarray(case_ids).astype(str)]
    folds = make_site_folds(case_ids, site_of, labels, n_splits=cfg.n_folds, seed=cfg.seed)
    if folds.max() + 1 != cfg.n_folds:
        raise ValueError(
            f"{len(set(site_of))} sites give {folds.max() + 1} site-grouped folds, not "
            f"n_folds={cfg.n_folds}; use --folds {folds.max() + 1}"
        )
    return folds
