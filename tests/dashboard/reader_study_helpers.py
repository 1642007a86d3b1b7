"""Shared set-up for the reader-study AppTests: a real database with the small cohort ingested,
and helpers that drive the app the way a person does (sign-in page first)."""

from __future__ import annotations

import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
ADMIN_SECRET = "reader-study-test-secret-7c1f"
POSITION = re.compile(r"\((\d+) of (\d+)\)")


def session() -> AppTest:
    """A fresh browser session (nobody signed in) on the sign-in page."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    return at


def by_label(widgets, label: str):
    matches = [w for w in widgets if w.label == label]
    assert matches, f"no widget labelled {label!r}; have {[w.label for w in widgets]}"
    return matches[0]


def sign_in_admin(at: AppTest) -> AppTest:
    by_label(at.text_input, "Admin secret").input(ADMIN_SECRET)
    by_label(at.button, "Sign in").click()
    return at.run()


def sign_in_reader(at: AppTest, code: str) -> AppTest:
    by_label(at.text_input, "Access code").input(code)
    by_label(at.button, "Start reading").click()
    return at.run()


def current_position(at: AppTest) -> int:
    """The worklist position the reading page shows, from its 'Case ... (k of n)' heading."""
    for header in at.subheader:
        match = POSITION.search(header.value)
        if match:
            return int(match.group(1))
    raise AssertionError(f"no case heading; subheaders: {[h.value for h in at.subheader]}")


def answer(at: AppTest, label: str, certainty: str | None = None, *, arm: str = "unaided"):
    """Answer the case on screen as the keys do: its type button, optionally a certainty button
    (else the default the type sets), then the submit button ("Submit and next" or "Update")."""
    position = current_position(at)
    at.button(key=f"type:{arm}:{position}:{label}").click()
    at.run()
    if certainty is not None:
        at.button(key=f"cert:{arm}:{position}:{certainty}").click()
        at.run()
    at.button(key=f"submit:{arm}:{position}").click()
    return at.run()


def rendered_text(at: AppTest) -> list[str]:
    """Every piece of text the page rendered outside input widgets: markdown, text, captions,
    headings, alerts, metrics, code, progress texts and the cells, headers and index of tables."""
    texts: list[str] = []
    for kind in ("markdown", "text", "caption", "title", "header", "subheader", "code", "latex",
                 "info", "success", "warning", "error", "exception", "json"):  # fmt: skip
        texts.extend(str(e.value) for e in getattr(at, kind, []))
    for metric in at.metric:
        texts.extend([str(metric.label), str(metric.value)])
    for frame in [*at.dataframe, *at.table]:
        value = frame.value
        texts.append(value.to_csv())
    for el in at.get("progress"):
        texts.append(str(getattr(el, "proto", el)))
    return texts
