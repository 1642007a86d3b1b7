"""Debian's Chromium driven by Playwright (a browser download is impossible here)."""

from __future__ import annotations

from playwright.sync_api import Page

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def wait_idle(page: Page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished the current script run."""
    page.wait_for_selector(
        "[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout
    )


def wait_settled(page: Page, timeout: float = 120_000) -> None:
    """Wait until the reader analysis computes nothing in the background: no script run in
    progress and no "Updating" notice (the page refreshes by itself until then), seen in one
    look. Two looks could pass mid-run: each run clears the notice first and draws it last."""
    page.wait_for_function(
        """() => {
          const app = document.querySelector("[data-testid='stApp']");
          return app !== null && app.dataset.testScriptState === "notRunning"
            && !/(^|\\n)Updating \\d+ tables? /.test(document.body.innerText);
        }""",
        timeout=timeout,
        polling=100,
    )
