"""50 keyboard reads in the real browser: keystrokes per read, and the time from Enter to the next
case fully drawn (its heading shown and its slice painted on the viewer's canvas), p50 and p95.

A real `streamlit run` on a database with the small demo cohort; Debian's Chromium at 1440x900.
Each read is two key presses (a type key, then Enter). The time is taken in the page's own clock:
``performance.now()`` just before Enter, and the viewer's ``data-drawn-at`` stamp when it has
painted the next case. Figures are printed and written to ``test-artifacts/bench_reading.json``;
nothing is asserted (timings vary by machine).

    .venv/bin/python -m tests.load.bench_reading [--reads 50]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import db
from core.data.labels import CLASSES
from core.reader_study.answers import TYPE_KEYS
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, wait_idle
from tests.e2e.server import ROOT, StreamlitServer

ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1440, "height": 900}


def build(workdir: Path, n_cases: int) -> tuple[Path, str]:
    from core.data.demo_data import generate_demo_cohort
    from core.data.ingest import ingest_folder

    generate_demo_cohort(workdir / "cohort", seed=0, counts=(30, 14, 8))
    path = workdir / "bench.db"
    conn = db.connect(path)
    try:
        ingest_folder(workdir / "cohort", conn=conn, progress=False)
        cases = db.cases_frame(conn)["case_id"].tolist()[:n_cases]
        study_id = db.create_study(conn, name="Keyboard bench", case_ids=cases)
        _, code = db.add_reader(conn, study_id, "Dr Bench")
    finally:
        conn.close()
    return path, code


def drawn(page, view_id: str, timeout_s: float = 30) -> float:
    """Wait until the viewer has painted ``view_id``; return its ``performance.now()`` stamp."""
    root = page.locator(".csv-root")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if root.get_attribute("data-view-id") == view_id:
            return float(root.get_attribute("data-drawn-at"))
        time.sleep(0.005)
    raise TimeoutError(f"the viewer never drew {view_id}")


def run(n_reads: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["CERVIXSCOPE_HOME"] = str(workdir)  # runs/ and caches under it
        path, code = build(workdir, n_reads + 1)
        server = StreamlitServer(path, "bench-secret", workdir / "server.log", cwd=workdir)
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(server.url)
                wait_idle(page)
                page.get_by_role("textbox", name="Access code").fill(code)
                page.get_by_role("button", name="Start reading").click()
                drawn(page, "unaided:1", timeout_s=90)
                wait_idle(page)
                keys, latencies = 0, []
                for i in range(1, n_reads + 1):
                    page.keyboard.press(TYPE_KEYS[CLASSES[i % 3]])
                    wait_idle(page)
                    start = page.evaluate("performance.now()")
                    page.keyboard.press("Enter")
                    keys += 2
                    latencies.append(drawn(page, f"unaided:{i + 1}") - start)
                    wait_idle(page)
                browser.close()
        finally:
            server.stop()
        conn = db.connect(path)
        try:
            n_stored = len(db.reads_frame(conn, 1))
        finally:
            conn.close()
    lat = np.array(latencies)
    return {
        "reads": n_reads,
        "stored": n_stored,
        "keystrokes_per_read": keys / n_reads,
        "enter_to_next_case_drawn_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "enter_to_next_case_drawn_ms_p95": round(float(np.percentile(lat, 95)), 1),
        "enter_to_next_case_drawn_ms_max": round(float(lat.max()), 1),
        "machine": f"{os.cpu_count()} CPUs",
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=50)
    result = run(parser.parse_args(argv).reads)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_reading.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
