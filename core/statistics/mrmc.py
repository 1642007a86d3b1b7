"""Multi-reader multi-case (MRMC) analysis: Obuchowski-Rockette with Hillis' degrees of freedom.

Input is one long table of reads with columns ``reader, modality, case, truth`` plus the columns
the figure of merit (FOM) needs: ``score`` (a rating, or a class label for label FOMs), ``label``
(preferred over ``score`` for label FOMs) and ``c_SCC, c_AC, c_ASC`` (per-class confidences).
Every reader must read every case in every modality (a fully crossed design).

Method (Obuchowski & Rockette 1995; Hillis 2007; as in RJafroc and the Iowa OR-DBM MRMC program):
the FOM of each reader x modality, the covariance of those FOMs across cases (jackknife with the
(K-1)^2/K scaling, DeLong, or a stratified bootstrap), averaged into Var (same reader, same
modality), Cov1 (same reader, other modality), Cov2 (other reader, same modality) and Cov3 (other
reader, other modality). Random readers: F = MS(T) / [MS(T*R) + J max(Cov2 - Cov3, 0)] on
(t-1, ddf_H) degrees of freedom. Fixed readers: chi-square = (t-1) MS(T) / [Var - Cov1 +
(J-1) max(Cov2 - Cov3, 0)] on t-1 degrees of freedom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.labels import CLASSES, parse_label
from core.statistics.stats import delong_covariance, delong_placements

REQUIRED = ("reader", "modality", "case", "truth")
COVARIANCES = ("jackknife", "delong", "bootstrap")
ANALYSES = ("random_readers", "fixed_readers")


# ---------------------------------------------------------------------------------------------
# figures of merit: each is an average of "parts"; a part is an AUC or a proportion


@dataclass
class _Part:
    kind: str  # "auc": values are scores, mask marks positives; "mean": values are 0/1 hits
    mask: np.ndarray  # (K,) positives for "auc", the denominator subset for "mean"
    values: np.ndarray  # (t, J, K)


@dataclass
class _Fom:
    name: str
    parts: list[_Part] = field(default_factory=list)
    truth: np.ndarray | None = None  # per case; the bootstrap keeps each truth class's count
    func: Callable | None = None  # a user callable(truth, score) -> float instead of parts
    score: np.ndarray | None = None  # (t, J, K) for the callable


def _auc_rows(positive: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of every row of values (..., K)."""
    m = int(positive.sum())
    n = positive.size - m
    ranks = sps.rankdata(values, axis=-1)
    return (ranks[..., positive].sum(axis=-1) - m * (m + 1) / 2) / (m * n)


def _part_value(part: _Part, idx: np.ndarray | None = None) -> np.ndarray:
    mask, values = part.mask, part.values
    if idx is not None:
        mask, values = mask[idx], values[..., idx]
    if part.kind == "auc":
        return _auc_rows(mask, values)
    return values[..., mask].mean(axis=-1)


def _part_jackknife(part: _Part) -> np.ndarray:
    """Leave-one-case-out FOMs (t, J, K) in closed form."""
    t, j, k = part.values.shape
    if part.kind == "auc":
        flat = part.values.reshape(t * j, k)
        aucs, v_pos, v_neg = delong_placements(part.mask.astype(int), flat)
        m, n = v_pos.shape[1], v_neg.shape[1]
        out = np.empty((t * j, k))
        out[:, part.mask] = (m * aucs[:, None] - v_pos) / (m - 1)
        out[:, ~part.mask] = (n * aucs[:, None] - v_neg) / (n - 1)
        return out.reshape(t, j, k)
    size = part.mask.sum()
    full = part.values[..., part.mask].mean(axis=-1, keepdims=True)
    left_out = (size * full - part.values) / (size - 1)
    return np.where(part.mask, left_out, full)


