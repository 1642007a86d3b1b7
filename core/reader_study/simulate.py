"""Simulated expert readers for the demo reader study.

The paper reports the confusion tables of two experts who read the same 641 cases as the model
(487 SCC, 116 AC, 38 ASC). The demo cohort has the same class counts, so a simulated reader can
reproduce a published table *exactly*: within each true class the cases are shuffled (seeded) and
the row's counts are dealt out in turn. Confidences and reading times are simulated too and must
always be labelled as simulated wherever they are shown.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

import db
from core.data.labels import CLASSES

# Rows true SCC/AC/ASC, columns predicted SCC/AC/ASC (the paper's expert tables).
PAPER_EXPERT_TABLES: dict[str, np.ndarray] = {
    "Expert 1 (simulated)": np.array([[477, 0, 10], [5, 101, 10], [8, 7, 23]]),
    "Expert 2 (simulated)": np.array([[480, 1, 6], [1, 108, 7], [3, 2, 33]]),
}
# Median seconds per case for each simulated expert (the paper gives no per-case times).
PAPER_EXPERT_MEDIAN_SECONDS: dict[str, float] = {
    "Expert 1 (simulated)": 38.0,
    "Expert 2 (simulated)": 31.0,
}
_BASE_TIME = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # fixed, so re-seeding is reproducible


def simulate_labels(y_true, confusion, *, seed: int = 0) -> np.ndarray:
    """Predicted labels whose confusion matrix against ``y_true`` equals ``confusion`` exactly.

    Parameters
    ----------
    y_true : array-like of int, shape (n,)
        True class indices into ``CLASSES``.
    confusion : array-like of int, shape (n_classes, n_classes)
        Target table, rows true class, columns predicted class. Row ``i`` must sum to the number
        of cases whose true class is ``i``.
    seed : int
        Seeds which cases of a true class receive which predicted label.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValueError
        If the table is not square, has negative entries, or a row sum differs from the class count.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    table = np.asarray(confusion)
    n_classes = len(CLASSES)
    if table.shape != (n_classes, n_classes):
        raise ValueError(f"confusion must be {n_classes}x{n_classes}, got shape {table.shape}")
    if (table < 0).any() or not np.array_equal(table, np.round(table)):
        raise ValueError("confusion must hold non-negative integer counts")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= n_classes):
        raise ValueError(f"y_true must hold class indices 0..{n_classes - 1}")
    counts = np.bincount(y_true, minlength=n_classes)
    for i, name in enumerate(CLASSES):
        if int(table[i].sum()) != int(counts[i]):
            raise ValueError(
                f"row {name} of the confusion table sums to {int(table[i].sum())} but there are "
                f"{int(counts[i])} true {name} cases: row sums must equal the class counts"
            )
    rng = np.random.default_rng(seed)
    y_pred = np.empty_like(y_true)
    for i in range(n_classes):
        members = rng.permutation(np.flatnonzero(y_true == i))
        y_pred[members] = np.repeat(np.arange(n_classes), table[i].astype(int))
    return y_pred


