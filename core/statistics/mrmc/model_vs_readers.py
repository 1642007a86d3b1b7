"""A standalone model against the reader panel, on the same cases (Chakraborty's 1T-RRRC)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.statistics.mrmc.covariance import reader_components
from core.statistics.mrmc.design import FomEstimates, check_options, estimate_foms, show
from core.statistics.mrmc.obuchowski_rockette import reader_mean_interval, safe_ratio

_MODEL = "\x00model"  # sorts before any reader name and cannot clash with a real one


@dataclass
class StandaloneResult:
    """Mean reader FOM minus the model's FOM on the same cases; see :func:`standalone_vs_readers`."""

    fom: str
    cov: str
    analysis: str
    alpha: float
    reader_foms: pd.Series
    model_fom: float
    mean_reader_fom: float
    difference: float  # mean reader FOM - model FOM
    se: float
    df: float  # inf for fixed readers
    statistic: float  # t (random readers) or z (fixed readers)
    p_value: float
    ci_low: float
    ci_high: float
    var_error: float  # mean jackknife variance of the reader-minus-model differences
    cov2: float  # mean covariance between two readers' differences
    n_cases: int

    def summary(self) -> str:
        """One plain-language sentence on the result."""
        level = int(round((1 - self.alpha) * 100))
        better = "better" if self.difference > 0 else "worse"
        verdict = (
            f"readers scored significantly {better} than the model"
            if self.p_value < self.alpha
            else "no significant difference between readers and the model"
        )
        return (
            f"Mean reader {self.fom} {self.mean_reader_fom:.3f} vs model {self.model_fom:.3f} on "
            f"{self.n_cases} cases: difference {self.difference:+.3f} ({level}% CI "
            f"{self.ci_low:+.3f} to {self.ci_high:+.3f}, p = {self.p_value:.3g}): {verdict}."
        )

    def to_frame(self) -> pd.DataFrame:
        """Rows: each reader, the reader mean, the model, and the difference with CI and p."""
        rows = [{"row": str(r), "estimate": v} for r, v in self.reader_foms.items()]
        rows += [
            {"row": "mean of readers", "estimate": self.mean_reader_fom},
            {"row": "model", "estimate": self.model_fom},
            {
                "row": "readers - model",
                "estimate": self.difference,
                "se": self.se,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "p_value": self.p_value,
            },
        ]
        return pd.DataFrame(rows, columns=["row", "estimate", "se", "ci_low", "ci_high", "p_value"])


def standalone_vs_readers(
    reads: pd.DataFrame,
    model: pd.DataFrame,
    *,
    fom="auc",
    cov: str = "jackknife",
    analysis: str = "random_readers",
    modality=None,
    alpha: float = 0.05,
    n_boot: int = 1000,
    seed: int = 0,
) -> StandaloneResult:
    """Compare a standalone model with a reader panel on the same cases.

    Method: single-modality Obuchowski-Rockette on the reader-minus-model differences
    ``D_j = FOM_j - FOM_model`` (Chakraborty's "1T-RRRC" CAD-vs-radiologists analysis). The model
    is a fixed reference with no reader variance, but its FOM shares case variability with the
    readers', so the case covariance of the ``D_j`` is taken from the joint jackknife (DeLong,
    bootstrap) covariance of readers and model. Random readers: ``se^2 = MS_R(D)/J +
    max(Cov2_D, 0)`` with Hillis' ``df = (MS_R + J max(Cov2_D, 0))^2 / (MS_R^2 / (J-1))`` and a
    t-test; fixed readers: ``se^2 = (Var_D + (J-1) max(Cov2_D, 0)) / J`` and a z-test. This equals
    a two-modality OR analysis in which every reader's second modality is the model.

    Parameters
    ----------
    reads : DataFrame
        Long reads as for :func:`or_analysis`; with several modalities pick one with
        ``modality``.
    model : DataFrame
        One row per case: ``case`` and the FOM's columns (``score``, ``c_*`` or ``label``).
    fom, cov, analysis, alpha, n_boot, seed
        As in :func:`or_analysis`.
    modality : optional
        Which modality's reads to compare (e.g. ``"unaided"``).

    Returns
    -------
    StandaloneResult
    """
    check_options(cov, analysis, alpha)
    reads = _one_modality(reads, modality)
    model_reads = _model_as_reader(reads, model)
    est = estimate_foms(
        pd.concat([reads, model_reads], ignore_index=True),
        fom=fom,
        cov=cov,
        analysis=analysis,
        n_boot=n_boot,
        seed=seed,
        reference=_MODEL,
    )
    return _compare_with_model(est, cov, analysis, alpha)


