"""Run as a script in a fresh interpreter: an aided reader's session and an admin visiting every
admin page, through the app's own scripts (AppTest runs them in this process, exactly as the
server's script threads do); then report which heavy modules this process loaded.

Usage: python -m tests.dashboard.server_session READER_CODE ADMIN_SECRET  (env: CERVIXSCOPE_DB)
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.dashboard.reader_study_helpers import answer, current_case, desk_header

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")
ADMIN_PAGES = (
    "overview.py", "cv_results.py", "case_browser.py", "run_cv.py", "report.py",
    "study_admin.py", "study_analysis.py",
)  # fmt: skip


def _button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def aided_read(code: str) -> dict:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    next(t for t in at.text_input if t.label == "Access code").input(code)
    _button(at, "Continue").click()
    at.run()
    header = desk_header(at)
    case = current_case(at)
    answer(at, "AC")  # queued in the browser, stored by the background sync
    return {
        "aided": header["arm"] == "aided" and case["model"] is not None,
        "gradcam_shown": any(p["title"].startswith("Grad-CAM") for p in case["side"]),
        "acknowledged": len(desk_header(at)["acks"]),
        "reader_errors": [str(e.value) for e in at.error] + [str(e) for e in at.exception],
    }


def admin_pages(secret: str) -> dict:
    at = AppTest.from_file(APP, default_timeout=300)
    at.run()
    next(t for t in at.text_input if t.label == "Admin secret").input(secret)
    _button(at, "Sign in").click()
    at.run()
    visited, problems = [], []
    for page in ADMIN_PAGES:
        at.switch_page(f"../pages/{page}").run()
        visited.append(page + (" (torch loaded)" if "torch" in sys.modules else ""))
        problems += [f"{page}: {e}" for e in at.exception]
    return {"visited": visited, "admin_exceptions": problems}


if __name__ == "__main__":
    code, secret = sys.argv[1:3]
    assert os.environ.get("CERVIXSCOPE_DB")
    report = aided_read(code)
    report["torch_after_aided_read"] = "torch" in sys.modules
    report.update(admin_pages(secret))
    report["torch"] = "torch" in sys.modules
    report["torchvision"] = "torchvision" in sys.modules
    print("REPORT " + json.dumps(report))