def simulate_confidences(y_true, y_pred, *, seed: int = 0) -> np.ndarray:
    """Per-class confidences (rows sum to 1) whose largest entry is always the predicted class.

    Correct reads are a little more confident than wrong ones, and on a wrong read the true class
    usually comes second, as a hesitating expert's would: this gives each reader a realistic ROC.

    Returns
    -------
    ndarray of float64, shape (n, n_classes)
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {y_true.shape} but y_pred has shape {y_pred.shape}")
    rng = np.random.default_rng(seed)
    n, k = len(y_pred), len(CLASSES)
    correct = y_true == y_pred
    # Top confidence stays above 0.5, so the other two (summing to < 0.5) can never outrank it.
    top = np.where(correct, rng.uniform(0.6, 0.97, n), rng.uniform(0.52, 0.8, n))
    share = rng.uniform(0.0, 1.0, n)  # how the remainder splits between the two other classes
    share = np.where(correct, share, 0.55 + 0.4 * share)  # wrong read: the truth gets more
    conf = np.zeros((n, k))
    for row in range(n):
        others = [c for c in range(k) if c != y_pred[row]]
        if not correct[row] and others[1] == y_true[row]:
            others.reverse()  # put the true class first, it receives `share` of the remainder
        conf[row, y_pred[row]] = top[row]
        conf[row, others[0]] = (1.0 - top[row]) * share[row]
        conf[row, others[1]] = (1.0 - top[row]) * (1.0 - share[row])
    return conf


def simulate_seconds(n: int, *, median: float = 30.0, sigma: float = 0.45, seed: int = 0):
    """Reading times in seconds, lognormal around ``median`` (floored at 3 s)."""
    if median <= 0:
        raise ValueError(f"median must be positive seconds, got {median}")
    rng = np.random.default_rng(seed)
    return np.maximum(3.0, rng.lognormal(np.log(median), sigma, n))


def simulate_reader(
    case_ids, y_true, confusion, *, seed: int = 0, median_seconds: float = 30.0
) -> pd.DataFrame:
    """One simulated reader's reads of ``case_ids`` in a seeded reading order.

    Returns
    -------
    DataFrame
        One row per case in reading order: ``case_id, label`` (class name), ``c_SCC, c_AC, c_ASC``
        (sum 1), ``seconds``, ``shown_at`` and ``submitted_at`` (ISO-8601 UTC strings; the reader
        starts at a fixed date and reads case after case).
    """
    case_ids = np.asarray(case_ids).astype(str)
    y_true = np.asarray(y_true, dtype=np.int64)
    if len(case_ids) != len(y_true):
        raise ValueError(f"{len(case_ids)} case_ids but {len(y_true)} labels")
    y_pred = simulate_labels(y_true, confusion, seed=seed)
    conf = simulate_confidences(y_true, y_pred, seed=seed + 1)
    seconds = simulate_seconds(len(case_ids), median=median_seconds, seed=seed + 2)
    order = np.random.default_rng(seed + 3).permutation(len(case_ids))
    frame = pd.DataFrame({"case_id": case_ids, "label": np.array(CLASSES)[y_pred]})
    for j, name in enumerate(CLASSES):
        frame[f"c_{name}"] = conf[:, j]
    frame["seconds"] = seconds
    frame = frame.iloc[order].reset_index(drop=True)
    ends = np.cumsum(frame["seconds"].to_numpy() + 2.0)  # ~2 s between cases
    starts = ends - frame["seconds"].to_numpy()
    frame["shown_at"] = [_iso(_BASE_TIME + timedelta(seconds=float(s))) for s in starts]
    frame["submitted_at"] = [_iso(_BASE_TIME + timedelta(seconds=float(e))) for e in ends]
    return frame


def simulate_paper_readers(case_ids, y_true, *, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Both paper experts, as ``{display name: simulate_reader(...) frame}``.

    ``y_true`` must have the paper's class counts (487 SCC, 116 AC, 38 ASC), as the demo cohort does.
    """
    return {
        name: simulate_reader(
            case_ids,
            y_true,
            table,
            seed=seed + 100 * i,
            median_seconds=PAPER_EXPERT_MEDIAN_SECONDS[name],
        )
        for i, (name, table) in enumerate(PAPER_EXPERT_TABLES.items())
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


DEMO_STUDY_NAME = "Demo reader study"


def seed_demo_study(conn, *, seed: int = 0, model_run_id: str | None = None) -> int:
    """Create (or complete) the demo study: every case in the database read by both simulated
    paper experts, all marked simulated. Idempotent: a re-run adds no study, reader or read.

    Parameters
    ----------
    conn : sqlite_utils.Database
        A ``db.connect()`` database holding the ingested demo cohort.
    seed : int
        Seeds the simulated labels, confidences and times.
    model_run_id : str, optional
        The model run whose out-of-fold predictions the study compares against.

    Returns
    -------
    int
        The study id.
    """
    cases, y_true = _demo_cohort(conn)
    study_id = _demo_study_id(conn, cases["case_id"].tolist(), seed, model_run_id)
    progress = db.reader_progress_frame(conn, study_id)
    known = dict(zip(progress["display_name"], progress["reader_id"], strict=True))
    for name, reads in simulate_paper_readers(cases["case_id"], y_true, seed=seed).items():
        if name in known:
            reader_id = int(known[name])
        else:
            reader_id, _code = db.add_reader(conn, study_id, name, simulated=True)
        _submit_missing_reads(conn, study_id, reader_id, reads)
    return study_id


def _demo_cohort(conn) -> tuple[pd.DataFrame, np.ndarray]:
    """The default cohort's cases by id and their class indices; they must have the paper's
    counts (another cohort, e.g. an external validation set, is never drawn in)."""
    cases = db.cases_frame(conn).sort_values("case_id")
    cases = cases[cases["cohort"] == db.cases.DEFAULT_COHORT]
    if cases.empty:
        raise ValueError("the database has no cases: ingest the demo cohort first")
    y_true = np.array([CLASSES.index(label) for label in cases["label"]])
    counts = np.bincount(y_true, minlength=len(CLASSES))
    paper = next(iter(PAPER_EXPERT_TABLES.values())).sum(axis=1)
    if not np.array_equal(counts, paper):
        raise ValueError(
            f"the demo study reproduces the paper's expert tables, so it needs the paper's class "
            f"counts {'/'.join(map(str, paper))} (SCC/AC/ASC); the database has "
            f"{'/'.join(map(str, counts))}: ingest the full demo cohort (cervixscope demo-data)"
        )
    return cases, y_true


def _demo_study_id(conn, case_ids: list[str], seed: int, model_run_id: str | None) -> int:
    """The demo study's id, creating the study on first use."""
    studies = db.studies_frame(conn)
    existing = studies[studies["name"] == DEMO_STUDY_NAME]
    if len(existing):
        return int(existing.iloc[0]["study_id"])
    return db.create_study(
        conn,
        name=DEMO_STUDY_NAME,
        case_ids=case_ids,
        arms=("unaided",),
        order_seed=seed,
        model_run_id=model_run_id,
        simulated=True,
    )


def _submit_missing_reads(conn, study_id: int, reader_id: int, reads: pd.DataFrame) -> None:
    """Store the simulated reads this reader does not have yet (a re-run adds none)."""
    done = db.worklist(conn, study_id, reader_id, "unaided")
    done = set(done.loc[done["label_read"].notna(), "case_id"])
    for read in reads.itertuples(index=False):
        if read.case_id in done:
            continue
        db.submit_read(
            conn,
            study_id=study_id,
            reader_id=reader_id,
            case_id=read.case_id,
            arm="unaided",
            label=read.label,
            confidences={f"c_{c}": getattr(read, f"c_{c}") for c in CLASSES},
            shown_at=read.shown_at,
            submitted_at=read.submitted_at,
        )


DEMO_READER_STUDY = "Try the reading workstation"
DEMO_READER_NAME = "Demo reader"
DEMO_READER_CASES = 20


def demo_reader_code(conn, *, model_run_id: str | None = None, seed: int = 0) -> str:
    """A ready access code for a person to try the reader view (``make demo`` prints it).

    Creates, on first use, a small study of its own (a stratified sample of 20 cases, the unaided
    arm then the AI-aided arm with no washout when a model run is given) with one reader, kept
    apart from the simulated paper study. Codes are stored only hashed, so each call issues the
    demo reader a new code; the old one stops working.

    Parameters
    ----------
    conn : sqlite_utils.Database
        A ``db.connect()`` database holding an ingested cohort.
    model_run_id : str, optional
        The run whose output the aided arm shows.
    seed : int
        Seeds the case sample and the reading order.

    Returns
    -------
    str
        The demo reader's access code.
    """
    from core.reader_study.sampling import cases_in_cohorts, default_cohorts, stratified_sample

    studies = db.studies_frame(conn)
    existing = studies[studies["name"] == DEMO_READER_STUDY]
    if len(existing):
        study_id = int(existing.iloc[0]["study_id"])
    else:
        cases = db.cases_frame(conn)
        if cases.empty:
            raise ValueError("the database has no cases: ingest the demo cohort first")
        cohorts = default_cohorts(conn, model_run_id)
        cases = cases_in_cohorts(cases, cohorts)
        n = min(DEMO_READER_CASES, len(cases))
        study_id = db.create_study(
            conn,
            name=DEMO_READER_STUDY,
            cohorts=cohorts,
            case_ids=stratified_sample(cases, n, seed=seed),
            arms=("unaided", "aided") if model_run_id else ("unaided",),
            order_seed=seed,
            model_run_id=model_run_id,
            washout_days=0,
        )
    readers = db.readers_frame(conn, study_id)
    mine = readers[readers["display_name"] == DEMO_READER_NAME]
    if mine.empty:
        return db.add_reader(conn, study_id, DEMO_READER_NAME)[1]
    return db.reissue_reader_code(conn, int(mine.iloc[0]["reader_id"]))
