"""The reader-study analysis tables, assembled from database frames with core.statistics.metrics/stats/mrmc.

Pure functions (no Streamlit) so tests can check every table against the reads in the database.
A *rater* is a reader or the model; each rater frame has one row per case with ``case_id, truth,
label`` (class names) and per-class scores ``c_SCC, c_AC, c_ASC`` (reader confidences, or the
model's out-of-fold probabilities under the same names).
"""

from __future__ import annotations

import itertools
import json
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import db
from core.labels import CLASS_INDEX, CLASSES
from core.statistics import metrics, stats

SCORE_COLUMNS = [f"c_{name}" for name in CLASSES]
MODEL = "Model"


@dataclass
class StudyData:
    """Everything the analysis page needs for one study, read once per rerun."""

    study: dict
    reads: (
        pd.DataFrame
    )  # one row per reader, case and arm: reader, case_id, arm, truth, label, c_*, seconds
    model: pd.DataFrame | None  # one row per study case: case_id, truth, label, c_* (probabilities)
    model_seconds_per_case: float | None = None
    simulated_readers: list[str] = field(default_factory=list)

    @property
    def arms(self) -> list[str]:
        return [a for a in _arms(self.study) if a in set(self.reads["arm"])] or _arms(self.study)


def _arms(study: dict) -> list[str]:
    arms = study.get("arms", ["unaided"])
    if isinstance(arms, str):
        arms = json.loads(arms) if arms.strip().startswith("[") else arms.split(",")
    return [a.strip() for a in arms]


def _pick(frame: pd.DataFrame, *names: str) -> str:
    for name in names:
        if name in frame.columns:
            return name
    raise KeyError(f"none of the columns {names} is in the frame ({', '.join(frame.columns)})")


def _seconds(reads: pd.DataFrame) -> pd.Series:
    if "duration_ms" in reads.columns and reads["duration_ms"].notna().any():
        return reads["duration_ms"].astype(float) / 1000.0
    shown = pd.to_datetime(reads["shown_at"], utc=True, errors="coerce", format="ISO8601")
    done = pd.to_datetime(reads["submitted_at"], utc=True, errors="coerce", format="ISO8601")
    return (done - shown).dt.total_seconds()


def tidy_reads(reads: pd.DataFrame) -> pd.DataFrame:
    """``db.reads_frame`` rows as ``reader, reader_id, simulated, case_id, arm, truth, label, c_*,
    seconds``."""
    if reads.empty:
        cols = ["reader", "reader_id", "simulated", "case_id", "arm", "truth", "label"]
        return pd.DataFrame(columns=[*cols, *SCORE_COLUMNS, "seconds"])
    out = pd.DataFrame(
        {
            "reader": reads[_pick(reads, "display_name", "reader_name", "reader")].astype(str),
            "reader_id": reads["reader_id"].astype(int),
            "simulated": reads.get("reader_simulated", pd.Series(0, index=reads.index))
            .fillna(0)
            .astype(bool),
            "case_id": reads["case_id"].astype(str),
            "arm": reads["arm"].astype(str),
            "truth": reads[_pick(reads, "truth", "true_label", "case_label")].astype(str),
            "label": reads[_pick(reads, "label", "label_read")].astype(str),
        }
    )
    for col in SCORE_COLUMNS:
        out[col] = reads[col].astype(float) if col in reads.columns else np.nan
    out["seconds"] = _seconds(reads).to_numpy()
    return out.reset_index(drop=True)


def model_frame(predictions: pd.DataFrame, case_ids) -> pd.DataFrame:
    """The model's out-of-fold predictions on the study's cases, as a rater frame."""
    rows = predictions[predictions["case_id"].astype(str).isin(set(map(str, case_ids)))]
    probs = rows[[f"p_{name}" for name in CLASSES]].to_numpy(dtype=float)
    out = pd.DataFrame(
        {
            "case_id": rows["case_id"].astype(str).to_numpy(),
            "truth": rows["label"].astype(str).to_numpy(),
            "label": np.array(CLASSES)[probs.argmax(axis=1)] if len(rows) else [],
        }
    )
    for j, col in enumerate(SCORE_COLUMNS):
        out[col] = probs[:, j]
    return out