def _fom_values(fom: _Fom, idx: np.ndarray | None = None) -> np.ndarray:
    if fom.func is not None:
        truth = fom.truth if idx is None else fom.truth[idx]
        score = fom.score if idx is None else fom.score[..., idx]
        t, j = score.shape[:2]
        return np.array([[fom.func(truth, score[a, b]) for b in range(j)] for a in range(t)])
    return np.mean([_part_value(p, idx) for p in fom.parts], axis=0)


def _fom_jackknife(fom: _Fom) -> np.ndarray:
    if fom.func is not None:
        k = fom.truth.size
        keep = ~np.eye(k, dtype=bool)
        return np.stack([_fom_values(fom, np.flatnonzero(keep[c])) for c in range(k)], axis=-1)
    return np.mean([_part_jackknife(p) for p in fom.parts], axis=0)


def _class_of(text) -> int:
    text = str(text)
    if text.isdigit() and int(text) < len(CLASSES):
        return int(text)
    try:
        return parse_label(text)
    except ValueError as err:
        raise ValueError(
            f"class {text!r} is not allowed: use one of {', '.join(CLASSES)} or 0..{len(CLASSES) - 1}"
        ) from err


def _truth_indices(truth: pd.Series) -> np.ndarray:
    if truth.dtype == object or pd.api.types.is_string_dtype(truth):
        return np.array([parse_label(v) for v in truth], dtype=np.int64)
    return truth.to_numpy().astype(np.int64)


def _labels(values: np.ndarray) -> np.ndarray:
    if values.dtype == object or values.dtype.kind in "US":
        return np.vectorize(parse_label, otypes=[np.int64])(values)
    return values.astype(np.int64)


def _build_fom(fom, cube: Callable[[str], np.ndarray], truth_raw: pd.Series) -> _Fom:
    """Turn a FOM name (or callable) into parts over the (t, J, K) arrays given by ``cube``."""
    if callable(fom):
        name = getattr(fom, "__name__", "custom")
        return _Fom(name, func=fom, truth=truth_raw.to_numpy(), score=cube("score"))
    if not isinstance(fom, str):
        raise ValueError(f"fom={fom!r} is not allowed: give a name or a callable(truth, score)")
    base, _, cls = fom.partition(":")
    if base == "auc" and not cls:
        truth = truth_raw.to_numpy()
        if not set(np.unique(truth).tolist()) <= {0, 1}:
            raise ValueError(
                f"fom='auc' needs binary truth 0/1, found {sorted(set(truth.tolist()))[:5]}; "
                "for 3-class reads use 'auc:SCC', 'auc:AC', 'auc:ASC' or 'auc_macro'"
            )
        return _Fom(fom, [_Part("auc", truth.astype(bool), cube("score"))], truth)
    truth = _truth_indices(truth_raw)
    if base == "auc" and cls:
        c = _class_of(cls)
        return _Fom(fom, [_Part("auc", truth == c, cube(f"c_{CLASSES[c]}"))], truth)
    if base == "auc_macro" and not cls:
        parts = [_Part("auc", truth == c, cube(f"c_{name}")) for c, name in enumerate(CLASSES)]
        return _Fom(fom, parts, truth)
    if base in ("accuracy", "sensitivity", "specificity"):
        labels = _labels(cube("label"))
        if base == "accuracy" and not cls:
            return _Fom(fom, [_Part("mean", np.ones(truth.size, bool), labels == truth)], truth)
        if cls:
            c = _class_of(cls)
            if base == "sensitivity":
                return _Fom(fom, [_Part("mean", truth == c, (labels == c).astype(float))], truth)
            return _Fom(fom, [_Part("mean", truth != c, (labels != c).astype(float))], truth)
    raise ValueError(
        f"fom={fom!r} is not allowed: use 'auc', 'auc:<class>', 'auc_macro', 'accuracy', "
        "'sensitivity:<class>', 'specificity:<class>' or a callable(truth, score)"
    )


