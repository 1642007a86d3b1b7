"""Shared set-up for the reader-study AppTests: a real database with the small cohort ingested,
and helpers that drive the app the way a person does (sign-in page first)."""

from __future__ import annotations

import re
import uuid
import weakref
from pathlib import Path

from streamlit.testing.v1 import AppTest

from core.reader_study import desk
from core.reader_study.pixel_transport import unpack
from dashboard.reading_desk import UI, request_key

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
ADMIN_SECRET = "reader-study-test-secret-7c1f"
POSITION = re.compile(r"\((\d+) of (\d+)\)")
_BROWSERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


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


def settled(at: AppTest) -> AppTest:
    """The analysis page once it computes nothing in the background: rerun, as its own
    one-second refresh does, until no "Updating" notice is left (placeholders filled in)."""
    from dashboard import saved

    for _ in range(10):
        if not any(i.value.startswith("Updating ") for i in at.info):
            return at
        assert saved.wait_until_updated(300), "background updates did not finish"
        at.run()
        assert not at.exception, at.exception
    raise AssertionError("the page kept computing tables in the background")


def sign_in_reader(at: AppTest, code: str) -> AppTest:
    by_label(at.text_input, "Access code").input(code)
    by_label(at.button, "Continue").click()
    return at.run()


def desk_message(at: AppTest) -> bytes | None:
    """The reading component's latest message (what the browser was sent), or None when the page
    shows no reading desk."""
    elements = [e for e in at.get("bidi_component") if e.proto.component_name.endswith("reader")]
    return elements[-1].proto.bytes if elements else None


def desk_header(at: AppTest) -> dict | None:
    """The header of :func:`desk_message` (everything but the pixels)."""
    message = desk_message(at)
    return None if message is None else unpack(message)[0]


def _browser(at: AppTest) -> dict:
    """The emulated browser side of the desk (what ``dashboard.reader_component`` keeps in JS),
    brought up to date with the latest message."""
    state = _BROWSERS.setdefault(
        at, {"pos": None, "cases": {}, "work": [], "queue": [], "seen": None}
    )
    message = desk_message(at)
    if message is None or message == state["seen"]:
        return state
    state["seen"] = message
    header = unpack(message)[0]
    settled = set(header["acks"]) | {r[0] for r in header["refused"]}
    state["queue"] = [a for a in state["queue"] if a["attempt"] not in settled]
    state["refused"] = header["refused"]
    state["status"], state["arm"] = header["status"], header["arm"]
    if header.get("work"):
        state["work"] = header["work"]
    for entry in header.get("cases", []):
        state["cases"][entry["position"]] = entry
    if state["pos"] is None or state.get("arm_seen") != header["arm"]:
        state["pos"], state["arm_seen"] = header.get("start"), header["arm"]
    return state


def current_position(at: AppTest) -> int:
    """The worklist position the reading desk shows."""
    state = _browser(at)
    assert state["pos"] is not None, f"no reading desk on the page: {[e.value for e in at.error]}"
    return int(state["pos"])


def current_case(at: AppTest) -> dict:
    """The entry of the case on screen, as the browser holds it."""
    state = _browser(at)
    return state["cases"][current_position(at)]


def progress(at: AppTest) -> tuple[int, int]:
    """``(n_read, n_cases)`` from the worklist the desk was last sent."""
    work = _browser(at)["work"]
    return sum(1 for w in work if w[2]), len(work)


def sync(at: AppTest, **extra) -> AppTest:
    """One sync from the browser, as the component sends it (answers waiting, position, held)."""
    state = _browser(at)
    at.session_state[request_key(state["arm"])] = {
        "at": state["pos"],
        "have": sorted(state["cases"]),
        "pending": [{**a, "age_ms": 10} for a in state["queue"]],
        **extra,
    }
    at.run()
    _browser(at)
    return at


def go(at: AppTest, position: int) -> AppTest:
    """Move to ``position`` (the arrows, Previous/Next or the case list)."""
    _browser(at)["pos"] = int(position)
    return sync(at)


def queue_answer(at: AppTest, label: str, certainty: str | None = None) -> dict:
    """Enter in the browser: queue the answer, move on (or stay, on a case already read)."""
    state = _browser(at)
    position = current_position(at)
    row = next(w for w in state["work"] if w[0] == position)
    stored = current_case(at).get("answer") or {}
    attempt = {"attempt": str(uuid.uuid4()), "arm": state["arm"], "position": position,
               "display_id": row[1], "label": label, "duration_ms": 1500,
               "certainty": certainty or (stored.get("certainty") if stored.get("label") == label
                                          else None) or "probable"}  # fmt: skip
    state["queue"].append(attempt)
    if not row[2]:
        row[2] = True
        unread = [w[0] for w in state["work"] if not w[2]]
        after = [p for p in unread if p > position] + [p for p in unread if p < position]
        state["pos"] = after[0] if after else position
    return attempt


def answer(at: AppTest, label: str, certainty: str | None = None, **_) -> AppTest:
    """Answer the case on screen as the keys do (a type, optionally a certainty, Enter) and let
    the background sync run."""
    queue_answer(at, label, certainty)
    return sync(at)


def desk_texts(at: AppTest) -> list[str]:
    """Every key and value in every message the reading component was sent, as text, except the
    constants that are the same for every reader (class names, key maps) and the reader's own
    answer echoed back to them."""
    texts: list[str] = []

    def walk(value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                texts.append(str(key))
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif value is not None and not isinstance(value, bool):  # a read flag is not a word
            texts.append(str(value))

    for element in at.get("bidi_component"):
        if element.proto.component_name.endswith("reader"):
            header = unpack(element.proto.bytes)[0]
            for key in desk.constants(UI):
                header.pop(key, None)
            for entry in header.get("cases", []):
                entry.pop("answer", None)
            walk(header)
    return texts


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
    return texts + desk_texts(at)
