"""A self-contained HTML report of a run comparison, and a zip with it and the CSVs behind it.

No Streamlit here: ``build_report`` takes the prediction rows and run table and returns the files,
so the export is testable and the CLI could write it too. Numbers come from the same
``dashboard.loaders.compute_*`` functions the results page uses, so the report equals the page.
"""

from __future__ import annotations

import html
import io
import zipfile
from dataclasses import dataclass, field

import pandas as pd
import plotly.io as pio

from core.data.labels import CLASSES
from core.statistics.metrics import ci_methods
from dashboard import figures, loaders
from db.clock import utc_now
from db.spreadsheet import escape_frame

RUN_COLUMNS = ("run_id", "model", "mode", "status", "device", "weights", "seed", "created_at")
PROVENANCE_COLUMNS = ("weights_used", "auc_macro_95ci", "warnings", "data", "code_version")


@dataclass
class Report:
    """The report's HTML page and its CSV files (name -> text)."""

    html: str
    csvs: dict[str, str] = field(default_factory=dict)

    def to_zip(self) -> bytes:
        """``report.html`` and every CSV in one zip archive."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("report.html", self.html)
            for name, text in self.csvs.items():
                archive.writestr(name, text)
        return buffer.getvalue()


def _table_html(frame: pd.DataFrame, *, index: bool = False) -> str:
    return frame.to_html(
        index=index, float_format=lambda v: f"{v:.3f}", na_rep="undefined", border=0, classes="t"
    )


def build_report(
    predictions: pd.DataFrame,
    runs: pd.DataFrame,
    *,
    cases: pd.DataFrame | None = None,
    title: str = "CervixScope cross-validation report",
    n_boot: int = loaders.N_BOOT,
    validations: list[dict] | None = None,
) -> Report:
    """Build the report for the runs in ``runs`` from their out-of-fold ``predictions``.

    Parameters
    ----------
    predictions : DataFrame
        ``db.predictions_frame`` rows (``run_id, case_id, fold, label, p_SCC, p_AC, p_ASC``).
    runs : DataFrame
        ``db.runs_frame`` rows of the runs to compare (at least ``run_id, model, mode``).
    cases : DataFrame, optional
        ``case_id, synthetic`` of the cases: synthetic data is then labelled everywhere.
    n_boot : int
        Bootstrap resamples for the 95% confidence intervals.
    validations : list of dict, optional
        External validations to set beside internal CV (``dashboard.external.latest_validations``).
    """
    if runs.empty:
        raise ValueError("no runs chosen: pick at least one finished run to report on")
    missing = sorted(set(runs["run_id"]) - set(predictions["run_id"].unique()))
    if missing:
        raise ValueError(f"run(s) {', '.join(missing)} have no predictions yet; finish them first")
    labels = loaders.run_labels(runs)
    tables = loaders.compute_metric_tables(predictions, labels, n_boot=n_boot)
    confusions = loaders.compute_confusions(predictions, labels)
    per_fold = loaders.compute_fold_metrics(predictions, labels)
    summary = loaders.fold_summary(per_fold)
    roc, confusion_html, folds = _figures_html(
        loaders.compute_roc_curves(predictions, labels), confusions, per_fold, labels
    )
    run_table = _run_table(runs, predictions, cases)
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Generated {utc_now():%Y-%m-%d %H:%M} UTC. Out-of-fold predictions, one per patient. "
        f"{html.escape(ci_methods(grouped=False, n_boot=n_boot))} "
        f"Classes: {', '.join(CLASSES)}.</p>",
        *_provenance_html(runs, labels, run_table),
        "<h2>Runs</h2>",
        _table_html(run_table),
    ]
    for average in loaders.AVERAGES:
        sections += [
            f"<h2>Table 1 ({average} average)</h2>",
            _table_html(loaders.table_one(tables, average=average), index=True),
        ]
    sections += ["<h2>ROC curves</h2>", roc, "<h2>Confusion matrices</h2>"]
    sections += [f'<div class="fig">{h}</div>' for h in confusion_html]
    sections += ["<h2>Per-fold metrics (macro)</h2>", _table_html(summary), folds]
    calibration_html, calibration = _calibration_html(predictions, labels, n_boot)
    sections += calibration_html
    repeats = loaders.compute_repeat_table(predictions, runs)
    if not repeats.empty:  # repeated CV: each repeat's pooled metrics, their mean and spread
        sections += ["<h2>Repeated cross-validation: spread across repeats</h2>"]
        sections += [_table_html(repeats)]
    sections += ["<h2>Metrics per model, class and average</h2>"]
    for name, part in tables.groupby("model", sort=False):
        sections += [
            f"<h3>{html.escape(name)}</h3>",
            _table_html(part.drop(columns=["run_id", "model"])),
        ]
    frames = {
        "runs.csv": run_table,
        "predictions.csv": _predictions_with_provenance(predictions, run_table, cases),
        "metrics.csv": tables,
        "confusion.csv": _confusion_frame(confusions, labels),
        "per_fold.csv": per_fold,
        "per_fold_summary.csv": summary,
        "calibration.csv": calibration,
    }
    external_html, external_rows = _external(predictions, validations, n_boot)
    frames.update({"external_predictions.csv": external_rows} if validations else {})
    csvs = {name: escape_frame(frame).to_csv(index=False) for name, frame in frames.items()}
    return Report(html=_page(title, sections + external_html), csvs=csvs)


def _external(predictions, validations, n_boot) -> tuple[list[str], pd.DataFrame]:
    """Internal CV beside each external validation, and the external predictions behind it."""
    from dashboard import external

    sections, frames = [], []
    for found in validations or []:
        internal = predictions[predictions["run_id"] == found["run_id"]]
        side = external.compute_side_by_side(
            internal, found["predictions"], found["cohort"], n_boot=n_boot
        )
        sections += [
            f"<h2>External validation: run {html.escape(found['run_id'])} on cohort "
            f"{html.escape(found['cohort'])}</h2>",
            f"<p>{html.escape(found['source'])}; one prediction per patient.</p>",
            _table_html(side["table_one"], index=True),
            pio.to_html(side["roc"], full_html=False, include_plotlyjs=False),
            "<h3>Calibration</h3>", _table_html(side["calibration"], index=True),
            "<h3>External cohort per site</h3>", _table_html(side["sites"]),
            "<h3>Shift checks</h3>", _table_html(external.shift_table(found["shift"])),
        ]  # fmt: skip
        frames.append(found["predictions"].assign(run_id=found["run_id"], cohort=found["cohort"]))
    return sections, pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _calibration_html(predictions, labels, n_boot) -> tuple[list[str], pd.DataFrame]:
    """The calibration section (Brier, ECE with patient-bootstrap CIs; reliability diagram)."""
    calibration = loaders.compute_calibration(predictions, labels, n_boot=n_boot)
    figure = pio.to_html(
        figures.reliability_figure(calibration["reliability"]),
        full_html=False,
        include_plotlyjs=False,  # the first figure of the page already carries plotly.js
    )
    return [
        "<h2>Calibration</h2>",
        "<p>Can the probabilities be read as probabilities? Brier score and expected calibration "
        "error (10 equal-width bins), one class against the rest; lower is better; 95% CIs by "
        "percentile bootstrap over patients.</p>",
        _table_html(loaders.calibration_table(calibration["scores"]), index=True),
        figure,
    ], calibration["scores"]


def _run_table(runs: pd.DataFrame, predictions: pd.DataFrame, cases) -> pd.DataFrame:
    """The runs with how their numbers were made: weights really used, warnings, synthetic data."""
    counts = loaders.counts_from(predictions, cases)
    full = loaders.with_provenance(runs, counts)
    wanted = [*RUN_COLUMNS, *PROVENANCE_COLUMNS]
    table = full[[c for c in wanted if c in full.columns]]
    n_cases = predictions.groupby("run_id")["case_id"].nunique().rename("cases")
    table = table.merge(n_cases, left_on="run_id", right_index=True, how="left")
    text = [c for c in table.columns if table[c].dtype == object]
    return table.assign(**{c: table[c].fillna("") for c in text})


def _provenance_html(runs: pd.DataFrame, labels: dict, run_table: pd.DataFrame) -> list[str]:
    """A section saying how the numbers were made, warnings and synthetic data first."""
    items = []
    for level, text in loaders.provenance_notes(runs, labels):
        tag = "<b>Warning:</b> " if level == "warning" else ""
        items.append(f"<li>{tag}{html.escape(text)}</li>")
    if "data" in run_table and (run_table["data"] != "").any():
        items.insert(0, "<li><b>Synthetic data:</b> generated demo images, not patients ("
                     + html.escape("; ".join(sorted(set(run_table["data"]) - {""}))) + ").</li>")  # fmt: skip
    return ["<h2>How these numbers were made</h2>", f"<ul class='prov'>{''.join(items)}</ul>"]


def _predictions_with_provenance(predictions: pd.DataFrame, run_table: pd.DataFrame, cases):
    """Each prediction row with its run's weights and warnings (and the case's synthetic flag)."""
    keep = [c for c in ("run_id", "weights_used", "warnings") if c in run_table]
    extra = run_table[keep].rename(columns={"warnings": "run_warnings"})
    out = predictions.merge(extra, on="run_id", how="left")
    if cases is not None:
        flags = cases.set_index("case_id")["synthetic"].astype(bool)
        out["synthetic"] = out["case_id"].map(flags).fillna(False).astype(bool)
    return out


def _figures_html(curves, confusions, per_fold, labels) -> tuple[str, list[str], str]:
    """The ROC figure, two confusion figures per run (counts, row-normalised) and the fold figure."""
    figs = [figures.roc_figure(curves)]
    for run_id, name in labels.items():
        for normalise in (False, True):
            kind = "row-normalised" if normalise else "counts"
            figs.append(
                figures.confusion_figure(
                    confusions[run_id], normalise=normalise, title=f"{name}: {kind}", run_id=run_id
                )
            )
    figs.append(figures.fold_metrics_figure(per_fold))
    # plotly.js once, inline (the file works offline); later figures reuse it.
    parts = [
        pio.to_html(f, full_html=False, include_plotlyjs=(i == 0), config={"responsive": True})
        for i, f in enumerate(figs)
    ]
    return parts[0], parts[1:-1], parts[-1]


def _page(title: str, sections: list[str]) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:2em;max-width:1300px}"
        "table.t{border-collapse:collapse;margin:.5em 0}"
        ".t td,.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
        ".fig{display:inline-block}</style></head><body>" + "\n".join(sections) + "</body></html>"
    )


def _confusion_frame(confusions: dict, labels: dict) -> pd.DataFrame:
    """Long form: one row per run, true class and predicted class, with the count."""
    return pd.DataFrame(
        [
            {
                "run_id": run_id,
                "model": labels[run_id],
                "true": CLASSES[t],
                "predicted": CLASSES[p],
                "count": int(m[t, p]),
            }
            for run_id, m in confusions.items()
            for t in range(len(CLASSES))
            for p in range(len(CLASSES))
        ]
    )