def _check_fom_defined(fom: _Fom) -> None:
    # the jackknife divides by (positives - 1) and (negatives - 1): each needs at least 2 cases
    for part in fom.parts:
        if part.kind == "auc" and (part.mask.sum() < 2 or (~part.mask).sum() < 2):
            raise ValueError(
                f"FOM {fom.name!r} is undefined: needs at least 2 positive and 2 negative cases, "
                f"got {int(part.mask.sum())} positive of {part.mask.size}"
            )
        if part.kind == "mean" and part.mask.sum() < 2:
            raise ValueError(
                f"FOM {fom.name!r} is undefined: needs at least 2 cases in its denominator, "
                f"got {int(part.mask.sum())}"
            )


# ---------------------------------------------------------------------------------------------
# the reads as arrays


@dataclass
class _Design:
    readers: list
    modalities: list
    cases: list
    truth: pd.Series  # per case, in case order
    frame: pd.DataFrame

    def cube(self, column: str) -> np.ndarray:
        """Values of one column as an array (modality, reader, case)."""
        if column == "label" and "label" not in self.frame.columns:
            column = "score"
        if column not in self.frame.columns:
            raise ValueError(
                f"reads have no column {column!r} needed by this FOM; columns are "
                f"{list(self.frame.columns)}"
            )
        wide = self.frame.pivot(index=["modality", "reader"], columns="case", values=column)
        wide = wide.reindex(
            index=pd.MultiIndex.from_product([self.modalities, self.readers]), columns=self.cases
        )
        values = wide.to_numpy()
        if pd.isna(values).any():
            where = np.argwhere(pd.isna(values))[0]
            m, r = wide.index[where[0]]
            case = wide.columns[where[1]]
            raise ValueError(
                f"column {column!r} is missing for reader {_show(r)}, modality {_show(m)}, "
                f"case {_show(case)}: every read needs a value"
            )
        if values.dtype != object:
            values = values.astype(float)
        return values.reshape(len(self.modalities), len(self.readers), len(self.cases))


