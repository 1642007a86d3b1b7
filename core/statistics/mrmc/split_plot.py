"""Split-plot MRMC: reader groups, each reading its own case set in every modality.

Within a group the design is fully crossed; across groups no case is shared, so the FOMs of two
readers in different groups are independent given the modality effects. The analysis is the
Obuchowski-Rockette one with the case covariance estimated group by group (jackknife, DeLong or
bootstrap on that group's cases) and set to 0 between groups. Averaged over all reader pairs,
Cov2 and Cov3 then become the within-group values times the fraction of reader pairs that share
cases, P / (J (J - 1)) with P = sum over groups of J_g (J_g - 1); with that substitution the OR
expected mean squares give the same F, Hillis ddf, chi-square and intervals as the crossed
analysis, which is the case G = 1 (Obuchowski, Gallas & Hillis 2012, Acad Radiol 19:1508, compare
OR methods for this design).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.statistics.mrmc.design import (
    Design,
    FomEstimates,
    _sorted,
    check_options,
    estimate_foms,
    show,
)
from core.statistics.mrmc.obuchowski_rockette import ORResult, _test_modalities


def reader_groups(frame: pd.DataFrame) -> list[list]:
    """Readers grouped by the set of cases they read (in any modality), groups in reader order.

    Raises
    ------
    ValueError
        When two groups share some cases but not all (neither crossed nor split-plot).
    """
    sets = frame.groupby("reader")["case"].apply(lambda c: frozenset(c))
    groups: dict[frozenset, list] = {}
    for reader in _sorted(frame["reader"]):
        groups.setdefault(sets[reader], []).append(reader)
    keys = list(groups)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            if a & b:
                raise ValueError(
                    f"readers {show(groups[a][0])} and {show(groups[b][0])} share "
                    f"{len(a & b)} case(s) but not all: the design is neither fully crossed nor "
                    "split-plot (each reader group must read its own case set)"
                )
    return list(groups.values())


def split_plot_analysis(
    frame: pd.DataFrame,
    *,
    fom="auc",
    cov: str = "jackknife",
    analysis: str = "random_readers",
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
) -> ORResult:
    """Obuchowski-Rockette analysis of a split-plot design (see the module doc).

    Parameters
    ----------
    frame : DataFrame
        Long reads as for :func:`core.statistics.mrmc.or_analysis`; readers fall into groups by
        the cases they read, and each group must be fully crossed (every reader of the group on
        every case of the group in every modality).
    fom, cov, analysis, alpha, n_boot, seed
        As in :func:`core.statistics.mrmc.or_analysis`.

    Returns
    -------
    ORResult
        ``n_cases`` counts all groups' cases; the variance components are the pair-averaged ones
        described in the module doc.
    """
    check_options(cov, analysis, alpha)
    groups = reader_groups(frame)
    parts = []
    for readers in groups:
        sub = frame[frame["reader"].isin(readers)]
        # each group on its own: one reader in a group is fine, the test pools the groups
        parts.append(
            estimate_foms(sub, fom=fom, cov=cov, analysis="fixed_readers", n_boot=n_boot, seed=seed)
        )
    est = _pooled(parts, frame)
    if analysis == "random_readers" and len(est.design.readers) < 2:
        raise ValueError("analysis='random_readers' needs at least 2 readers")
    return _test_modalities(est, cov, analysis, alpha)


def _pooled(parts: list[FomEstimates], frame: pd.DataFrame) -> FomEstimates:
    """One estimate over every reader: FOMs side by side, covariance block-diagonal by group."""
    modalities = parts[0].design.modalities
    for p in parts[1:]:
        if p.design.modalities != modalities:
            raise ValueError(
                f"every reader group must read every modality; one group read {modalities}, "
                f"another {p.design.modalities}"
            )
    t = len(modalities)
    readers = [r for p in parts for r in p.design.readers]
    theta = np.concatenate([p.theta for p in parts], axis=1)  # (t, J)
    j = len(readers)
    cov = np.zeros((t, j, t, j))
    start = 0
    for p in parts:
        jg = len(p.design.readers)
        block = p.cov.reshape(t, jg, t, jg)
        cov[:, start : start + jg, :, start : start + jg] = block
        start += jg
    cases = [c for p in parts for c in p.design.cases]
    truth = pd.concat([p.design.truth for p in parts], ignore_index=True)
    design = Design(readers, modalities, cases, truth, frame)
    return FomEstimates(design, parts[0].fom, theta, cov.reshape(t * j, t * j))
