"""The Obuchowski-Rockette test of modalities, with random or fixed readers (Hillis' ddf).

Random readers: F = MS(T) / [MS(T*R) + J max(Cov2 - Cov3, 0)] on (t-1, ddf_H) degrees of freedom.
Fixed readers: chi-square = (t-1) MS(T) / [Var - Cov1 + (J-1) max(Cov2 - Cov3, 0)] on t-1
degrees of freedom. Each modality also gets its mean FOM with a single-modality interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.statistics.mrmc.covariance import (
    jackknife_covariance,
    or_components,
    reader_components,
)
from core.statistics.mrmc.design import Design, FomEstimates, check_options, estimate_foms
from core.statistics.mrmc.figures_of_merit import Fom

DIFFERENCE_COLUMNS = [
    "modality_a",
    "modality_b",
    "difference",
    "se",
    "df",
    "statistic",
    "p_value",
    "ci_low",
    "ci_high",
]


@dataclass
class ORResult:
    """Obuchowski-Rockette analysis of one FOM; see :func:`or_analysis`."""

    fom: str
    cov: str
    analysis: str
    alpha: float
    foms: pd.DataFrame  # index reader, columns modality
    modality_means: pd.Series
    modality_ci: pd.DataFrame  # modality, estimate, se, df, ci_low, ci_high
    differences: pd.DataFrame  # modality_a, modality_b, difference, se, df, statistic, p, CI
    statistic: float  # F (random readers) or chi-square (fixed readers)
    df1: float
    ddf: float  # Hillis ddf; inf for fixed readers
    p_value: float
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    var_R: float
    var_TR: float
    ms_T: float
    ms_R: float
    ms_TR: float
    n_cases: int

    @property
    def F(self) -> float:
        """The F statistic (chi-square / df1 for fixed readers, i.e. F on (df1, inf))."""
        return self.statistic if self.analysis == "random_readers" else self.statistic / self.df1

    @property
    def n_readers(self) -> int:
        return self.foms.shape[0]

    def summary(self) -> str:
        """One plain-language sentence on the result."""
        means = ", ".join(f"{m}: {v:.3f}" for m, v in self.modality_means.items())
        text = f"Mean {self.fom} over {self.n_readers} readers and {self.n_cases} cases: {means}."
        if self.differences.empty:
            return text
        row = next(self.differences.itertuples(index=False))._asdict()
        level = int(round((1 - self.alpha) * 100))
        verdict = "a statistically significant" if self.p_value < self.alpha else "no significant"
        scope = (
            "new readers and new cases"
            if self.analysis == "random_readers"
            else "new cases read by these readers"
        )
        stat = (
            f"F = {self.statistic:.2f} on {self.df1:g} and {self.ddf:.1f} df"
            if self.analysis == "random_readers"
            else f"chi-square = {self.statistic:.2f} on {self.df1:g} df"
        )
        return (
            f"{text} {row['modality_a']} minus {row['modality_b']} = {row['difference']:+.3f} "
            f"({level}% CI {row['ci_low']:+.3f} to {row['ci_high']:+.3f}): {verdict} difference "
            f"({stat}, p = {self.p_value:.3g}), generalising to {scope}."
        )

    def to_frame(self) -> pd.DataFrame:
        """The MRMC table: one row per modality (mean FOM with CI) and per difference."""
        rows = [
            {
                "row": str(r["modality"]),
                "kind": "modality",
                "estimate": r["estimate"],
                "se": r["se"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "p_value": np.nan,
            }
            for r in (t._asdict() for t in self.modality_ci.itertuples(index=False))
        ]
        rows += [
            {
                "row": f"{r['modality_a']} - {r['modality_b']}",
                "kind": "difference",
                "estimate": r["difference"],
                "se": r["se"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "p_value": r["p_value"],
            }
            for r in (t._asdict() for t in self.differences.itertuples(index=False))
        ]
        return pd.DataFrame(
            rows, columns=["row", "kind", "estimate", "se", "ci_low", "ci_high", "p_value"]
        )


def safe_ratio(num: float, den: float) -> float:
    """num / den where 0 / 0 (identical modalities) is 0, not NaN."""
    if num == 0:
        return 0.0
    return float(num / den) if den > 0 else float(np.copysign(np.inf, num))


def reader_mean_interval(
    foms: np.ndarray, var: float, cov2: float, analysis: str, alpha: float
) -> tuple[float, float, float]:
    """Standard error, degrees of freedom and two-sided quantile of the mean of J readers' FOMs.

    Random readers (Hillis): ``se^2 = MS_R / J + max(Cov2, 0)`` on ``df = (MS_R + J max(Cov2,
    0))^2 / (MS_R^2 / (J-1))``, a t quantile. Fixed readers: ``se^2 = (Var + (J-1) max(Cov2, 0))
    / J``, a normal quantile.
    """
    j = foms.size
    if analysis == "random_readers":
        ms_r = float(((foms - foms.mean()) ** 2).sum() / (j - 1))
        den = ms_r + j * max(cov2, 0.0)
        df = den**2 / (ms_r**2 / (j - 1)) if ms_r > 0 else np.inf
        return float(np.sqrt(den / j)), df, sps.t.ppf(1 - alpha / 2, df)
    se = float(np.sqrt((var + (j - 1) * max(cov2, 0.0)) / j))
    return se, np.inf, sps.norm.ppf(1 - alpha / 2)


@dataclass
class _MeanSquares:
    ms_T: float
    ms_R: float
    ms_TR: float
    var_R: float
    var_TR: float


def _mean_squares(theta: np.ndarray, var: float, cov1: float, cov2: float, cov3: float):
    """Mean squares of the (t, J) FOMs and the OR reader variance components."""
    t, j = theta.shape
    grand = theta.mean()
    mod_means = theta.mean(axis=1)
    rdr_means = theta.mean(axis=0)
    ms_T = j * ((mod_means - grand) ** 2).sum() / (t - 1) if t > 1 else np.nan
    ms_R = t * ((rdr_means - grand) ** 2).sum() / (j - 1) if j > 1 else np.nan
    resid = theta - mod_means[:, None] - rdr_means[None, :] + grand
    ms_TR = (resid**2).sum() / ((t - 1) * (j - 1)) if t > 1 and j > 1 else np.nan
    var_TR = ms_TR - var + cov1 + max(cov2 - cov3, 0.0) if t > 1 else np.nan
    var_R = (
        (ms_R - var - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - (var_TR if t > 1 else 0.0)) / t
        if j > 1
        else np.nan
    )
    return _MeanSquares(float(ms_T), float(ms_R), float(ms_TR), float(var_R), float(var_TR))


@dataclass
class _ModalityTest:
    statistic: float
    ddf: float
    p_value: float
    se_diff: float  # standard error of a difference of two modality means
    q: float  # two-sided quantile for the difference CIs


def _modality_test(ms: _MeanSquares, components, t: int, j: int, analysis: str, alpha: float):
    """The OR test that all modalities have the same mean FOM (nothing to test when t = 1)."""
    var, cov1, cov2, cov3 = components
    if analysis == "random_readers":
        den = ms.ms_TR + j * max(cov2 - cov3, 0.0)
        ddf = den**2 / (ms.ms_TR**2 / ((t - 1) * (j - 1))) if t > 1 and ms.ms_TR > 0 else np.inf
        stat = safe_ratio(ms.ms_T, den) if t > 1 else np.nan
        p_value = float(sps.f.sf(stat, t - 1, ddf)) if t > 1 else np.nan
        q = sps.t.ppf(1 - alpha / 2, ddf) if t > 1 else np.nan
    else:
        den = var - cov1 + (j - 1) * max(cov2 - cov3, 0.0)
        ddf = np.inf
        stat = safe_ratio((t - 1) * ms.ms_T, den) if t > 1 else np.nan
        p_value = float(sps.chi2.sf(stat, t - 1)) if t > 1 else np.nan
        q = sps.norm.ppf(1 - alpha / 2)
    se_diff = np.sqrt(2 * den / j) if t > 1 else np.nan
    return _ModalityTest(float(stat), float(ddf), p_value, se_diff, q)


def _differences(modalities: list, means: np.ndarray, test: _ModalityTest, analysis: str):
    """One row per pair of modalities: difference of means, its CI and two-sided p-value."""
    rows = []
    for a, b in combinations(range(len(modalities)), 2):
        d = float(means[a] - means[b])
        z = safe_ratio(d, test.se_diff)
        if analysis == "random_readers":
            p = float(2 * sps.t.sf(abs(z), test.ddf))
        else:
            p = float(2 * sps.norm.sf(abs(z)))
        rows.append(
            {
                "modality_a": modalities[a],
                "modality_b": modalities[b],
                "difference": d,
                "se": test.se_diff,
                "df": test.ddf,
                "statistic": z,
                "p_value": p if d != 0 else 1.0,
                "ci_low": d - test.q * test.se_diff,
                "ci_high": d + test.q * test.se_diff,
            }
        )
    return pd.DataFrame(rows, columns=DIFFERENCE_COLUMNS)


def _modality_intervals(est: FomEstimates, analysis: str, alpha: float) -> pd.DataFrame:
    """Each modality's mean FOM with its single-modality interval (Hillis 2007)."""
    t, j = est.theta.shape
    blocks = est.cov.reshape(t, j, t, j)
    rows = []
    for i, name in enumerate(est.design.modalities):
        var_i, cov2_i = reader_components(blocks[i, :, i, :])
        se_i, df_i, q_i = reader_mean_interval(est.theta[i], var_i, cov2_i, analysis, alpha)
        mean = est.theta.mean(axis=1)[i]
        rows.append(
            {
                "modality": name,
                "estimate": float(mean),
                "se": se_i,
                "df": df_i,
                "ci_low": mean - q_i * se_i,
                "ci_high": mean + q_i * se_i,
                "var_error": var_i,
                "cov2": cov2_i,
            }
        )
    return pd.DataFrame(rows)


