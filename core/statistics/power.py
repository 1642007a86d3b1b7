"""Power and sample size of an MRMC study from a pilot's Obuchowski-Rockette variance components.

Method: Hillis, Obuchowski and Berbaum (2011), "Power estimation for multireader ROC methods: an
updated and unified approach", Acad Radiol 18:129-142, as RJafroc's ``SsPowerGivenJK`` and
``SsSampleSizeKGivenJ`` implement it. For J readers and K cases in the pivotal study, with the
pilot's K* cases and OR components (Var, Cov1, Cov2, Cov3, Var(T*R)), the case components scale
with K*/K (a variance of a FOM falls as 1/cases) and, with d the effect size (AUC difference):

- random readers and cases: den = Var(T*R) + (K*/K) [Var - Cov1 + (J-1) max(Cov2 - Cov3, 0)];
  non-centrality J d^2 / (2 den); F(1, ddf) with ddf = den^2 (J-1) / [Var(T*R) + (K*/K)
  (Var - Cov1 - max(Cov2 - Cov3, 0))]^2;
- fixed readers (random cases): den without Var(T*R); a chi-square test on 1 df;
- fixed cases (random readers): den = Var(T*R) + (K*/K)(Var - Cov1 - max(Cov2 - Cov3, 0));
  F(1, J-1).

Var(T*R) is clipped at 0, as RJafroc does. Power is P(non-central F or chi-square > the critical
value of the two-sided level-alpha test).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

POWER_ANALYSES = {
    "random": "random readers and random cases (RRRC)",
    "fixed_readers": "fixed readers, random cases (FRRC)",
    "fixed_cases": "random readers, fixed cases (RRFC)",
}
_ALIASES = {"rrrc": "random", "frrc": "fixed_readers", "rrfc": "fixed_cases"}
MAX_CASES = 2000  # the search's upper bound, as RJafroc's


@dataclass(frozen=True)
class VarianceComponents:
    """A pilot study's OR variance components: what power and sample size are computed from."""

    var_tr: float  # Var(T*R), the modality x reader variance component
    var: float  # Var: same reader, same modality (the error variance)
    cov1: float  # same reader, other modality
    cov2: float  # other reader, same modality
    cov3: float  # other reader, other modality
    n_cases: int  # K*, the pilot's cases (the case components are for this many)
    effect_size: float | None = None  # the pilot's observed difference, if it had one
    n_readers: int | None = None  # the pilot's readers, for the record

    def __post_init__(self):
        for name in ("var_tr", "var", "cov1", "cov2", "cov3"):
            value = getattr(self, name)
            if not np.isfinite(value):
                raise ValueError(f"{name}={value!r} is not allowed: use a finite number")
        if self.var < 0:
            raise ValueError(f"var={self.var!r} is not allowed: a variance is >= 0")
        if not isinstance(self.n_cases, int | np.integer) or self.n_cases < 2:
            raise ValueError(
                f"n_cases={self.n_cases!r} is not allowed: use the pilot's cases, >= 2"
            )

    @classmethod
    def from_or_result(cls, result) -> VarianceComponents:
        """The components of a two-modality :class:`core.statistics.mrmc.ORResult`.

        The effect size is the first modality's mean FOM minus the second's, as the result's
        difference table gives it.
        """
        if len(result.modality_means) != 2:
            raise ValueError(
                f"power needs a pilot with exactly 2 modalities, got {len(result.modality_means)}"
            )
        return cls(
            var_tr=float(result.var_TR),
            var=float(result.var_error),
            cov1=float(result.cov1),
            cov2=float(result.cov2),
            cov3=float(result.cov3),
            n_cases=int(result.n_cases),
            effect_size=float(result.differences["difference"].iloc[0]),
            n_readers=int(result.n_readers),
        )


@dataclass(frozen=True)
class PowerResult:
    """Power of one design; see :func:`power_given_jk`."""

    analysis: str
    n_readers: int
    n_cases: int
    effect_size: float
    alpha: float
    power: float
    ncp: float  # non-centrality parameter
    ddf: float  # denominator degrees of freedom (inf for the chi-square test)
    critical: float  # critical value of the F (or chi-square) statistic

    def summary(self) -> str:
        """One sentence in words."""
        return (
            f"With {self.n_readers} readers and {self.n_cases} cases, a study has "
            f"{self.power:.1%} power to detect an AUC difference of {self.effect_size:+.4f} at "
            f"two-sided alpha {self.alpha:g}, treating {POWER_ANALYSES[self.analysis]}."
        )


def _analysis(analysis: str) -> str:
    key = _ALIASES.get(str(analysis).lower(), analysis)
    if key not in POWER_ANALYSES:
        raise ValueError(
            f"analysis={analysis!r} is not allowed: use one of {', '.join(POWER_ANALYSES)} "
            "(or RRRC, FRRC, RRFC)"
        )
    return key


def _check(n_readers, n_cases, effect_size, alpha, analysis) -> None:
    if not isinstance(n_readers, int | np.integer) or n_readers < 1:
        raise ValueError(f"n_readers={n_readers!r} is not allowed: use an integer >= 1")
    if analysis != "fixed_readers" and n_readers < 2:
        raise ValueError(
            f"n_readers={n_readers} is too few for random readers: use >= 2 or "
            "analysis='fixed_readers'"
        )
    if not isinstance(n_cases, int | np.integer) or n_cases < 2:
        raise ValueError(f"n_cases={n_cases!r} is not allowed: use an integer >= 2")
    if effect_size is None or not np.isfinite(effect_size) or effect_size == 0:
        raise ValueError(
            f"effect_size={effect_size!r} is not allowed: give the AUC difference to detect "
            "(non-zero)"
        )
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")