def _model_seconds(run: dict | None) -> float | None:
    """Seconds per case the model needs at inference, if the run recorded it."""
    if not run or not run.get("timings"):
        return None
    timings = run["timings"]
    if isinstance(timings, str):
        try:
            timings = json.loads(timings)
        except ValueError:
            return None
    for key in ("predict_seconds_per_case", "inference_seconds_per_case", "seconds_per_case"):
        if isinstance(timings, dict) and timings.get(key) is not None:
            return float(timings[key])
    return None


def load_study_data(conn, study_id: int) -> StudyData:
    """Read the study, its reads (with truth: researcher pages only) and the model's predictions."""
    study = dict(db.get_study(conn, study_id))
    reads = tidy_reads(db.reads_frame(conn, study_id))
    model = None
    seconds = None
    run_id = study.get("model_run_id")
    if run_id:
        # all of the run's cases; `raters` keeps only those the readers of an arm have read
        predictions = db.predictions_frame(conn, [run_id])
        model = model_frame(predictions, predictions["case_id"])
        try:
            seconds = _model_seconds(db.get_run(conn, run_id))
        except db.RunNotFound:
            seconds = None
    simulated = sorted(set(reads.loc[reads["simulated"], "reader"]))
    return StudyData(study, reads, model, seconds, simulated)


# ---------------------------------------------------------------- raters and their tables
def raters(data: StudyData, arm: str, *, with_model: bool = True) -> dict[str, pd.DataFrame]:
    """``{name: rater frame}`` for each reader of ``arm`` and, when the study has one, the model
    restricted to the cases any reader of the arm has read (the same cases)."""
    reads = data.reads[data.reads["arm"] == arm]
    out = {
        name: group.drop(columns=["reader", "arm"]).reset_index(drop=True)
        for name, group in reads.groupby("reader", sort=True)
    }
    if with_model and data.model is not None and len(reads):
        seen = set(reads["case_id"])
        model = data.model[data.model["case_id"].isin(seen)].reset_index(drop=True)
        if len(model):
            out = {MODEL: model, **out}
    return out


def _indices(labels) -> np.ndarray:
    return np.array([CLASS_INDEX[x] for x in labels], dtype=np.int64)


def confusion_table(rater: pd.DataFrame) -> pd.DataFrame:
    """The paper's layout: rows true SCC/AC/ASC, columns predicted SCC/AC/ASC, counts."""
    cm = metrics.confusion_matrix(_indices(rater["truth"]), _indices(rater["label"]))
    return pd.DataFrame(
        cm,
        index=pd.Index([f"true {c}" for c in CLASSES], name=""),
        columns=[f"predicted {c}" for c in CLASSES],
    )


def metrics_table(rater: pd.DataFrame, *, n_boot: int = 500, seed: int = 0) -> pd.DataFrame:
    """Precision, sensitivity, specificity, accuracy and error rate (and AUC from the scores)
    with 95% CIs, per class and overall: ``core.statistics.metrics.classification_table``."""
    scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
    y_score = scores if np.isfinite(scores).all() and len(scores) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = metrics.classification_table(
            _indices(rater["truth"]), _indices(rater["label"]), y_score, n_boot=n_boot, seed=seed
        )
    keep = {"precision", "sensitivity", "specificity", "accuracy", "error_rate", "auc"}
    table = table[table["metric"].isin(keep) & table["scope"].isin([*CLASSES, "macro", "overall"])]
    return table.reset_index(drop=True)