def or_analysis(
    frame: pd.DataFrame,
    *,
    fom="auc",
    cov: str = "jackknife",
    analysis: str = "random_readers",
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
    readers: str | None = None,
) -> ORResult:
    """Obuchowski-Rockette MRMC analysis of reads (random or fixed readers, random cases).

    Parameters
    ----------
    frame : DataFrame
        Long reads: ``reader, modality, case, truth`` and the FOM's columns (see module doc).
    fom : str or callable, default "auc"
        ``"auc"`` (Wilcoxon, binary truth, column ``score``); ``"auc:<class>"`` (one-vs-rest
        from ``c_<class>``); ``"auc_macro"`` (mean of the three); ``"accuracy"``,
        ``"sensitivity:<class>"``, ``"specificity:<class>"`` (from ``label`` or ``score``);
        or ``callable(truth, score) -> float`` over one reader-modality's cases.
    cov : {"jackknife", "delong", "bootstrap"}
        How the case covariance of the FOMs is estimated. ``delong`` needs a single-AUC FOM;
        ``bootstrap`` resamples cases within each truth class (seeded).
    analysis : {"random_readers", "fixed_readers"}
    alpha : float, default 0.05
    n_boot, seed : int
        Bootstrap only.
    readers : {"random", "fixed"}, optional
        The spelling in docs/ARCHITECTURE.md; overrides ``analysis`` when given.

    Returns
    -------
    ORResult

    Raises
    ------
    ValueError
        Missing columns, an incomplete design, a FOM that is undefined on these cases, or
        random readers with fewer than 2 readers.
    """
    if readers is not None:
        if readers not in ("random", "fixed"):
            raise ValueError(f"readers={readers!r} is not allowed: use 'random' or 'fixed'")
        analysis = f"{readers}_readers"
    check_options(cov, analysis, alpha)
    est = estimate_foms(frame, fom=fom, cov=cov, analysis=analysis, n_boot=n_boot, seed=seed)
    return _test_modalities(est, cov, analysis, alpha)