def _compare_with_model(
    est: FomEstimates, cov: str, analysis: str, alpha: float
) -> StandaloneResult:
    """The mean reader-minus-model difference of FOM estimates, with its CI and p-value."""
    readers, foms, model_fom, d, cov_d = _reader_minus_model(est)
    d_mean = float(d.mean())
    var_d, cov2_d = reader_components(cov_d)
    se, df, q = reader_mean_interval(d, var_d, cov2_d, analysis, alpha)
    stat = safe_ratio(d_mean, se)
    if analysis == "random_readers":
        p = float(2 * sps.t.sf(abs(stat), df))
    else:
        p = float(2 * sps.norm.sf(abs(stat)))
    return StandaloneResult(
        fom=est.fom.name,
        cov=cov,
        analysis=analysis,
        alpha=alpha,
        reader_foms=pd.Series(foms, index=pd.Index(readers, name="reader"), name=est.fom.name),
        model_fom=model_fom,
        mean_reader_fom=float(foms.mean()),
        difference=d_mean,
        se=se,
        df=float(df),
        statistic=stat,
        p_value=p if d_mean != 0 else 1.0,
        ci_low=d_mean - q * se,
        ci_high=d_mean + q * se,
        var_error=var_d,
        cov2=cov2_d,
        n_cases=len(est.design.cases),
    )


def _one_modality(reads: pd.DataFrame, modality) -> pd.DataFrame:
    """The reads of the chosen modality; without a choice, the reads must hold only one."""
    if "modality" not in reads.columns:
        reads = reads.assign(modality="reads")
    if modality is not None:
        if modality not in set(reads["modality"].unique()):
            raise ValueError(
                f"modality={modality!r} is not in the reads; found {sorted(set(reads['modality']))}"
            )
        return reads[reads["modality"] == modality]
    if reads["modality"].nunique() > 1:
        raise ValueError(
            f"reads hold modalities {sorted(set(reads['modality']), key=str)}: pick one with "
            "modality="
        )
    return reads


def _model_as_reader(reads: pd.DataFrame, model: pd.DataFrame) -> pd.DataFrame:
    """The model's predictions as reads of one more reader, on the reads' cases and truth."""
    if "case" not in model.columns:
        raise ValueError(f"model needs a 'case' column, got {list(model.columns)}")
    if model["case"].duplicated().any():
        dup = model.loc[model["case"].duplicated(), "case"].iloc[0]
        raise ValueError(f"model has several rows for case {show(dup)}: give one per case")
    cases = set(reads["case"].unique()) if "case" in reads.columns else set()
    missing = cases - set(model["case"].unique())
    if missing:
        raise ValueError(
            f"the model has no prediction for case {show(sorted(missing, key=str)[0])}"
        )
    truth = reads.drop_duplicates("case").set_index("case")["truth"]
    rows = model[model["case"].isin(cases)].drop(columns=["truth"], errors="ignore")
    return rows.assign(
        reader=_MODEL, modality=reads["modality"].iloc[0], truth=rows["case"].map(truth)
    )


def _reader_minus_model(est: FomEstimates):
    """Readers, their FOMs, the model's FOM, and the differences D_j with their covariance."""
    theta = est.theta[0]  # (J + 1,)
    m = est.design.readers.index(_MODEL)
    keep = [i for i in range(theta.size) if i != m]
    # D_j = theta_j - theta_M is a linear map of the FOMs: Cov(D) = A Cov A'
    a = np.zeros((len(keep), theta.size))
    a[np.arange(len(keep)), keep] = 1.0
    a[:, m] = -1.0
    readers = [est.design.readers[i] for i in keep]
    return readers, theta[keep], float(theta[m]), theta[keep] - theta[m], a @ est.cov @ a.T
