"""Page render times for ``cervixscope bench --part pages``, run in a fresh interpreter per
measurement (so each page pays its own imports, as on a fresh server), through AppTest.

Usage: python -m dashboard.bench_pages page NAME | analysis STUDY_ID
(env: CERVIXSCOPE_DB, CERVIXSCOPE_ADMIN_SECRET). Prints one line: ``BENCH {json}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.bench.children import peak_mb

APP = str(Path(__file__).resolve().parent / "app.py")


def _signed_in() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=600)
    at.run()
    next(t for t in at.text_input if t.label == "Admin secret").input(
        os.environ["CERVIXSCOPE_ADMIN_SECRET"]
    )
    next(b for b in at.button if b.label == "Sign in").click()
    at.run()
    return at


def _timed(at: AppTest, page: str | None) -> float:
    t0 = time.perf_counter()
    (at.switch_page(f"../pages/{page}.py") if page else at).run()
    return time.perf_counter() - t0


def page_first_render(page: str) -> dict:
    """Seconds of a page's first render after an admin signed in ("sign_in": the app's own),
    and of a rerun of it with nothing changed (what every widget change costs); then, unmeasured,
    until the tables it computes in the background are saved (so that a restarted server finds
    them all, as after a page left open a moment)."""
    if page == "sign_in":
        at = AppTest.from_file(APP, default_timeout=600)
        seconds = _timed(at, None)
    else:
        at = _signed_in()
        seconds = _timed(at, page)
    rerun = _timed(at, None)
    from dashboard import saved

    saved.wait_until_updated(600)  # tables computed in the background: saved for the next server
    return {"page": page, "seconds": seconds, "rerun_seconds": rerun, **_process(at)}


def analysis_rerun(study_id: int) -> dict:
    """The reader analysis of ``study_id``: first render (and, when tables had to be computed,
    the seconds until all are shown in place of their placeholders), a rerun with no read changed, a rerun
    after one reader changed one answer (what a researcher watching live waits for), and the
    seconds until every table shown is that of the new reads; then the same for the next
    changed read (the reads are loaded once, in the background while the page is open, then
    only those written since)."""
    from dashboard import saved

    at = _signed_in()
    at.session_state["admin_study"] = study_id
    first = _timed(at, "study_analysis")
    first_updated = first + _until_updated(at, study_id)  # from nothing: tables filled in
    rerun = _timed(at, None)
    saved.wait_until_updated(600)  # the page open a moment: the reads loaded ahead
    _change_one_read(study_id)
    new_read = _timed(at, None)  # older tables shown where newer ones are being computed
    updated = new_read + _until_updated(at, study_id)
    _change_one_read(study_id)  # a live study's next read: only the reads since are read
    next_read = _timed(at, None)
    next_updated = next_read + _until_updated(at, study_id)
    return {"first_seconds": first, "first_updated_seconds": first_updated,
            "rerun_seconds": rerun, "new_read_seconds": new_read,
            "updated_seconds": updated, "next_read_seconds": next_read,
            "next_updated_seconds": next_updated, **_process(at)}  # fmt: skip


def _until_updated(at: AppTest, study_id: int) -> float:
    """Seconds until the page shows no table of older reads: the background updates finish,
    then a rerun shows their tables (as the page's own one-second refresh does)."""
    from dashboard import saved
    from dashboard.study_analysis import updating

    t0 = time.perf_counter()
    while updating(study_id):
        saved.wait_until_updated(600)
        at.run()
    return time.perf_counter() - t0


def _change_one_read(study_id: int) -> None:
    import db

    with db.connect(os.environ["CERVIXSCOPE_DB"]) as conn:
        answer_again(conn, study_id)


def answer_again(conn, study_id: int) -> str:
    """The study's first read, answered again with the next type (its confidences moved along);
    returns its reader's name."""
    import db
    from core.data.labels import CLASSES

    read = db.reads_frame(conn, study_id).iloc[0]
    db.submit_read(
        conn, study_id=study_id, reader_id=int(read["reader_id"]), case_id=read["case_id"],
        arm=read["arm"], label=CLASSES[(CLASSES.index(read["label"]) + 1) % len(CLASSES)],
        confidences=[read[f"c_{c}"] for c in CLASSES[-1:] + CLASSES[:-1]],
        shown_at=read["shown_at"],
    )  # fmt: skip
    return str(read["display_name"])


def _process(at: AppTest) -> dict:
    return {
        "peak_mb": peak_mb(),
        "torch": "torch" in sys.modules,
        "errors": [str(e.value) for e in at.exception] + [str(e.value) for e in at.error],
    }


if __name__ == "__main__":
    what, arg = sys.argv[1:3]
    result = page_first_render(arg) if what == "page" else analysis_rerun(int(arg))
    print("BENCH " + json.dumps(result))