def operating_point(rater: pd.DataFrame, class_index: int) -> tuple[float, float]:
    """A rater's one-vs-rest (1 - specificity, sensitivity) for one class, from its labels."""
    truth = _indices(rater["truth"]) == class_index
    called = _indices(rater["label"]) == class_index
    sens = called[truth].mean() if truth.any() else np.nan
    fpr = called[~truth].mean() if (~truth).any() else np.nan
    return float(fpr), float(sens)


def as_predictions(rater: pd.DataFrame) -> pd.DataFrame:
    """A rater frame in ``db.predictions_frame`` form (``label`` = truth, ``p_*`` = scores), for
    the ROC figure builders."""
    out = pd.DataFrame({"case_id": rater["case_id"], "label": rater["truth"]})
    for name in CLASSES:
        out[f"p_{name}"] = rater[f"c_{name}"].astype(float)
    return out


def mcnemar_table(named: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Model against each reader on the cases both read: accuracies, discordant counts, p-value."""
    if MODEL not in named:
        return pd.DataFrame()
    model = named[MODEL].set_index("case_id")
    rows = []
    for name, rater in named.items():
        if name == MODEL:
            continue
        both = rater[rater["case_id"].isin(model.index)]
        if both.empty:
            continue
        m = model.loc[both["case_id"]]
        model_right = (m["label"] == m["truth"]).to_numpy()
        reader_right = (both["label"] == both["truth"]).to_numpy()
        test = stats.mcnemar_test(model_right, reader_right)
        rows.append(
            {
                "reader": name,
                "cases": len(both),
                "model accuracy": model_right.mean(),
                "reader accuracy": reader_right.mean(),
                "model right, reader wrong": test.b,
                "model wrong, reader right": test.c,
                "statistic": test.statistic,
                "p-value": test.p_value,
                "method": test.method,
            }
        )
    return pd.DataFrame(rows)


def _common_labels(named: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Labels of every rater on the cases all of them read: rows cases, columns raters."""
    wide = None
    for name, rater in named.items():
        col = rater.set_index("case_id")["label"].rename(name)
        wide = col.to_frame() if wide is None else wide.join(col, how="inner")
    return wide if wide is not None else pd.DataFrame()


def kappa_tables(named: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, float | None, int]:
    """Pairwise Cohen's kappa (raters in ``named``, model included if present) and Fleiss' kappa
    over the readers, both on the cases every rater read. Returns (pairwise, fleiss, n_cases)."""
    wide = _common_labels(named)
    if wide.empty or wide.shape[1] < 2:
        return pd.DataFrame(), None, len(wide)
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for a, b in itertools.combinations(wide.columns, 2):
            rows.append(
                {
                    "rater A": a,
                    "rater B": b,
                    "cases": len(wide),
                    "Cohen's kappa": stats.cohen_kappa(wide[a], wide[b]),
                }
            )
        readers = [c for c in wide.columns if c != MODEL]
        fleiss = stats.fleiss_kappa(wide[readers].to_numpy()) if len(readers) >= 2 else None
    return pd.DataFrame(rows), fleiss, len(wide)


def time_table(data: StudyData) -> pd.DataFrame:
    """Seconds per case for each reader and arm, and for the model when its run recorded it."""
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
                "cases": len(data.model) if data.model is not None else 0,
                "median s/case": data.model_seconds_per_case,
                "mean s/case": data.model_seconds_per_case,
                "simulated": False,
            }
        )
    return pd.DataFrame(rows)


