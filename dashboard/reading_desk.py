"""The reading desk: the browser holds the case on screen and the next unread ones, answers there,
and saves in the background; the server's part is one fragment run per sync.

Keys (all handled in the browser, no rerun): 1/2/3 pick the type (and the default certainty),
4/5/6 change the certainty, Enter shows the next unread case at once and queues the answer,
left/right move between cases. Each sync from the browser (:mod:`dashboard.reader_component`)
reruns this fragment alone: :func:`core.reader_study.desk.sync` stores the queued answers once each
and replies with the cases the browser lacks.
"""

from __future__ import annotations

import contextlib
import functools

import streamlit as st

from core.reader_study import desk, reading
from dashboard import auth, store
from dashboard.reader_component import reading_workstation
from dashboard.viewer import KEY_LEGEND

ANSWER_LEGEND = "1/2/3 type · 4/5/6 certainty · Enter store and next · ←/→ case"
AT_PARAM = "at"  # the case on screen, in the URL: a worklist position, never a case id
MARK_LEGEND = "Backspace remove last mark"
MARK_VIEWER_LEGEND = (
    "click mark the lesion · drag box · right-drag window/level · wheel or ↑/↓ slice · "
    "7/8/9 presets · 0 reset · +/− zoom · shift+drag pan"
)
UI = {"legend": ANSWER_LEGEND, "viewer_legend": KEY_LEGEND, "mark_legend": MARK_LEGEND,
      "mark_viewer_legend": MARK_VIEWER_LEGEND, "size": 470}  # fmt: skip


def component_key(arm: str) -> str:
    return f"desk:{arm}"


def request_key(arm: str) -> str:
    """Session key of the browser's latest sync, until the fragment has handled it (tests set it
    the way the component's callback does)."""
    return f"desk_request:{arm}"


def _held_key(arm: str) -> str:
    return f"desk_held:{arm}"


def _on_sync(arm: str) -> None:
    value = st.session_state.get(component_key(arm)) or {}
    st.session_state[request_key(arm)] = value.get("sync")


def _position_in_url(arm: str) -> int | None:
    """The worklist position the URL names for ``arm`` (``?at=unaided:7``), if any."""
    text = str(st.query_params.get(AT_PARAM) or "")
    named_arm, _, number = text.partition(":")
    return int(number) if named_arm == arm and number.isdigit() and int(number) >= 1 else None


_COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; padding-bottom: 1rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0; padding-bottom: 0.25rem; }
[data-stale] { opacity: 1 !important; transition: none !important; }
</style>"""


def compact_page() -> None:
    """Less empty space above the reading page, so a case and its answer fit 1440x900; and no
    fading while a background save runs (the reader keeps reading)."""
    st.markdown(_COMPACT_CSS, unsafe_allow_html=True)  # constant CSS, no user text in it


@st.fragment
def reading_desk(study_id: int, reader_id: int, arm: str) -> None:
    """One sync of the reader's desk in ``arm``: store what the browser sent, send what it lacks."""
    raw = st.session_state.pop(request_key(arm), None)
    request = desk.parse_request(raw)
    if raw is None:  # a rerun of the page, not a sync: the browser still holds what it was sent
        request = desk.SyncRequest(have=st.session_state.get(_held_key(arm), frozenset()))
    refuse = auth.session_refusal()
    with store.errors_shown():
        if arm == "aided" and not st.session_state.get("desk_gradcam_started"):
            st.session_state["desk_gradcam_started"] = True
            with contextlib.suppress(*store.LIBRARY_ERRORS):  # only a head start: optional
                reading.prefetch_gradcam(study_id, reader_id, request.at or 1)  # a worker
        reply = desk.sync(
            study_id, reader_id, arm, request, start=_position_in_url(arm), refuse=refuse, ui=UI
        )
        if isinstance(raw, dict) and raw.get("done") and refuse is None:
            if reading.first_unread(study_id, reader_id, arm) is None:
                st.rerun(scope="app")  # the arm is read: the page decides which arm opens next
    st.session_state[_held_key(arm)] = request.have | reply.sent
    if request.at is not None and st.query_params.get(AT_PARAM) != f"{arm}:{request.at}":
        st.query_params[AT_PARAM] = f"{arm}:{request.at}"  # a reload comes back to this case
    reading_workstation(
        reply.message, key=component_key(arm), on_sync=functools.partial(_on_sync, arm)
    )
    if reply.acks:
        with contextlib.suppress(*store.LIBRARY_ERRORS):  # the reads are stored; this is extra
            auth.note_submit(f"{len(reply.acks)} answer(s) in the {arm} arm")
