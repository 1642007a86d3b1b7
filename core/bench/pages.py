"""`cervixscope bench` part (p): what a researcher waits for on the dashboard.

- Every page's first render (AppTest, an admin signed in, each page in a fresh interpreter so it
  pays its own imports) on a database such as the demo's (target < 1.5 s each).
- The reader analysis with 20 readers x every case of the demo study: its first render and a
  rerun with no read changed (target < 0.5 s), on a copy of the database with simulated readers
  added (the database itself is not touched).

The renders run ``dashboard.bench_pages`` in child processes; core never imports Streamlit.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import numpy as np

from core.bench.children import run_child

PAGES = (
    "sign_in", "overview", "cv_results", "case_browser", "run_cv", "report", "study_admin",
    "study_analysis",
)  # fmt: skip


def _env(db_path: Path, secret: str) -> dict:
    return {"CERVIXSCOPE_DB": str(db_path), "CERVIXSCOPE_ADMIN_SECRET": secret}


def page_renders(db_path: str | Path) -> list[dict]:
    """Seconds, peak resident MB, whether torch was loaded, and errors, of each page's first
    render on ``db_path``."""
    env = _env(Path(db_path), secrets.token_hex(8))
    return [run_child(["dashboard.bench_pages", "page", page], env) for page in PAGES]


def add_simulated_readers(conn, study_id: int, n_readers: int, *, seed: int = 0) -> int:
    """Add simulated readers (the paper experts' tables, new seeds) to ``study_id`` until it has
    ``n_readers``, each reading every case of its single arm; returns the number of readers."""
    import db
    from core.data.labels import CLASSES
    from core.reader_study.simulate import PAPER_EXPERT_TABLES, simulate_reader

    study = db.get_study(conn, study_id)
    cases = db.cases_frame(conn).sort_values("case_id")
    cases = cases[cases["case_id"].isin(study["case_ids"])]
    y_true = np.array([CLASSES.index(label) for label in cases["label"]])
    counts = np.bincount(y_true, minlength=len(CLASSES))
    tables = [_scaled(t, counts) for t in PAPER_EXPERT_TABLES.values()]
    have = study["n_readers"]
    for i in range(have, n_readers):
        reads = simulate_reader(cases["case_id"], y_true, tables[i % 2], seed=seed + 1000 + i)
        reader_id, _ = db.add_reader(conn, study_id, f"Simulated reader {i + 1}", simulated=True)
        for read in reads.itertuples(index=False):
            db.submit_read(
                conn, study_id=study_id, reader_id=reader_id, case_id=read.case_id,
                arm=study["arms"][0], label=read.label,
                confidences={f"c_{c}": getattr(read, f"c_{c}") for c in CLASSES},
                shown_at=read.shown_at, submitted_at=read.submitted_at,
            )  # fmt: skip
    return max(have, n_readers)


def _scaled(table: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """A paper expert's confusion table with each row rescaled to this study's class counts
    (rounded down; the remainder goes to the diagonal)."""
    rows = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    scaled = np.floor(rows * counts[:, None]).astype(np.int64)
    scaled[np.diag_indices_from(scaled)] += counts - scaled.sum(axis=1)
    return scaled


def reader_analysis(db_path: str | Path, *, n_readers: int = 20) -> dict:
    """The reader analysis of the demo study (or the first study) with ``n_readers`` readers."""
    import db

    with tempfile.TemporaryDirectory(prefix="cervixscope-bench-") as tmp:
        copy = Path(tmp) / "bench.db"
        shutil.copy(db_path, copy)
        conn = db.connect(copy)
        try:
            studies = db.studies_frame(conn)
            if studies.empty:
                raise ValueError(f"{db_path} has no reader study: run `cervixscope demo` first")
            study_id = int(studies["study_id"].iloc[0])
            readers = add_simulated_readers(conn, study_id, n_readers)
            n_reads = len(db.reads_frame(conn, study_id))
        finally:
            conn.close()
        result = run_child(
            ["dashboard.bench_pages", "analysis", str(study_id)], _env(copy, "b" * 16)
        )
    return {"readers": readers, "reads": n_reads, **result}