def or_analysis_of_jackknife(
    name: str,
    jackknife: np.ndarray,
    theta: np.ndarray,
    *,
    modalities: list,
    readers: list,
    cases: list,
    analysis: str = "random_readers",
    alpha: float = 0.05,
) -> ORResult:
    """The OR analysis of any FOM given by its values ``theta`` (t, J) and its leave-one-case-out
    values ``jackknife`` (t, J, K): for figures of merit the reads table cannot express (wAFROC
    and LROC areas of localisation reads).

    Raises
    ------
    ValueError
        On shapes that disagree, bad options, or random readers with fewer than 2 readers.
    """
    check_options("jackknife", analysis, alpha)
    t, j, k = jackknife.shape
    if theta.shape != (t, j) or (len(modalities), len(readers), len(cases)) != (t, j, k):
        raise ValueError(
            f"FOMs {theta.shape} and jackknife {jackknife.shape} disagree with {len(modalities)} "
            f"modalities, {len(readers)} readers and {len(cases)} cases"
        )
    if analysis == "random_readers" and j < 2:
        raise ValueError(
            f"analysis='random_readers' needs at least 2 readers, got {j}; "
            "use analysis='fixed_readers'"
        )
    design = Design(list(readers), list(modalities), list(cases), pd.Series(dtype=float), None)
    est = FomEstimates(design, Fom(name), np.asarray(theta, float), jackknife_covariance(jackknife))
    return _test_modalities(est, "jackknife", analysis, alpha)


def _test_modalities(est: FomEstimates, cov: str, analysis: str, alpha: float) -> ORResult:
    """The OR analysis of FOM estimates: variance components, the test, differences and CIs."""
    (t, j), design = est.theta.shape, est.design
    components = or_components(est.cov, t, j)
    ms = _mean_squares(est.theta, *components)
    test = _modality_test(ms, components, t, j, analysis, alpha)
    means = est.theta.mean(axis=1)
    return ORResult(
        fom=est.fom.name,
        cov=cov,
        analysis=analysis,
        alpha=alpha,
        foms=pd.DataFrame(
            est.theta.T,
            index=pd.Index(design.readers, name="reader"),
            columns=pd.Index(design.modalities, name="modality"),
        ),
        modality_means=pd.Series(means, index=design.modalities, name=est.fom.name),
        modality_ci=_modality_intervals(est, analysis, alpha),
        differences=_differences(design.modalities, means, test, analysis),
        statistic=test.statistic,
        df1=float(t - 1),
        ddf=test.ddf,
        p_value=test.p_value,
        var_error=components[0],
        cov1=components[1],
        cov2=components[2],
        cov3=components[3],
        **vars(ms),
        n_cases=len(design.cases),
    )
