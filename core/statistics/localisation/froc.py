"""FROC data and the weighted AFROC (wAFROC) figure of merit, with RJafroc's definitions.

A reader's marks on a case are *lesion localisations* (LL: a mark on a lesion, rated) and
*non-lesion localisations* (NL: a mark anywhere else, rated); an unmarked lesion has rating -inf.
On each non-diseased case the highest NL rating is its false-positive rating (-inf without marks).
The wAFROC figure of merit (Chakraborty; RJafroc's ``wAFROC``) is

    (1 / (K1 K2)) sum_k1 sum_k2 sum_l W[k2, l] psi(FP[k1], LL[k2, l])

with psi(x, y) = 1 if y > x, 0.5 if equal, 0 otherwise, and each diseased case's lesion weights
summing to 1. It is the mean of a kernel over (non-diseased, diseased) case pairs, so the
leave-one-case-out values are closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrocData:
    """FROC ratings of every modality x reader, cases in any order.

    ``nl`` (t, J, K, max NL) and ``ll`` (t, J, K2, max lesions) hold ratings, -inf where there is
    no mark; ``diseased`` (K,) marks the diseased cases, whose order is that of ``ll``'s third
    axis; ``weights`` (K2, max lesions) the lesion weights (0 beyond a case's lesions).
    """

    nl: np.ndarray
    ll: np.ndarray
    diseased: np.ndarray
    weights: np.ndarray
    modalities: tuple
    readers: tuple
    cases: tuple

    def __post_init__(self) -> None:
        t, j, k, _ = self.nl.shape
        k2 = int(self.diseased.sum())
        if self.ll.shape[:3] != (t, j, k2) or self.weights.shape != (k2, self.ll.shape[3]):
            raise ValueError(
                f"FROC arrays disagree: NL {self.nl.shape}, LL {self.ll.shape}, weights "
                f"{self.weights.shape}, {k2} diseased of {k} cases"
            )
        if k2 < 1 or k - k2 < 1:
            raise ValueError(
                f"wAFROC needs at least one diseased and one non-diseased case, got {k2} "
                f"diseased of {k}"
            )
        if (len(self.modalities), len(self.readers), len(self.cases)) != (t, j, k):
            raise ValueError("FROC arrays disagree with the modality, reader or case names")


def equal_weights(lesions_per_case: np.ndarray, max_lesions: int) -> np.ndarray:
    """Each lesion of a case weighs 1 / (its number of lesions), as RJafroc's default."""
    counts = np.asarray(lesions_per_case, dtype=int)
    slots = np.arange(max_lesions)[None, :] < counts[:, None]
    return np.where(slots, 1.0 / np.maximum(counts, 1)[:, None], 0.0)


def false_positive_ratings(data: FrocData) -> np.ndarray:
    """The highest NL rating of every non-diseased case, (t, J, K1); -inf without a mark."""
    return data.nl[:, :, ~data.diseased, :].max(axis=-1, initial=-np.inf)


def wafroc_kernel(data: FrocData) -> np.ndarray:
    """(t, J, K1, K2): sum over a diseased case's lesions of weight x psi(FP, LL)."""
    fp = false_positive_ratings(data)[:, :, :, None, None]
    ll = data.ll[:, :, None, :, :]
    psi = (ll > fp).astype(float) + 0.5 * (ll == fp)
    return (psi * data.weights[None, None, None, :, :]).sum(axis=-1)


def wafroc(data: FrocData) -> np.ndarray:
    """The wAFROC figure of merit of every modality x reader, (t, J)."""
    return wafroc_kernel(data).mean(axis=(-2, -1))


def wafroc_jackknife(data: FrocData) -> np.ndarray:
    """Leave-one-case-out wAFROC, (t, J, K) in the cases' order."""
    return pair_kernel_jackknife(wafroc_kernel(data), data.diseased)


def pair_kernel_jackknife(kernel: np.ndarray, diseased: np.ndarray) -> np.ndarray:
    """Leave-one-case-out means of a (t, J, K1, K2) kernel over case pairs, (t, J, K).

    Leaving out a non-diseased case drops its row, a diseased case its column; ``diseased`` (K,)
    says which case is which, in the order of the kernel's rows and columns.
    """
    k1, k2 = kernel.shape[-2:]
    if k1 < 2 or k2 < 2:
        raise ValueError(
            f"the jackknife needs at least 2 non-diseased and 2 diseased cases, got {k1} and {k2}"
        )
    total = kernel.sum(axis=(-2, -1))
    out = np.empty((*kernel.shape[:2], diseased.size))
    out[:, :, ~diseased] = (total[..., None] - kernel.sum(axis=-1)) / ((k1 - 1) * k2)
    out[:, :, diseased] = (total[..., None] - kernel.sum(axis=-2)) / (k1 * (k2 - 1))
    return out


def afroc_points(fp: np.ndarray, ll: np.ndarray, weights: np.ndarray) -> tuple:
    """Empirical weighted AFROC of one reader: (FPF, wLLF) from (0, 0) to (1, 1).

    ``fp`` (K1,) false-positive ratings, ``ll`` (K2, L) lesion ratings, ``weights`` (K2, L).
    """
    marks = np.concatenate([fp[np.isfinite(fp)], ll[np.isfinite(ll)]])
    thresholds = np.unique(marks)[::-1]
    fpf = [0.0] + [float((fp >= z).mean()) for z in thresholds]
    wllf = [0.0] + [float((weights * (ll >= z)).sum() / ll.shape[0]) for z in thresholds]
    return np.array([*fpf, 1.0]), np.array([*wllf, 1.0])


def froc_points(nl: np.ndarray, ll: np.ndarray, lesions: int) -> tuple:
    """Empirical FROC of one reader: (NLF, LLF), NL marks per case against lesions found.

    ``nl`` (K, max NL) NL ratings of every case, ``ll`` (K2, L) lesion ratings, ``lesions`` the
    number of lesions in all.
    """
    marks = np.concatenate([nl[np.isfinite(nl)], ll[np.isfinite(ll)]])
    thresholds = np.unique(marks)[::-1]
    nlf = [0.0] + [float((nl >= z).sum() / nl.shape[0]) for z in thresholds]
    llf = [0.0] + [float((ll >= z).sum() / max(lesions, 1)) for z in thresholds]
    return np.array(nlf), np.array(llf)