def aided_minus_unaided(data: StudyData) -> pd.DataFrame:
    """Per reader, on the cases read in both arms: accuracy, macro AUC and time, aided - unaided."""
    reads = data.reads
    rows = []
    for reader, group in reads.groupby("reader", sort=True):
        un = group[group["arm"] == "unaided"].set_index("case_id")
        ai = group[group["arm"] == "aided"].set_index("case_id")
        common = un.index.intersection(ai.index)
        if common.empty:
            continue
        un, ai = un.loc[common], ai.loc[common]
        row = {"reader": reader, "cases": len(common)}
        for arm, frame in (("unaided", un), ("aided", ai)):
            row[f"accuracy {arm}"] = float((frame["label"] == frame["truth"]).mean())
            row[f"macro AUC {arm}"] = _macro_auc(frame)
            row[f"median s {arm}"] = float(frame["seconds"].median())
        row["accuracy difference"] = row["accuracy aided"] - row["accuracy unaided"]
        row["macro AUC difference"] = row["macro AUC aided"] - row["macro AUC unaided"]
        row["median s difference"] = row["median s aided"] - row["median s unaided"]
        rows.append(row)
    return pd.DataFrame(rows)


def _macro_auc(rater: pd.DataFrame) -> float:
    scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
    if not np.isfinite(scores).all():
        return np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(metrics.roc_auc_ovr(_indices(rater["truth"]), scores, average="macro"))


