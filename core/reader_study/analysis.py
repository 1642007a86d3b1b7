"""The reader-study analysis tables, from rater frames (see :mod:`core.reader_study.study_data`).

Pure functions on DataFrames: every count and rate goes through :mod:`core.statistics.metrics`
and every test or agreement statistic through :mod:`core.statistics.stats`, the same code that
scores the model.
"""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd

from core.data.labels import CLASS_INDEX, CLASSES, class_indices
from core.reader_study.study_data import MODEL, SCORE_COLUMNS, StudyData
from core.statistics import metrics, stats

TABLE_METRICS = ("precision", "sensitivity", "specificity", "accuracy", "error_rate", "auc")
TABLE_SCOPES = (*CLASSES, "macro", "overall")


def confusion_table(rater: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: rows true SCC/AC/ASC, columns predicted SCC/AC/ASC, counts."""
    cm = metrics.confusion_matrix(class_indices(rater["truth"]), class_indices(rater["label"]))
    return pd.DataFrame(
        cm,
        index=pd.Index([f"true {c}" for c in CLASSES], name=""),
        columns=[f"predicted {c}" for c in CLASSES],
    )


def metrics_table(rater: pd.DataFrame, *, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Precision, sensitivity, specificity, accuracy and error rate (and AUC from the scores)
    with 95% bootstrap CIs, per class, macro and overall.

    Returns
    -------
    pandas.DataFrame
        The rows of :func:`core.statistics.metrics.classification_table` for those metrics and
        scopes; AUC only when every score is finite.
    """
    scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
    y_score = scores if np.isfinite(scores).all() and len(scores) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = metrics.classification_table(
            class_indices(rater["truth"]),
            class_indices(rater["label"]),
            y_score,
            n_boot=n_boot,
            seed=seed,
        )
    keep = table["metric"].isin(TABLE_METRICS) & table["scope"].isin(TABLE_SCOPES)
    return table[keep].reset_index(drop=True)


def metrics_wide(table: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """:func:`metrics_table` for reading: rows per class / macro / overall, one column per
    metric, each cell ``value (ci_low-ci_high)``; blank where a metric does not apply."""
    cells = table.assign(
        cell=[
            ""
            if np.isnan(v)
            else f"{v:.{digits}f}" + ("" if np.isnan(lo) else f" ({lo:.{digits}f}-{hi:.{digits}f})")
            for v, lo, hi in zip(table["value"], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    wide = cells.pivot(index="scope", columns="metric", values="cell").fillna("")
    order = [s for s in TABLE_SCOPES if s in wide.index]
    metrics_order = [m for m in TABLE_METRICS if m in wide.columns]
    return wide.loc[order, metrics_order].rename_axis(index="", columns=None)


def operating_point(rater: pd.DataFrame, class_index: int) -> tuple[float, float]:
    """A rater's one-vs-rest ``(1 - specificity, sensitivity)`` for one class, from its labels;
    NaN where the class (or its rest) is absent."""
    truth, called = class_indices(rater["truth"]), class_indices(rater["label"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an absent class is NaN by policy, not news
        sensitivity = metrics.sensitivity_score(truth, called)[class_index]
        specificity = metrics.specificity_score(truth, called)[class_index]
    return float(1.0 - specificity), float(sensitivity)


def accuracy(rater: pd.DataFrame) -> float:
    """The fraction of cases a rater labelled right (:func:`core.statistics.metrics.accuracy_score`)."""
    return metrics.accuracy_score(class_indices(rater["truth"]), class_indices(rater["label"]))


def as_predictions(rater: pd.DataFrame) -> pd.DataFrame:
    """A rater frame in :func:`db.predictions_frame` form (``label`` = truth, ``p_*`` = scores),
    for the ROC figure builders."""
    out = pd.DataFrame({"case_id": rater["case_id"], "label": rater["truth"]})
    for name in CLASSES:
        out[f"p_{name}"] = rater[f"c_{name}"].astype(float)
    return out


def mcnemar_table(named: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The model against each reader on the cases both read.

    Returns
    -------
    pandas.DataFrame
        One row per reader: ``reader, cases, model accuracy, reader accuracy, model right,
        reader wrong, model wrong, reader right, statistic, p-value, method``
        (:func:`core.statistics.stats.mcnemar_test`); empty without a model.
    """
    if MODEL not in named:
        return pd.DataFrame()
    model = named[MODEL]
    model_right = pd.Series(_right(model), index=model["case_id"].to_numpy())
    rows = []
    for name, rater in named.items():
        if name == MODEL:
            continue
        paired = model_right.reindex(rater["case_id"].to_numpy())  # NaN: a case the model lacks
        read = paired.notna().to_numpy()
        if not read.any():
            continue
        model_hits, reader_hits = paired.to_numpy()[read].astype(bool), _right(rater)[read]
        test = stats.mcnemar_test(model_hits, reader_hits)
        rows.append(
            {
                "reader": name,
                "cases": int(read.sum()),
                "model accuracy": float(model_hits.mean()),
                "reader accuracy": float(reader_hits.mean()),
                "model right, reader wrong": test.b,
                "model wrong, reader right": test.c,
                "statistic": test.statistic,
                "p-value": test.p_value,
                "method": test.method,
            }
        )
    return pd.DataFrame(rows)


def _right(rater: pd.DataFrame) -> np.ndarray:
    """Per case, whether the rater's label is the truth (McNemar pairs these)."""
    return (rater["label"] == rater["truth"]).to_numpy()


def common_labels(named: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Labels of every rater on the cases all of them read: rows cases, columns raters."""
    if not named:
        return pd.DataFrame()
    columns = [rater.set_index("case_id")["label"].rename(name) for name, rater in named.items()]
    return pd.concat(columns, axis=1, join="inner")


def kappa_tables(named: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, float | None, int]:
    """Agreement on the cases every rater read.

    Returns
    -------
    pairwise : pandas.DataFrame
        ``rater A, rater B, cases, Cohen's kappa, 95% CI low, 95% CI high`` for each pair
        (model included if present; asymptotic CI); empty with fewer than two raters.
    fleiss : float or None
        Fleiss' kappa over the readers (not the model); None with fewer than two readers.
    n_cases : int
        The number of cases every rater read.
    """
    wide = common_labels(named)
    if wide.empty or wide.shape[1] < 2:
        return pd.DataFrame(), None, len(wide)
    rows = []
    # one integer code per label for the whole table: each pair then skips re-coding strings
    _, codes = np.unique(wide.to_numpy().astype(str), return_inverse=True)
    codes = codes.reshape(wide.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for (i, a), (j, b) in itertools.combinations(enumerate(wide.columns), 2):
            ci = stats.cohen_kappa_ci(codes[:, i], codes[:, j])
            rows.append(
                {
                    "rater A": a,
                    "rater B": b,
                    "cases": len(wide),
                    "Cohen's kappa": ci.kappa,
                    "95% CI low": ci.low,
                    "95% CI high": ci.high,
                }
            )
        readers = [c for c in wide.columns if c != MODEL]
        fleiss = stats.fleiss_kappa(wide[readers].to_numpy()) if len(readers) >= 2 else None
    return pd.DataFrame(rows), fleiss, len(wide)


def time_table(data: StudyData) -> pd.DataFrame:
    """Seconds per case for each reader and arm, and for the model when its run recorded it.

    Returns
    -------
    pandas.DataFrame
        ``rater, arm, cases, median s/case, mean s/case, simulated``; the model's row has arm
        ``standalone``.
    """
    rows = []
    for (reader, arm), group in data.reads.groupby(["reader", "arm"], sort=True):
        s = group["seconds"].dropna()
        rows.append(
            {
                "rater": reader,
                "arm": arm,
                "cases": len(group),
                "median s/case": s.median() if len(s) else np.nan,
                "mean s/case": s.mean() if len(s) else np.nan,
                "simulated": reader in data.simulated_readers,
            }
        )
    if data.model_seconds_per_case is not None:
        rows.append(
            {
                "rater": MODEL,
                "arm": "standalone",
                # the run predicted the whole cohort; the study is only the cases read here
                "cases": int(data.model["case_id"].isin(data.reads["case_id"].unique()).sum())
                if data.model is not None
                else 0,
                "median s/case": data.model_seconds_per_case,
                "mean s/case": data.model_seconds_per_case,
                "simulated": False,
            }
        )
    return pd.DataFrame(rows)


def aided_minus_unaided(data: StudyData) -> pd.DataFrame:
    """Per reader, on the cases read in both arms: accuracy, macro AUC and median time in each
    arm and their difference aided - unaided."""
    rows = []
    for reader, group in data.reads.groupby("reader", sort=True):
        unaided = group[group["arm"] == "unaided"].set_index("case_id")
        aided = group[group["arm"] == "aided"].set_index("case_id")
        common = unaided.index.intersection(aided.index)
        if common.empty:
            continue
        row = {"reader": reader, "cases": len(common)}
        for arm, frame in (("unaided", unaided.loc[common]), ("aided", aided.loc[common])):
            row[f"accuracy {arm}"] = accuracy(frame)
            row[f"macro AUC {arm}"] = macro_auc(frame)
            row[f"median s {arm}"] = float(frame["seconds"].median())
        for what in ("accuracy", "macro AUC", "median s"):
            row[f"{what} difference"] = row[f"{what} aided"] - row[f"{what} unaided"]
        rows.append(row)
    return pd.DataFrame(rows)


def macro_auc(rater: pd.DataFrame) -> float:
    """Macro one-vs-rest AUC from the rater's scores; NaN when a score is missing."""
    scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metrics.roc_auc_ovr(class_indices(rater["truth"]), scores, average="macro"))


def fleiss_interval(named: dict[str, pd.DataFrame], *, seed: int = 0):
    """Fleiss' kappa of the readers (not the model) on their common cases with a bootstrap 95%
    CI (:func:`core.statistics.stats.fleiss_kappa_ci`); None with fewer than two readers."""
    wide = common_labels({k: v for k, v in named.items() if k != MODEL})
    if wide.empty or wide.shape[1] < 2:
        return None
    _, codes = np.unique(wide.to_numpy().astype(str), return_inverse=True)  # ints code faster
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stats.fleiss_kappa_ci(codes.reshape(wide.shape), seed=seed)


INTRA_COLUMNS = [
    "reader",
    "arm",
    "repeated cases",
    "agreement %",
    "Cohen's kappa",
    "95% CI low",
    "95% CI high",
]


def intra_reader_agreement(reads: pd.DataFrame) -> pd.DataFrame:
    """Each reader's agreement with themself: first read against repeat read of the same case.

    Parameters
    ----------
    reads : pandas.DataFrame
        Tidy reads with a boolean ``repeat`` column (first reads and repeat reads together).

    Returns
    -------
    pandas.DataFrame
        One row per reader and arm with repeats: ``reader, arm, repeated cases, agreement %,
        Cohen's kappa, 95% CI low, 95% CI high`` (asymptotic CI,
        :func:`core.statistics.stats.cohen_kappa_ci`); empty without repeat reads.
    """
    if "repeat" not in reads.columns or not reads["repeat"].any():
        return pd.DataFrame(columns=INTRA_COLUMNS)
    key = ["reader", "arm", "case_id"]
    first = reads[~reads["repeat"]].drop_duplicates(key).set_index(key)["label"]
    again = reads[reads["repeat"]].drop_duplicates(key).set_index(key)["label"]
    pairs = pd.concat([first.rename("first"), again.rename("again")], axis=1, join="inner")
    rows = []
    for (reader, arm), group in pairs.groupby(level=["reader", "arm"], sort=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # one label throughout: kappa NaN by policy
            ci = stats.cohen_kappa_ci(group["first"].to_numpy(), group["again"].to_numpy())
        rows.append(
            {
                "reader": reader,
                "arm": arm,
                "repeated cases": len(group),
                "agreement %": 100.0 * float((group["first"] == group["again"]).mean()),
                "Cohen's kappa": ci.kappa,
                "95% CI low": ci.low,
                "95% CI high": ci.high,
            }
        )
    return pd.DataFrame(rows, columns=INTRA_COLUMNS)


def format_p_value(p: float | None, *, digits: int = 4) -> str:
    """A p-value as text: ``"0.0312"``, ``"< 0.0001"`` below the smallest shown, blank if none."""
    if p is None or not np.isfinite(p):
        return ""
    floor = 10.0**-digits
    return f"< {floor:.{digits}f}" if p < floor else f"{p:.{digits}f}"


def rater_calibration(
    named: dict[str, pd.DataFrame], *, n_boot: int = 1000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Calibration of each rater's scores: the model's probabilities, and each reader's
    confidences normalised to sum to 1 per case (a reader's 70/20/10 reads as 0.7/0.2/0.1).

    Returns
    -------
    scores : pandas.DataFrame
        ``rater, scope, metric, value, ci_low, ci_high`` (Brier and ECE, patient bootstrap CIs;
        see :func:`core.statistics.calibration.calibration_summary`).
    points : pandas.DataFrame
        Reliability points ``model, class, bin, mean_predicted, observed, count`` (``model`` is
        the rater's name, as :func:`dashboard.figures.reliability_figure` expects).
    Raters whose scores are missing or all zero for some case are left out.
    """
    from core.statistics import calibration

    scores, points = [], []
    for name, rater in named.items():
        raw = rater[SCORE_COLUMNS].to_numpy(dtype=float)
        totals = raw.sum(axis=1, keepdims=True)
        if not len(rater) or not np.isfinite(raw).all() or (totals <= 0).any():
            continue
        y_true = rater["truth"].map(CLASS_INDEX).to_numpy(dtype=np.int64)
        y_score = raw / totals
        summary = calibration.calibration_summary(y_true, y_score, n_boot=n_boot, seed=seed)
        scores.append(summary.assign(rater=name))
        points.append(calibration.reliability_table(y_true, y_score).assign(model=name))
    if not scores:
        return pd.DataFrame(), pd.DataFrame()
    return pd.concat(scores, ignore_index=True), pd.concat(points, ignore_index=True)


def display_table(frame: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """A table as shown: numbers to ``digits`` places, p-values by :func:`format_p_value`, and
    undefined cells blank (never ``None`` or ``nan``). Text columns are kept as they are."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if str(column).replace("-", "_").lower() in ("p_value", "p"):
            out[column] = [format_p_value(None if pd.isna(v) else float(v)) for v in values]
        elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            out[column] = ["" if pd.isna(v) else f"{v:.{digits}f}" for v in values]
        else:
            out[column] = [
                "" if v is None or (isinstance(v, float) and np.isnan(v)) else v for v in values
            ]
    return out


def rater_heading(name: str, n_cases: int) -> str:
    """``"Reader A (641 cases)"``; a name already ending in parentheses gets the count inside
    them: ``"Expert 1 (simulated, 641 cases)"``, never ``"Expert 1 (simulated) (641 cases)"``."""
    if name.endswith(")") and "(" in name:
        return f"{name[:-1]}, {n_cases} cases)"
    return f"{name} ({n_cases} cases)"
