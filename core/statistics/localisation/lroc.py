"""The localisation ROC (LROC): one rating and one mark per case.

On non-diseased cases the rating alone counts (a false positive above a threshold). On diseased
cases a rating counts only when the mark found the lesion: the correct-localisation fraction
PCL(z) is the share of diseased cases rated at least z *and* correctly localised. The LROC curve
plots PCL against the false-positive fraction FPF(z); it ends at (1, PCL(1)), the fraction of
diseased cases localised at all, not at (1, 1). Its area (RJafroc's ``ALROC`` with FPF = 1) is
the probability that a correctly localised diseased case outrates a non-diseased one, ties half.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LrocCurve:
    """Empirical LROC operating points, from (0, 0) to (1, PCL at FPF 1)."""

    fpf: np.ndarray
    pcl: np.ndarray

    @property
    def area(self) -> float:
        """Trapezoidal area under the empirical LROC up to FPF = 1."""
        return float(np.sum(np.diff(self.fpf) * (self.pcl[1:] + self.pcl[:-1]) / 2))


def lroc_curve(nondiseased: np.ndarray, diseased: np.ndarray, correct: np.ndarray) -> LrocCurve:
    """The LROC of one reader.

    Parameters
    ----------
    nondiseased : (K1,) ratings of the non-diseased cases
    diseased : (K2,) ratings of the diseased cases
    correct : (K2,) bool, whether each diseased case's mark found its lesion

    Raises
    ------
    ValueError
        Without a case of either kind, or with ratings and localisations of different lengths.
    """
    zk1 = np.asarray(nondiseased, dtype=float)
    zk2 = np.asarray(diseased, dtype=float)
    hit = np.asarray(correct, dtype=bool)
    if zk1.size < 1 or zk2.size < 1:
        raise ValueError(
            f"LROC needs non-diseased and diseased cases, got {zk1.size} and {zk2.size}"
        )
    if hit.shape != zk2.shape:
        raise ValueError(f"{zk2.size} diseased ratings but {hit.size} localisations")
    cl = np.where(hit, zk2, -np.inf)
    thresholds = np.unique(np.concatenate([zk1, zk2[hit]]))[::-1]
    fpf = [0.0] + [float((zk1 >= z).mean()) for z in thresholds]
    pcl = [0.0] + [float((cl >= z).mean()) for z in thresholds]
    if fpf[-1] < 1.0:  # ratings below every non-diseased one: the curve still reaches FPF = 1
        fpf.append(1.0)
        pcl.append(pcl[-1])
    return LrocCurve(np.array(fpf), np.array(pcl))


def alroc_pairs(nondiseased: np.ndarray, diseased: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """(K1, K2) kernel of the LROC area: psi(non-diseased rating, correctly localised rating)."""
    zk1 = np.asarray(nondiseased, dtype=float)[:, None]
    cl = np.where(np.asarray(correct, bool), np.asarray(diseased, dtype=float), -np.inf)[None, :]
    return (cl > zk1).astype(float) + 0.5 * (cl == zk1)