def _show(value) -> str:
    """repr of a value for messages, without numpy's ``np.int64(...)`` wrapper."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _sorted(column: pd.Series) -> list:
    values = column.unique().tolist()
    try:
        return sorted(values)
    except TypeError:  # mixed types: fall back to text order
        return sorted(values, key=str)


def _design(frame: pd.DataFrame) -> _Design:
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ValueError(
            f"reads are missing column(s) {missing}: need {', '.join(REQUIRED)} plus the FOM's "
            f"score columns; got {list(frame.columns)}"
        )
    if frame.empty:
        raise ValueError("reads are empty: need at least one read")
    dupes = frame.duplicated(["reader", "modality", "case"])
    if dupes.any():
        row = frame.loc[dupes, ["reader", "modality", "case"]].iloc[0].tolist()
        raise ValueError(
            f"reader {_show(row[0])} read case {_show(row[2])} twice in modality {_show(row[1])}"
        )
    truth_per_case = frame.groupby("case", sort=True)["truth"].nunique()
    if (truth_per_case > 1).any():
        case = truth_per_case.index[truth_per_case > 1][0]
        raise ValueError(f"case {_show(case)} has conflicting truth values across reads")
    readers = _sorted(frame["reader"])
    modalities = _sorted(frame["modality"])
    cases = _sorted(frame["case"])
    expected = len(readers) * len(modalities) * len(cases)
    if len(frame) != expected:
        counts = frame.groupby(["modality", "reader"]).size()
        short = counts[counts < len(cases)]
        where = (
            f"reader {_show(short.index[0][1])} in modality {_show(short.index[0][0])} read "
            f"{int(short.iloc[0])} of {len(cases)} cases"
            if len(short)
            else "some reader x modality pairs are missing"
        )
        raise ValueError(
            f"the design is not fully crossed ({len(frame)} reads, expected {expected}): {where}"
        )
    truth = frame.drop_duplicates("case").set_index("case")["truth"].reindex(cases)
    return _Design(readers, modalities, cases, truth.reset_index(drop=True), frame)


# ---------------------------------------------------------------------------------------------
# covariance of the FOMs across cases


def _covariance(fom: _Fom, method: str, n_boot: int, seed: int) -> np.ndarray:
    """Covariance matrix (t*J, t*J) of the reader x modality FOMs, modality-major order."""
    if method == "jackknife":
        jk = _fom_jackknife(fom)
        t, j, k = jk.shape
        return np.cov(jk.reshape(t * j, k)) * (k - 1) ** 2 / k
    if method == "delong":
        if fom.func is not None or len(fom.parts) != 1 or fom.parts[0].kind != "auc":
            raise ValueError(
                f"cov='delong' needs a single-AUC FOM ('auc' or 'auc:<class>'), got {fom.name!r}; "
                "use cov='jackknife' or 'bootstrap'"
            )
        part = fom.parts[0]
        t, j, k = part.values.shape
        return delong_covariance(part.mask.astype(int), part.values.reshape(t * j, k))[1]
    if method == "bootstrap":
        if not isinstance(n_boot, int | np.integer) or n_boot < 2:
            raise ValueError(f"n_boot={n_boot!r} is not allowed: use an integer >= 2")
        rng = np.random.default_rng(seed)
        strata = _strata(fom)
        draws = []
        for _ in range(n_boot):
            idx = np.concatenate([rng.choice(s, size=s.size, replace=True) for s in strata])
            draws.append(_fom_values(fom, idx).ravel())
        return np.cov(np.array(draws).T)
    raise ValueError(f"cov={method!r} is not allowed: use one of {', '.join(COVARIANCES)}")


def _strata(fom: _Fom) -> list[np.ndarray]:
    """Cases grouped by truth, so every bootstrap sample keeps the class counts (as RJafroc)."""
    _, codes = np.unique(np.asarray(fom.truth).astype(str), return_inverse=True)
    return [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]


def _components(cov: np.ndarray, t: int, j: int) -> tuple[float, float, float, float]:
    """Average the (t*J)^2 covariance matrix into Var, Cov1, Cov2, Cov3."""
    c = cov.reshape(t, j, t, j)
    same_m = np.eye(t, dtype=bool)[:, None, :, None]
    same_r = np.eye(j, dtype=bool)[None, :, None, :]

    def mean(mask):
        mask = np.broadcast_to(mask, c.shape)
        return float(c[mask].mean()) if mask.any() else 0.0

    return (
        mean(same_m & same_r),
        mean(~same_m & same_r),
        mean(same_m & ~same_r),
        mean(~same_m & ~same_r),
    )


# ---------------------------------------------------------------------------------------------
# results


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


def _check_common(cov: str, analysis: str, alpha: float) -> None:
    if cov not in COVARIANCES:
        raise ValueError(f"cov={cov!r} is not allowed: use one of {', '.join(COVARIANCES)}")
    if analysis not in ANALYSES:
        raise ValueError(f"analysis={analysis!r} is not allowed: use one of {', '.join(ANALYSES)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} is not allowed: use a value between 0 and 1")


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
    _check_common(cov, analysis, alpha)
    design = _design(frame)
    t, j, k = len(design.modalities), len(design.readers), len(design.cases)
    if analysis == "random_readers" and j < 2:
        raise ValueError(
            f"analysis='random_readers' needs at least 2 readers, got {j}; "
            "use analysis='fixed_readers'"
        )
    built = _build_fom(fom, design.cube, design.truth)
    _check_fom_defined(built)
    theta = _fom_values(built)  # (t, J)
    covm = _covariance(built, cov, n_boot, seed)
    var, cov1, cov2, cov3 = _components(covm, t, j)

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

    if analysis == "random_readers":
        den = ms_TR + j * max(cov2 - cov3, 0.0)
        ddf = den**2 / (ms_TR**2 / ((t - 1) * (j - 1))) if t > 1 and ms_TR > 0 else np.inf
        stat = _ratio(ms_T, den) if t > 1 else np.nan
        p_value = float(sps.f.sf(stat, t - 1, ddf)) if t > 1 else np.nan
        se_diff = np.sqrt(2 * den / j) if t > 1 else np.nan
        q = sps.t.ppf(1 - alpha / 2, ddf) if t > 1 else np.nan
    else:
        den = var - cov1 + (j - 1) * max(cov2 - cov3, 0.0)
        ddf = np.inf
        stat = _ratio((t - 1) * ms_T, den) if t > 1 else np.nan
        p_value = float(sps.chi2.sf(stat, t - 1)) if t > 1 else np.nan
        se_diff = np.sqrt(2 * den / j) if t > 1 else np.nan
        q = sps.norm.ppf(1 - alpha / 2)

    diffs = []
    for a, b in combinations(range(t), 2):
        d = float(mod_means[a] - mod_means[b])
        z = _ratio(d, se_diff)
        p = (
            float(2 * sps.t.sf(abs(z), ddf))
            if analysis == "random_readers"
            else float(2 * sps.norm.sf(abs(z)))
        )
        diffs.append(
            {
                "modality_a": design.modalities[a],
                "modality_b": design.modalities[b],
                "difference": d,
                "se": se_diff,
                "df": ddf,
                "statistic": z,
                "p_value": p if d != 0 else 1.0,
                "ci_low": d - q * se_diff,
                "ci_high": d + q * se_diff,
            }
        )
    differences = pd.DataFrame(
        diffs,
        columns=[
            "modality_a",
            "modality_b",
            "difference",
            "se",
            "df",
            "statistic",
            "p_value",
            "ci_low",
            "ci_high",
        ],
    )

    single = []
    for i, name in enumerate(design.modalities):
        block = covm.reshape(t, j, t, j)[i, :, i, :]
        var_i = float(np.diag(block).mean())
        cov2_i = float(block[~np.eye(j, dtype=bool)].mean()) if j > 1 else 0.0
        if analysis == "random_readers":
            ms_R_i = float(((theta[i] - mod_means[i]) ** 2).sum() / (j - 1))
            den_i = ms_R_i + j * max(cov2_i, 0.0)
            df_i = den_i**2 / (ms_R_i**2 / (j - 1)) if ms_R_i > 0 else np.inf
            se_i = np.sqrt(den_i / j)
            q_i = sps.t.ppf(1 - alpha / 2, df_i)
        else:
            df_i = np.inf
            se_i = np.sqrt((var_i + (j - 1) * max(cov2_i, 0.0)) / j)
            q_i = sps.norm.ppf(1 - alpha / 2)
        single.append(
            {
                "modality": name,
                "estimate": float(mod_means[i]),
                "se": se_i,
                "df": df_i,
                "ci_low": mod_means[i] - q_i * se_i,
                "ci_high": mod_means[i] + q_i * se_i,
                "var_error": var_i,
                "cov2": cov2_i,
            }
        )

    foms = pd.DataFrame(
        theta.T,
        index=pd.Index(design.readers, name="reader"),
        columns=pd.Index(design.modalities, name="modality"),
    )
    return ORResult(
        fom=built.name,
        cov=cov,
        analysis=analysis,
        alpha=alpha,
        foms=foms,
        modality_means=pd.Series(mod_means, index=design.modalities, name=built.name),
        modality_ci=pd.DataFrame(single),
        differences=differences,
        statistic=float(stat),
        df1=float(t - 1),
        ddf=float(ddf),
        p_value=p_value,
        var_error=var,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        var_R=float(var_R),
        var_TR=float(var_TR),
        ms_T=float(ms_T),
        ms_R=float(ms_R),
        ms_TR=float(ms_TR),
        n_cases=k,
    )


def _ratio(num: float, den: float) -> float:
    """num / den where 0 / 0 (identical modalities) is 0, not NaN."""
    if num == 0:
        return 0.0
    return float(num / den) if den > 0 else float(np.copysign(np.inf, num))


# ---------------------------------------------------------------------------------------------
# the model against the reader panel

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
    _check_common(cov, analysis, alpha)
    if "modality" not in reads.columns:
        reads = reads.assign(modality="reads")
    if modality is not None:
        if modality not in set(reads["modality"]):
            raise ValueError(
                f"modality={modality!r} is not in the reads; found {sorted(set(reads['modality']))}"
            )
        reads = reads[reads["modality"] == modality]
    elif reads["modality"].nunique() > 1:
        raise ValueError(
            f"reads hold modalities {sorted(set(reads['modality']), key=str)}: pick one with "
            "modality="
        )
    if "case" not in model.columns:
        raise ValueError(f"model needs a 'case' column, got {list(model.columns)}")
    if model["case"].duplicated().any():
        dup = model.loc[model["case"].duplicated(), "case"].iloc[0]
        raise ValueError(f"model has several rows for case {_show(dup)}: give one per case")
    cases = set(reads["case"]) if "case" in reads.columns else set()
    missing = cases - set(model["case"])
    if missing:
        raise ValueError(
            f"the model has no prediction for case {_show(sorted(missing, key=str)[0])}"
        )
    truth = reads.drop_duplicates("case").set_index("case")["truth"]
    rows = model[model["case"].isin(cases)].drop(columns=["truth"], errors="ignore")
    rows = rows.assign(
        reader=_MODEL, modality=reads["modality"].iloc[0], truth=rows["case"].map(truth)
    )
    design = _design(pd.concat([reads, rows], ignore_index=True))
    j_all, k = len(design.readers), len(design.cases)
    j = j_all - 1
    if analysis == "random_readers" and j < 2:
        raise ValueError(
            f"analysis='random_readers' needs at least 2 readers, got {j}; "
            "use analysis='fixed_readers'"
        )
    built = _build_fom(fom, design.cube, design.truth)
    _check_fom_defined(built)
    theta = _fom_values(built)[0]  # (J + 1,)
    covm = _covariance(built, cov, n_boot, seed)
    m = design.readers.index(_MODEL)
    readers = [r for r in design.readers if r != _MODEL]
    keep = [i for i in range(j_all) if i != m]
    # D_j = theta_j - theta_M is a linear map of the FOMs: Cov(D) = A Cov A'
    a = np.zeros((j, j_all))
    a[np.arange(j), keep] = 1.0
    a[:, m] = -1.0
    cov_d = a @ covm @ a.T
    d = theta[keep] - theta[m]
    d_mean = float(d.mean())
    var_d = float(np.diag(cov_d).mean())
    cov2_d = float(cov_d[~np.eye(j, dtype=bool)].mean()) if j > 1 else 0.0
    if analysis == "random_readers":
        ms_r = float(((d - d_mean) ** 2).sum() / (j - 1))
        den = ms_r + j * max(cov2_d, 0.0)
        df = den**2 / (ms_r**2 / (j - 1)) if ms_r > 0 else np.inf
        se = float(np.sqrt(den / j))
        stat = _ratio(d_mean, se)
        p = float(2 * sps.t.sf(abs(stat), df))
        q = sps.t.ppf(1 - alpha / 2, df)
    else:
        df = np.inf
        se = float(np.sqrt((var_d + (j - 1) * max(cov2_d, 0.0)) / j))
        stat = _ratio(d_mean, se)
        p = float(2 * sps.norm.sf(abs(stat)))
        q = sps.norm.ppf(1 - alpha / 2)
    return StandaloneResult(
        fom=built.name,
        cov=cov,
        analysis=analysis,
        alpha=alpha,
        reader_foms=pd.Series(theta[keep], index=pd.Index(readers, name="reader"), name=built.name),
        model_fom=float(theta[m]),
        mean_reader_fom=float(theta[keep].mean()),
        difference=d_mean,
        se=se,
        df=float(df),
        statistic=stat,
        p_value=p if d_mean != 0 else 1.0,
        ci_low=d_mean - q * se,
        ci_high=d_mean + q * se,
        var_error=var_d,
        cov2=cov2_d,
        n_cases=k,
    )


# ---------------------------------------------------------------------------------------------
# export for the R/Java tools


def _id(value, what: str) -> str:
    text = str(value)
    if not text or any(ch in text for ch in ",\r\n") or text != text.strip():
        raise ValueError(
            f"{what} {value!r} cannot be written to iMRMC: IDs must be non-empty, without commas, "
            "line breaks or surrounding spaces"
        )
    return text


def to_imrmc(
    frame: pd.DataFrame,
    *,
    positive_class=None,
    description: str = "CervixScope reads exported for iMRMC",
) -> str:
    """Reads in iMRMC's input format, to cross-check results in iMRMC (Java/R) or RJafroc.

    The text is free header lines, ``NR``/``N0``/``N1``/``NM`` counts, ``BEGIN DATA:``, one truth
    row per case (``-1,caseID,0,truth`` with truth 0/1), then one row per read
    ``readerID,caseID,modalityID,score``.

    Parameters
    ----------
    frame : DataFrame
        Long reads ``reader, modality, case, truth, score`` with binary truth; or 3-class reads
        with ``positive_class`` set, when truth becomes ``truth == class`` and the score column
        is ``c_<class>``.
    positive_class : str or int, optional
    description : str
        First header line.

    Returns
    -------
    str
    """
    design = _design(frame)
    if positive_class is None:
        truth = design.truth.to_numpy()
        if not set(np.unique(truth).tolist()) <= {0, 1}:
            raise ValueError(
                "iMRMC needs binary truth 0/1: give positive_class='SCC'|'AC'|'ASC' for "
                "3-class reads"
            )
        column = "score"
    else:
        c = _class_of(str(positive_class))
        truth = (_truth_indices(design.truth) == c).astype(int)
        column = f"c_{CLASSES[c]}"
    if column not in frame.columns:
        raise ValueError(f"reads have no column {column!r} to export as the score")
    scores = pd.to_numeric(frame[column], errors="coerce")
    if scores.isna().any():
        raise ValueError(
            f"column {column!r} has missing or non-numeric scores; iMRMC needs numbers"
        )
    for r in design.readers:
        if str(r) == "-1":
            raise ValueError("reader ID -1 is reserved by iMRMC for truth rows: rename that reader")
    lines = [
        description.replace("\n", " "),
        f"NR: {len(design.readers)}",
        f"N0: {int((truth == 0).sum())}",
        f"N1: {int((truth == 1).sum())}",
        f"NM: {len(design.modalities)}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{_id(c, 'case')},0,{int(v)}" for c, v in zip(design.cases, truth, strict=True)]
    rank = {
        col: {v: i for i, v in enumerate(values)}
        for col, values in (
            ("modality", design.modalities),
            ("reader", design.readers),
            ("case", design.cases),
        )
    }
    ordered = frame.assign(_score=scores).sort_values(
        ["modality", "reader", "case"], key=lambda col: col.map(rank[col.name])
    )
    lines += [
        f"{_id(r, 'reader')},{_id(c, 'case')},{_id(m, 'modality')},{s:g}"
        for r, c, m, s in zip(
            ordered["reader"], ordered["case"], ordered["modality"], ordered["_score"], strict=True
        )
    ]
    return "\n".join(lines) + "\n"


def write_imrmc(frame: pd.DataFrame, path, **kwargs) -> Path:
    """Write :func:`to_imrmc` text to ``path`` (use the ``.imrmc`` extension for RJafroc)."""
    path = Path(path)
    path.write_text(to_imrmc(frame, **kwargs), encoding="utf-8")
    return path
