"""`cervixscope bench` part (p): what a researcher waits for on the dashboard.

At each scale (1x and 10x the database's cohort: :func:`scaled_database`, a copy with the cases
replicated and a study of 20 simulated readers over every case; the database itself is not
touched):
- every page's first render and a rerun (AppTest, an admin signed in, each page in a fresh
  interpreter so it pays its own imports), computed from nothing and then on a restarted server
  that reads the saved tables back (:func:`page_runs`); aims: under 1 s first and 0.3 s rerun at 1x, no page
  over 1.5 s at 10x;
- the reader analysis of that study (:func:`analysis_runs`): computed from nothing, read back by
  a restarted server, a rerun with no read changed, a rerun after one changed read, and the time
  until every table of that read is shown.

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
        db.submit_reads(conn, study_id, reader_id, study["arms"][0], reads.to_dict("records"))
    return max(have, n_readers)


SCALE_STUDY = "Bench: {n} readers x every case"


def scaled_database(db_path, out: Path, factor: int, *, n_readers: int = 20) -> int:
    """Copy ``db_path`` to ``out`` with its cohort ``factor`` times as large (``db.replicate_cases``)
    and a study of ``n_readers`` simulated readers over every case (with the newest finished run
    as its model); return that study's id."""
    import db

    shutil.copy(db_path, out)
    conn = db.connect(out)
    try:
        db.replicate_cases(conn, factor)
        cases = db.cases_frame(conn)["case_id"].tolist()
        runs = db.runs_frame(conn)
        done = runs.loc[runs["status"] == "done", "run_id"].tolist() if len(runs) else []
        study_id = db.create_study(
            conn, name=SCALE_STUDY.format(n=n_readers), case_ids=cases, arms=("unaided",),
            model_run_id=done[-1] if done else None,
        )  # fmt: skip
        add_simulated_readers(conn, study_id, n_readers)
    finally:
        conn.close()
    return study_id


def at_scales(db_path, factors=(1, 10), *, n_readers: int = 20) -> dict:
    """Part (p) at each scale: ``{"<f>x": {"cases", "pages", "reader_analysis"}}``."""
    import db

    out = {}
    for factor in factors:
        with tempfile.TemporaryDirectory(prefix="cervixscope-bench-") as tmp:
            copy = Path(tmp) / "bench.db"
            study_id = scaled_database(db_path, copy, factor, n_readers=n_readers)
            with db.connect(copy) as conn:
                n_cases = len(db.cases_frame(conn))
                n_reads = len(db.reads_frame(conn, study_id))
            env = _env(copy, secrets.token_hex(8))
            renders = [page_runs(page, env) for page in PAGES]
            analysis = analysis_runs(study_id, env)
        out[f"{factor}x"] = {"cases": n_cases, "pages": renders,
                             "reader_analysis": {"readers": n_readers, "reads": n_reads,
                                                 **analysis}}  # fmt: skip
    return out


def _forget_saved(env: dict) -> None:
    """Nothing saved by an earlier step: each "from nothing" render computes its own tables."""
    import db

    with db.connect(env["CERVIXSCOPE_DB"]) as conn:
        db.forget_results(conn)


def page_runs(page: str, env: dict) -> dict:
    """A page rendered in two fresh interpreters, one after the other: ``cold_seconds`` with
    nothing saved yet, then ``seconds`` and ``rerun_seconds`` on a restarted server that reads
    the saved tables back (``dashboard.saved``)."""
    _forget_saved(env)
    cold = run_child(["dashboard.bench_pages", "page", page], env)
    warm = run_child(["dashboard.bench_pages", "page", page], env)
    return {**warm, "cold_seconds": cold["seconds"], "peak_mb": max(cold["peak_mb"], warm["peak_mb"]),
            "errors": cold["errors"] + warm["errors"]}  # fmt: skip


def analysis_runs(study_id: int, env: dict) -> dict:
    """The reader analysis in two fresh interpreters, one after the other: the first computes
    every table (nothing saved yet: ``cold_seconds`` until the page is drawn with placeholders,
    ``cold_updated_seconds`` until every table is in), the second is a restarted server that
    reads them back (``first_seconds``), then reruns with no new read (``rerun_seconds``) and
    after one changed read (``new_read_seconds``: the page with the older tables where that
    reader's and the cross-reader ones are being recomputed in the background), and
    ``updated_seconds``, from that read until the page shows every new table; ``next_*`` the
    same for a second changed read (both patched into the reads, which the restarted server
    loads in the background once the page is open)."""
    _forget_saved(env)
    cold = run_child(["dashboard.bench_pages", "analysis", str(study_id)], env)
    warm = run_child(["dashboard.bench_pages", "analysis", str(study_id)], env)
    return {
        **warm,
        "cold_seconds": cold["first_seconds"],
        "cold_updated_seconds": cold.get("first_updated_seconds"),
        "peak_mb": max(cold["peak_mb"], warm["peak_mb"]),
        "errors": cold["errors"] + warm["errors"],
    }


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
        result = analysis_runs(study_id, _env(copy, "b" * 16))
    return {"readers": readers, "reads": n_reads, **result}