# ---------------------------------------------------------------- figures
def roc_with_operating_points(named: dict[str, pd.DataFrame]):
    """The model's one-vs-rest ROC curves, each reader's own ROC from confidences, and each
    reader's operating point (from their labels) as a large marker on every class panel."""
    import plotly.graph_objects as go

    from dashboard.figures import PALETTE, roc_curves_for_run, roc_figure

    curves = []
    for name, rater in named.items():
        scores = rater[SCORE_COLUMNS].to_numpy(dtype=float)
        if len(rater) and np.isfinite(scores).all():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                class_curves = roc_curves_for_run(as_predictions(rater), run_id="", name=name)
            curves.extend(c for c in class_curves if c.class_index is not None)
    fig = roc_figure(
        curves, title="One-vs-rest ROC: model curves, reader curves and operating points"
    )
    panels = [c for c in CLASSES if any(cv.class_index == CLASS_INDEX[c] for cv in curves)]
    names = list(dict.fromkeys(c.name for c in curves))
    for name, rater in named.items():
        if name == MODEL or not len(rater):
            continue
        colour = PALETTE[(names.index(name) if name in names else len(names)) % len(PALETTE)]
        for col, cls in enumerate(panels, start=1):
            fpr, tpr = operating_point(rater, CLASS_INDEX[cls])
            fig.add_trace(
                go.Scatter(
                    x=[fpr],
                    y=[tpr],
                    mode="markers",
                    marker={"size": 13, "symbol": "star", "color": colour},
                    name=f"{name} · {cls} operating point",
                    legendgroup=name,
                    hovertemplate=f"{name}<br>1 - specificity %{{x:.3f}}<br>sensitivity %{{y:.3f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
    return fig


def reads_csv(conn, study_id: int) -> bytes:
    """The study's reads as ``db.export_reads_csv`` writes them."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "reads.csv"
        db.export_reads_csv(conn, study_id, path)
        return path.read_bytes()


# ---------------------------------------------------------------- MRMC (core.statistics.mrmc)
MRMC_FOMS = {
    "auc_macro": "macro one-vs-rest AUC (from confidences)",
    "auc:SCC": "AUC SCC vs rest",
    "auc:AC": "AUC AC vs rest",
    "auc:ASC": "AUC ASC vs rest",
    "accuracy": "accuracy (from labels)",
}


def mrmc_reads(data: StudyData, arms: list[str]) -> pd.DataFrame:
    """Long reads ``reader, modality, case, truth, label, c_*`` of a fully crossed design: only
    cases every reader read in every one of ``arms`` (MRMC needs each reader on each case)."""
    reads = data.reads[data.reads["arm"].isin(arms)]
    readers = sorted(set(reads["reader"]))
    needed = len(readers) * len(arms)
    per_case = reads.groupby("case_id")[["reader", "arm"]].apply(
        lambda g: len(set(zip(g["reader"], g["arm"], strict=True)))
    )
    crossed = set(per_case[per_case == needed].index)
    reads = reads[reads["case_id"].isin(crossed)]
    return pd.DataFrame(
        {
            "reader": reads["reader"],
            "modality": reads["arm"],
            "case": reads["case_id"],
            "truth": reads["truth"],
            "label": reads["label"],
            **{col: reads[col] for col in SCORE_COLUMNS},
        }
    ).reset_index(drop=True)


def mrmc_aided_vs_unaided(data: StudyData, *, fom: str = "auc_macro"):
    """Obuchowski-Rockette (random readers and cases, jackknife, Hillis df) of aided against
    unaided reading; raises ValueError when the reads cannot support it (say why)."""
    from core.statistics.mrmc import or_analysis

    frame = mrmc_reads(data, ["aided", "unaided"])
    _check_mrmc(frame, 2)
    return or_analysis(frame, fom=fom, cov="jackknife", analysis="random_readers")


def mrmc_model_vs_readers(data: StudyData, arm: str, *, fom: str = "auc_macro"):
    """The standalone model against the reader panel of ``arm`` on the same cases (OR analysis of
    reader-minus-model FOM differences); raises ValueError when it cannot be computed."""
    from core.statistics.mrmc import standalone_vs_readers

    if data.model is None:
        raise ValueError("the study has no model run to compare with")
    frame = mrmc_reads(data, [arm])
    _check_mrmc(frame, 1)
    model = data.model[data.model["case_id"].isin(set(frame["case"]))]
    model = model.rename(columns={"case_id": "case"}).drop(columns=["truth"])
    return standalone_vs_readers(frame, model, fom=fom, cov="jackknife", analysis="random_readers")


def _check_mrmc(frame: pd.DataFrame, n_modalities: int) -> None:
    readers = frame["reader"].nunique()
    if readers < 2:
        raise ValueError(f"MRMC needs at least 2 readers who read the same cases; have {readers}")
    if frame["modality"].nunique() < n_modalities:
        raise ValueError("no case has been read by every reader in both arms yet")


def metrics_wide(table: pd.DataFrame, *, digits: int = 3) -> pd.DataFrame:
    """``metrics_table`` for reading: rows per class / macro / overall, one column per metric,
    each cell ``value (ci_low-ci_high)``; blank where a metric does not apply."""
    cells = table.assign(
        cell=[
            ""
            if np.isnan(v)
            else f"{v:.{digits}f}" + ("" if np.isnan(lo) else f" ({lo:.{digits}f}-{hi:.{digits}f})")
            for v, lo, hi in zip(table["value"], table["ci_low"], table["ci_high"], strict=True)
        ]
    )
    wide = cells.pivot(index="scope", columns="metric", values="cell").fillna("")
    order = [s for s in (*CLASSES, "macro", "overall") if s in wide.index]
    metrics_order = [
        m
        for m in ("precision", "sensitivity", "specificity", "accuracy", "error_rate", "auc")
        if m in wide.columns
    ]
    return wide.loc[order, metrics_order].rename_axis(index="", columns=None)


def imrmc_text(data: StudyData, positive_class: str) -> str:
    """The study's fully crossed reads (every arm a modality) in iMRMC's input format, for one
    class against the rest, to cross-check the MRMC results in iMRMC or RJafroc."""
    from core.statistics.mrmc import to_imrmc

    frame = mrmc_reads(data, data.arms)
    if frame.empty:
        raise ValueError("no case has been read by every reader in every arm yet")
    return to_imrmc(frame, positive_class=positive_class)


def tables_csv(tables: dict[str, pd.DataFrame]) -> str:
    """Several analysis tables in one CSV text, each under a ``# title`` line."""
    parts = []
    for title, frame in tables.items():
        # confusion tables keep their "true <class>" row labels; the others have no useful index
        parts.append(f"# {title}\n" + frame.to_csv(index=title.startswith("confusion")))
    return "\n".join(parts)
