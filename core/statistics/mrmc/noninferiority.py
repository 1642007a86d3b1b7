"""Non-inferiority: is a new reading (AI-aided, or the model) no worse than a reference by more
than a margin?

One-sided test of H0: new - reference <= -margin against H1: new - reference > -margin, with the
standard error and degrees of freedom of the MRMC analysis (Hillis' t for random readers, z for
fixed readers). Equivalently, non-inferiority holds when the lower bound of the two-sided
(1 - 2 alpha) interval of the difference lies above -margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class NonInferiorityResult:
    """A one-sided non-inferiority test; see :func:`noninferiority_test`."""

    new: str
    reference: str
    fom: str
    margin: float
    alpha: float
    difference: float  # new - reference
    se: float
    df: float  # inf: a z-test
    statistic: float  # (difference + margin) / se
    p_value: float  # one-sided
    lower_bound: float  # one-sided (1 - alpha) lower confidence bound of the difference

    @property
    def non_inferior(self) -> bool:
        return bool(self.p_value < self.alpha)

    def summary(self) -> str:
        """The margin and the conclusion in words."""
        level = int(round((1 - self.alpha) * 100))
        verdict = (
            f"{self.new} is non-inferior to {self.reference}"
            if self.non_inferior
            else f"non-inferiority of {self.new} to {self.reference} is not shown"
        )
        return (
            f"Non-inferiority margin {self.margin:.3f} in {self.fom}: {self.new} minus "
            f"{self.reference} = {self.difference:+.3f}, one-sided {level}% lower bound "
            f"{self.lower_bound:+.3f} (p = {self.p_value:.3g}, one-sided); the bound is "
            f"{'above' if self.non_inferior else 'not above'} -{self.margin:.3f}, so {verdict}."
        )


def noninferiority_test(
    difference: float,
    se: float,
    df: float,
    *,
    margin: float,
    alpha: float = 0.05,
    new: str = "new",
    reference: str = "reference",
    fom: str = "FOM",
) -> NonInferiorityResult:
    """One-sided non-inferiority test of ``difference = new - reference`` with a margin.

    Parameters
    ----------
    difference, se : float
        The estimated difference (new minus reference) and its standard error.
    df : float
        Degrees of freedom of the t reference distribution; ``inf`` for a z-test.
    margin : float
        The largest loss still acceptable, > 0 (e.g. 0.05 AUC).
    alpha : float, default 0.05
        One-sided level.
    new, reference, fom : str
        Names used in the summary.

    Returns
    -------
    NonInferiorityResult
    """
    if not np.isfinite(margin) or margin <= 0:
        raise ValueError(f"margin={margin!r} is not allowed: use a positive number (e.g. 0.05)")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")
    if not se >= 0:
        raise ValueError(f"se={se!r} is not allowed: a standard error is >= 0")
    dist = sps.norm if np.isinf(df) else sps.t(df)
    shifted = difference + margin
    if se == 0:
        stat = np.copysign(np.inf, shifted) if shifted else 0.0
    else:
        stat = shifted / se
    p = float(dist.sf(stat))
    lower = float(difference - dist.ppf(1 - alpha) * se)
    return NonInferiorityResult(
        new,
        reference,
        fom,
        float(margin),
        alpha,
        float(difference),
        float(se),
        float(df),
        float(stat),
        p,
        lower,
    )


def modality_noninferiority(result, *, new, reference, margin: float, alpha: float = 0.05):
    """Non-inferiority of modality ``new`` to ``reference`` from an :class:`ORResult`.

    Uses the OR analysis' standard error of a difference of modality means and its degrees of
    freedom (Hillis' ddf for random readers; z for fixed readers).
    """
    modalities = list(result.modality_means.index)
    for name, value in (("new", new), ("reference", reference)):
        if value not in modalities:
            raise ValueError(f"{name}={value!r} is not a modality of the result: {modalities}")
    if new == reference:
        raise ValueError("new and reference are the same modality: pick two different ones")
    diff = float(result.modality_means[new] - result.modality_means[reference])
    se = float(result.differences["se"].iloc[0])
    return noninferiority_test(
        diff,
        se,
        result.ddf,
        margin=margin,
        alpha=alpha,
        new=str(new),
        reference=str(reference),
        fom=result.fom,
    )


def model_noninferiority(result, *, margin: float, alpha: float = 0.05, new: str = "model"):
    """Non-inferiority from a :class:`StandaloneResult`: of the model to the readers
    (``new="model"``) or of the readers to the model (``new="readers"``)."""
    if new not in ("model", "readers"):
        raise ValueError(f"new={new!r} is not allowed: use 'model' or 'readers'")
    sign = -1.0 if new == "model" else 1.0  # the result's difference is readers - model
    reference = "readers" if new == "model" else "model"
    return noninferiority_test(
        sign * result.difference,
        result.se,
        result.df,
        margin=margin,
        alpha=alpha,
        new=new,
        reference=reference,
        fom=result.fom,
    )
