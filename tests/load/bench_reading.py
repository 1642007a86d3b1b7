"""Keyboard reading in the real browser: Enter to the next case fully drawn, p50 and p95, on the
demo cohort (128x128 slices, 1-3 per case) and on the series cohort (whole series of 24 slices of
512x512, 16-bit); and, on the series cohort, a jump to a case the browser does not hold (cold on
the server too) to its first slice drawn.

A real `streamlit run` per cohort; Debian's Chromium at 1440x900. Each read is two key presses
(a type key, then Enter). Times are taken in the page's own clock: ``performance.now()`` just
before Enter (or the jump), and the viewer's ``data-drawn-at`` stamp when it has painted the case.
Bytes per case are the compressed slices the desk sent. Figures are printed and written to
``test-artifacts/bench_reading.json``; nothing is asserted (timings vary by machine).

    .venv/bin/python -m tests.load.bench_reading [--reads 50] [--jumps 10]
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
from core.bench.machine import machine_line
from core.data.labels import CLASSES
from core.reader_study.answers import TYPE_KEYS
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, wait_idle
from tests.e2e.server import ROOT, StreamlitServer

ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1440, "height": 900}


def build(workdir: Path, kind: str, n_cases: int) -> tuple[Path, str]:
    from core.data.demo_data import generate_demo_cohort, generate_series_cohort
    from core.data.ingest import ingest_folder

    counts = (n_cases // 2, n_cases // 3, n_cases - n_cases // 2 - n_cases // 3)
    if kind == "series":
        generate_series_cohort(workdir / "cohort", seed=0, counts=counts)
    else:
        generate_demo_cohort(workdir / "cohort", seed=0, counts=counts)
    path = workdir / "bench.db"
    conn = db.connect(path)
    try:
        ingest_folder(workdir / "cohort", conn=conn, progress=False)
        cases = db.cases_frame(conn)["case_id"].tolist()[:n_cases]
        slices = "series" if kind == "series" else "model"
        study_id = db.create_study(conn, name="Keyboard bench", case_ids=cases, slices=slices)
        _, code = db.add_reader(conn, study_id, "Dr Bench")
    finally:
        conn.close()
    return path, code


def drawn(page, view_id: str, timeout_s: float = 60) -> float:
    """Wait until the viewer has painted ``view_id``; return its ``performance.now()`` stamp."""
    root = page.locator(".csv-root")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if root.get_attribute("data-view-id") == view_id:
            return float(root.get_attribute("data-drawn-at"))
        time.sleep(0.002)
    raise TimeoutError(f"the viewer never drew {view_id}")


HELD = """(p) => { const d = [...(window.__cervixReader || new Map()).values()][0];
  const c = d && d.cases.get(p); return !!(c && c.slices.every((s) => s.raw)); }"""


def jump(page, position: int) -> float:
    """Choose ``position`` in the case list, as a reader does; return performance.now() before."""
    select = page.locator(".csr-jump")
    start = page.evaluate("performance.now()")
    select.select_option(str(position))
    return start


def read_cohort(kind: str, n_reads: int, n_jumps: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        os.environ["CERVIXSCOPE_HOME"] = str(workdir)
        n_cases = n_reads + n_jumps + 2
        path, code = build(workdir, kind, n_cases)
        server = StreamlitServer(path, "bench-secret", workdir / "server.log", cwd=workdir)
        server.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport=VIEWPORT)
                received: list[int] = []
                page.on("websocket", lambda ws: ws.on(
                    "framereceived", lambda f: received.append(len(f))))  # fmt: skip
                page.goto(server.url)
                wait_idle(page)
                page.get_by_role("textbox", name="Access code").fill(code)
                page.get_by_role("button", name="Continue").click()
                drawn(page, "unaided:1", timeout_s=120)
                wait_idle(page)
                cold = []
                # far apart (the desk prefetches two ahead of a jump), never sent, cold on the server
                for position in range(n_cases, n_cases - 3 * n_jumps, -3):
                    assert not page.evaluate(HELD, position), position
                    start = jump(page, position)
                    cold.append(drawn(page, f"unaided:{position}") - start)
                    page.wait_for_function(  # the whole case has arrived before the next jump
                        "() => { const r = document.querySelector('.csv-root') || [...document"
                        ".querySelectorAll('*')].map(e => e.shadowRoot).filter(Boolean)"
                        ".map(s => s.querySelector('.csv-root')).find(Boolean);"
                        " return r && r.dataset.decoded === r.dataset.slices; }",
                        timeout=120_000,
                    )
                    wait_idle(page)
                start = jump(page, 1)
                drawn(page, "unaided:1")
                wait_idle(page)
                page.wait_for_timeout(1500)  # the prefetch of the next cases has arrived
                keys, latencies, looks = 0, [], []
                for i in range(1, n_reads + 1):
                    looked = time.perf_counter()  # the reader looks until the next case is in
                    while not page.evaluate(HELD, i + 1) and time.perf_counter() - looked < 30:
                        time.sleep(0.01)
                    looks.append(time.perf_counter() - looked)
                    page.keyboard.press(TYPE_KEYS[CLASSES[i % 3]])
                    start = page.evaluate("performance.now()")
                    page.keyboard.press("Enter")
                    keys += 2
                    latencies.append(drawn(page, f"unaided:{i + 1}") - start)
                page.locator(".csr[data-pending='0']").wait_for(state="attached", timeout=60_000)
                per_case = page.evaluate(
                    "() => { const d = [...window.__cervixReader.values()][0];"
                    " return [...d.cases.values()].map(c => c.slices.length); }"
                )
                browser.close()
        finally:
            server.stop()
        conn = db.connect(path)
        try:
            n_stored = len(db.reads_frame(conn, 1))
        finally:
            conn.close()
    lat, cold = np.array(latencies), np.array(cold)
    return {
        "cohort": kind,
        "reads": n_reads,
        "stored": n_stored,
        "slices_per_case": sorted(set(per_case)),
        "keystrokes_per_read": keys / n_reads,
        "enter_to_next_case_drawn_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "enter_to_next_case_drawn_ms_p95": round(float(np.percentile(lat, 95)), 1),
        "enter_to_next_case_drawn_ms_max": round(float(lat.max()), 1),
        "look_until_next_case_held_s_p50": round(float(np.percentile(looks, 50)), 2),
        "look_until_next_case_held_s_p95": round(float(np.percentile(looks, 95)), 2),
        "not_held_jump_to_first_slice_ms_p50": round(float(np.percentile(cold, 50)), 1),
        "not_held_jump_to_first_slice_ms_p95": round(float(np.percentile(cold, 95)), 1),
        "received_mb_per_case": round(sum(received) / 2**20 / (n_reads + n_jumps + 1), 2),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=50)
    parser.add_argument("--jumps", type=int, default=10)
    args = parser.parse_args(argv)
    result = {kind: read_cohort(kind, args.reads, args.jumps) for kind in ("demo", "series")}
    result["machine"] = machine_line()
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "bench_reading.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