def power_given_jk(
    components: VarianceComponents,
    *,
    n_readers: int,
    n_cases: int,
    effect_size: float | None = None,
    analysis: str = "random",
    alpha: float = 0.05,
) -> PowerResult:
    """Power of a pivotal study with ``n_readers`` readers and ``n_cases`` cases.

    Parameters
    ----------
    components : VarianceComponents
        The pilot's OR components (:meth:`VarianceComponents.from_or_result`, or typed in).
    n_readers, n_cases : int
        J and K of the pivotal study.
    effect_size : float, optional
        The AUC difference to detect; default the pilot's observed difference.
    analysis : {"random", "fixed_readers", "fixed_cases"}
        What the pivotal study's analysis will treat as random (RJafroc's RRRC, FRRC, RRFC).
    alpha : float, default 0.05

    Returns
    -------
    PowerResult
    """
    analysis = _analysis(analysis)
    effect = components.effect_size if effect_size is None else effect_size
    _check(n_readers, n_cases, effect, alpha, analysis)
    c, j, scale = components, int(n_readers), components.n_cases / n_cases
    var_tr = max(c.var_tr, 0.0)
    reader_pairs = max(c.cov2 - c.cov3, 0.0)
    if analysis == "fixed_readers":
        den = scale * (c.var - c.cov1 + (j - 1) * reader_pairs)
        ddf = np.inf
    elif analysis == "fixed_cases":
        den = var_tr + scale * (c.var - c.cov1 - reader_pairs)
        ddf = float(j - 1)
    else:
        den = var_tr + scale * (c.var - c.cov1 + (j - 1) * reader_pairs)
        ddf = den**2 * (j - 1) / (var_tr + scale * (c.var - c.cov1 - reader_pairs)) ** 2
    if den <= 0:
        raise ValueError(
            "the variance components give a non-positive error term "
            f"({den:.3g}): check Var, Cov1, Cov2, Cov3 and Var(T*R)"
        )
    ncp = effect**2 * j / 2 / den
    if np.isinf(ddf):
        critical = float(sps.chi2.ppf(1 - alpha, 1))
        power = float(sps.ncx2.sf(critical, 1, ncp))
    else:
        critical = float(sps.f.ppf(1 - alpha, 1, ddf))
        power = float(sps.ncf.sf(critical, 1, ddf, ncp))
    return PowerResult(analysis, j, int(n_cases), float(effect), alpha, power, ncp, ddf, critical)


def cases_for_power(
    components: VarianceComponents,
    *,
    n_readers: int,
    effect_size: float | None = None,
    target: float = 0.8,
    analysis: str = "random",
    alpha: float = 0.05,
    max_cases: int = MAX_CASES,
) -> PowerResult:
    """The smallest number of cases K (2..``max_cases``) whose power reaches ``target``.

    Power rises with K, so the search is a bisection; the answer is the same as RJafroc's
    ``SsSampleSizeKGivenJ`` scan from K = 2 upwards.

    Returns
    -------
    PowerResult
        At that K.

    Raises
    ------
    ValueError
        When even ``max_cases`` cases do not reach the target (more readers are needed: with
        random readers, power is capped by the reader variance however many cases are read).
    """
    if not 0 < target < 1:
        raise ValueError(f"target={target!r} is not allowed: use a power between 0 and 1")

    def at(k: int) -> PowerResult:
        return power_given_jk(
            components,
            n_readers=n_readers,
            n_cases=k,
            effect_size=effect_size,
            analysis=analysis,
            alpha=alpha,
        )

    best = at(max_cases)
    if best.power < target:
        raise ValueError(
            f"{n_readers} readers do not reach power {target:g} with up to {max_cases} cases "
            f"(power {best.power:.3f} at {max_cases}): add readers or a larger effect size"
        )
    low, high = 1, max_cases  # power(low) < target <= power(high); K = 1 is never a design
    while high - low > 1:
        mid = (low + high) // 2
        if at(mid).power >= target:
            high = mid
        else:
            low = mid
    return at(high)


def power_table(
    components: VarianceComponents,
    *,
    readers,
    cases,
    effect_size: float | None = None,
    analysis: str = "random",
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Power for every readers x cases pair: rows readers J, columns cases K."""
    readers, cases = [int(j) for j in readers], [int(k) for k in cases]
    grid = [
        [
            power_given_jk(
                components,
                n_readers=j,
                n_cases=k,
                effect_size=effect_size,
                analysis=analysis,
                alpha=alpha,
            ).power
            for k in cases
        ]
        for j in readers
    ]
    return pd.DataFrame(
        grid, index=pd.Index(readers, name="readers"), columns=pd.Index(cases, name="cases")
    )


def cases_table(
    components: VarianceComponents,
    *,
    readers,
    effect_size: float | None = None,
    target: float = 0.8,
    analysis: str = "random",
    alpha: float = 0.05,
    max_cases: int = MAX_CASES,
) -> pd.DataFrame:
    """For each number of readers, the cases needed for ``target`` power (as RJafroc's
    ``SsPowerTable``): ``readers, cases, power``; cases is NaN where ``max_cases`` is not enough."""
    rows = []
    for j in readers:
        try:
            found = cases_for_power(
                components,
                n_readers=int(j),
                effect_size=effect_size,
                target=target,
                analysis=analysis,
                alpha=alpha,
                max_cases=max_cases,
            )
            rows.append({"readers": int(j), "cases": found.n_cases, "power": found.power})
        except ValueError as exc:
            if "do not reach power" not in str(exc):
                raise
            rows.append({"readers": int(j), "cases": np.nan, "power": np.nan})
    return pd.DataFrame(rows, columns=["readers", "cases", "power"])
