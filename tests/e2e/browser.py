"""Debian's Chromium driven by Playwright (a browser download is impossible here)."""

from __future__ import annotations

import re

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
    """Wait until the reader analysis computes nothing in the background: its "Updating"
    notice gone (the page refreshes by itself until then) and its last run finished."""
    wait_idle(page, timeout)
    page.get_by_text(re.compile(r"^Updating \d+ tables? ")).wait_for(
        state="detached", timeout=timeout
    )
    wait_idle(page, timeout)
