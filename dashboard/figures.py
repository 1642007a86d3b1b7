"""Plotly figure builders shared by the results, report and reader-study pages.

Builders take numbers already computed by ``core.statistics.metrics`` and only draw them. Selectable figures
carry what a click needs in ``customdata``: ``[run_id, class_index, threshold]`` on ROC markers and
``[run_id, true_class, predicted_class]`` on confusion-matrix markers (see ``dashboard.selection``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.data.labels import CLASSES, class_indices
from core.statistics import metrics

PROB_COLUMNS = [f"p_{name}" for name in CLASSES]
MACRO = "macro"
PALETTE = qualitative.Plotly
# sklearn's first ROC threshold is +inf (nothing called positive); JSON has no inf, and any value
# above the largest probability selects the same empty set of cases.
_ABOVE_ANY_PROBABILITY = 1.0 + 1e-6


@dataclass(frozen=True)
class RocCurve:
    """One ROC curve: a class one-vs-rest (``class_index`` set) or the macro average (None)."""

    name: str  # model or reader name shown in the legend
    fpr: np.ndarray
    tpr: np.ndarray
    auc: float
    class_index: int | None = None
    thresholds: np.ndarray | None = None
    run_id: str = ""

    @property
    def class_name(self) -> str:
        return MACRO if self.class_index is None else CLASSES[self.class_index]

    def thinned(self, max_points: int) -> RocCurve:
        """At most ``max_points`` of the curve's points, evenly spaced along its length (first and
        last kept): on screen the same curve, within 2 / ``max_points`` of every point left out,
        at a fraction of the bytes. The AUC stays that of the whole curve."""
        if len(self.fpr) <= max_points:
            return self
        length = np.concatenate(
            [[0.0], np.cumsum(np.abs(np.diff(self.fpr)) + np.abs(np.diff(self.tpr)))]
        )
        keep = np.unique(np.searchsorted(length, np.linspace(0.0, length[-1], max_points)))
        keep = np.unique(np.concatenate([[0], keep, [len(self.fpr) - 1]]))
        thresholds = None if self.thresholds is None else self.thresholds[keep]
        return replace(self, fpr=self.fpr[keep], tpr=self.tpr[keep], thresholds=thresholds)


def _arrays(predictions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    y_true = class_indices(predictions["label"])
    y_score = predictions[PROB_COLUMNS].to_numpy(dtype=float)
    return y_true, y_score


def roc_curves_for_run(predictions: pd.DataFrame, *, run_id: str, name: str) -> list[RocCurve]:
    """One-vs-rest curves per class plus the macro-average curve for one run's predictions.

    Class curves and every AUC come from ``core.statistics.metrics``; the macro curve averages the class
    TPRs on the union of their FPR points (``core.statistics.metrics.macro_roc_curve``); its legend AUC is
    ``roc_auc_ovr(..., average="macro")``.
    """
    rows = predictions[predictions["run_id"] == run_id] if "run_id" in predictions else predictions
    y_true, y_score = _arrays(rows)
    aucs = np.atleast_1d(metrics.roc_auc_ovr(y_true, y_score, average=None))
    curves = []
    for k in range(len(CLASSES)):
        fpr, tpr, thresholds = metrics.roc_curve_ovr(y_true, y_score, k)
        thresholds = np.where(np.isfinite(thresholds), thresholds, _ABOVE_ANY_PROBABILITY)
        curves.append(
            RocCurve(name, np.asarray(fpr), np.asarray(tpr), float(aucs[k]), k, thresholds, run_id)
        )
    try:
        grid, mean_tpr = metrics.macro_roc_curve(y_true, y_score)
    except ValueError:  # only one class present: no macro curve to draw
        return curves
    macro_auc = float(metrics.roc_auc_ovr(y_true, y_score, average="macro"))
    curves.append(RocCurve(name, grid, mean_tpr, macro_auc, None, None, run_id))
    return curves


def roc_figure(curves: Sequence[RocCurve], *, title: str = "ROC curves (one-vs-rest)") -> go.Figure:
    """One panel per class (and one for macro), one colour per model, AUC in every legend entry.

    Class curves are drawn with markers so a click selects a threshold; macro curves are lines only
    (an averaged curve has no threshold).
    """
    panels = [c for c in (*CLASSES, MACRO) if any(cv.class_name == c for cv in curves)]
    fig = make_subplots(
        rows=1,
        cols=max(len(panels), 1),
        subplot_titles=[f"{p} vs rest" if p != MACRO else "Macro average" for p in panels],
        shared_yaxes=True,
        horizontal_spacing=0.04,
    )
    names = list(dict.fromkeys(c.name for c in curves))
    for curve in curves:
        col = panels.index(curve.class_name) + 1
        colour = PALETTE[names.index(curve.name) % len(PALETTE)]
        selectable = curve.thresholds is not None
        custom = None
        if selectable:
            n = len(curve.thresholds)
            custom = np.empty((n, 3), dtype=object)  # one array, not n lists: builds 5x faster
            custom[:, 0], custom[:, 1] = curve.run_id, int(curve.class_index)
            custom[:, 2] = np.asarray(curve.thresholds, dtype=float)
        fig.add_trace(
            go.Scatter(
                x=curve.fpr,
                y=curve.tpr,
                mode="lines+markers" if selectable else "lines",
                marker={"size": 3},
                line={"color": colour, "shape": "linear"},
                name=f"{curve.name} · {curve.class_name}: AUC {curve.auc:.3f}",
                legendgroup=curve.name,
                customdata=custom,
                hovertemplate=(
                    "FPR %{x:.3f}<br>TPR %{y:.3f}<br>threshold %{customdata[2]:.3f}<extra></extra>"
                    if selectable
                    else "FPR %{x:.3f}<br>TPR %{y:.3f}<extra></extra>"
                ),
            ),
            row=1,
            col=col,
        )
    for col in range(1, len(panels) + 1):
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[0, 1],
                mode="lines",
                line={"color": "lightgrey", "dash": "dash"},
                showlegend=False,
                hoverinfo="skip",
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(title_text="1 - specificity", range=[-0.02, 1.02], row=1, col=col)
    fig.update_yaxes(title_text="Sensitivity", range=[-0.02, 1.02], row=1, col=1)
    fig.update_layout(
        title=title,
        height=420,
        legend={"orientation": "h", "y": -0.25},
        clickmode="event+select",
        margin={"t": 70, "b": 40},
    )
    return fig


def confusion_figure(
    matrix: np.ndarray,
    *,
    normalise: bool = False,
    title: str = "Confusion matrix",
    run_id: str = "",
    classes: Sequence[str] = CLASSES,
) -> go.Figure:
    """A clickable confusion matrix: square markers on categorical axes, rows = true class.

    ``normalise=True`` colours and labels each cell by its share of the true class (row); the count
    stays in the hover text. ``customdata`` per marker: ``[run_id, true_class, predicted_class,
    count]``.
    """
    counts = np.asarray(matrix, dtype=float)
    k = len(classes)
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix has shape {counts.shape}; expected ({k}, {k})")
    row_sums = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(row_sums > 0, counts / row_sums, np.nan)
    values = shares if normalise else counts
    true_names, pred_names, custom, text, colour = [], [], [], [], []
    for t in range(k):
        for p in range(k):
            true_names.append(classes[t])
            pred_names.append(classes[p])
            custom.append([run_id, classes[t], classes[p], int(counts[t, p])])
            v = values[t, p]
            text.append("–" if np.isnan(v) else (f"{v:.2f}" if normalise else f"{int(v)}"))
            colour.append(0.0 if np.isnan(v) else float(v))
    top = max(colour) if colour and max(colour) > 0 else 1.0
    ink = ["white" if c > 0.55 * top else "#333" for c in colour]  # readable on dark cells
    fig = go.Figure(
        go.Scatter(
            x=pred_names,
            y=true_names,
            mode="markers+text",
            text=text,
            textfont={"size": 16, "color": ink},
            customdata=custom,
            marker={
                "symbol": "square",
                "size": 70,
                "color": colour,
                "colorscale": "Blues",
                "cmin": 0,
                "cmax": top,
                "showscale": True,
                "colorbar": {"title": "share of row" if normalise else "cases"},
                "line": {"color": "white", "width": 1},
            },
            hovertemplate=(
                "true %{customdata[1]}<br>predicted %{customdata[2]}<br>"
                "%{customdata[3]} cases<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(
        title_text="Predicted", type="category", categoryorder="array", categoryarray=list(classes)
    )
    fig.update_yaxes(
        title_text="True",
        type="category",
        categoryorder="array",
        categoryarray=list(classes)[::-1],  # first class on top, as in the paper's tables
    )
    fig.update_layout(
        title=title, height=360, width=420, clickmode="event+select", margin={"t": 60}
    )
    return fig


def fold_metrics_figure(per_fold: pd.DataFrame, *, title: str = "Per-fold metrics") -> go.Figure:
    """Per-fold values as points with a box per model and metric.

    ``per_fold`` is long: columns ``model, fold, metric, value``.
    """
    fig = go.Figure()
    names = list(dict.fromkeys(per_fold["model"]))
    for i, name in enumerate(names):
        rows = per_fold[per_fold["model"] == name]
        fig.add_trace(
            go.Box(
                x=rows["metric"],
                y=rows["value"],
                name=name,
                boxpoints="all",
                jitter=0.3,
                pointpos=0,
                marker={"color": PALETTE[i % len(PALETTE)]},
                customdata=rows[["fold"]].to_numpy(),
                hovertemplate="fold %{customdata[0]}<br>%{x} %{y:.3f}<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(title=title, boxmode="group", height=380, yaxis={"range": [0, 1.02]})
    return fig


def metric_bar_figure(table: pd.DataFrame, *, title: str = "Models by metric") -> go.Figure:
    """Grouped bars with 95% CI error bars; ``table`` columns ``model, metric, value, ci_low, ci_high``."""
    fig = go.Figure()
    for i, name in enumerate(dict.fromkeys(table["model"])):
        rows = table[table["model"] == name]
        fig.add_trace(
            go.Bar(
                x=rows["metric"],
                y=rows["value"],
                name=name,
                marker={"color": PALETTE[i % len(PALETTE)]},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": (rows["ci_high"] - rows["value"]).to_numpy(),
                    "arrayminus": (rows["value"] - rows["ci_low"]).to_numpy(),
                },
            )
        )
    fig.update_layout(title=title, barmode="group", height=380, yaxis={"range": [0, 1.05]})
    return fig


def reliability_figure(
    points: pd.DataFrame, *, title: str = "Reliability (one-vs-rest)"
) -> go.Figure:
    """Reliability diagram: observed frequency against mean predicted probability per bin, one
    panel per class, one line per model (or reader); the diagonal is perfect calibration.

    ``points`` is long: ``model, class, mean_predicted, observed, count`` (see
    ``core.statistics.calibration.reliability_table``).
    """
    classes = list(dict.fromkeys(points["class"])) or list(CLASSES)
    fig = make_subplots(rows=1, cols=len(classes), subplot_titles=classes, shared_yaxes=True)
    for i, name in enumerate(dict.fromkeys(points["model"])):
        for j, cls in enumerate(classes):
            rows = points[(points["model"] == name) & (points["class"] == cls)]
            fig.add_trace(
                go.Scatter(
                    x=rows["mean_predicted"], y=rows["observed"], mode="lines+markers", name=name,
                    legendgroup=name, showlegend=j == 0,
                    marker={"color": PALETTE[i % len(PALETTE)], "size": 6},
                    customdata=rows[["count"]].to_numpy(),
                    hovertemplate="predicted %{x:.2f}<br>observed %{y:.2f}<br>%{customdata[0]} "
                    "cases<extra>" + name + "</extra>",
                ),
                row=1, col=j + 1,
            )  # fmt: skip
    for j in range(len(classes)):
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False, hoverinfo="skip",
                       line={"dash": "dot", "color": "grey"}),
            row=1, col=j + 1,
        )  # fmt: skip
    fig.update_xaxes(range=[0, 1], title_text="mean predicted probability")
    fig.update_yaxes(range=[0, 1.02], title_text="observed frequency", col=1)
    fig.update_layout(title=title, height=360)
    return fig


def training_curves_figure(curves: pd.DataFrame, *, title: str = "Training curves") -> go.Figure:
    """Per-epoch training (solid) and validation (dashed) loss of each fold, one colour per fold.

    ``curves`` is long: ``model, fold, epoch, train_loss, val_loss``.
    """
    fig = go.Figure()
    for i, ((name, fold), rows) in enumerate(curves.groupby(["model", "fold"], sort=True)):
        colour = PALETTE[i % len(PALETTE)]
        for column, dash in (("train_loss", "solid"), ("val_loss", "dash")):
            fig.add_trace(
                go.Scatter(
                    x=rows["epoch"], y=rows[column], mode="lines+markers",
                    name=f"{name} fold {fold} {column.split('_')[0]}",
                    line={"color": colour, "dash": dash},
                )
            )  # fmt: skip
    fig.update_layout(title=title, height=380, xaxis_title="epoch", yaxis_title="cross-entropy")
    return fig
