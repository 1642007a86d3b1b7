"""The reading desk: one case, the viewer, and an answer in two keystrokes, as a fragment.

Keys (Streamlit's own ``shortcut=`` on the buttons, and the viewer's keys): 1/2/3 pick the type
(and the default certainty), 4/5/6 change the certainty, Enter stores the answer and shows the
next unread case, left/right move between cases. Every button acts in a callback, so one script
run both stores an answer and draws the next case; and the desk is a fragment, so a keystroke
reruns the desk alone, not the page around it.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from core.data.labels import CLASSES
from core.reader_study import answers, reading, viewer_data
from dashboard import auth, safe_text, store
from dashboard.viewer import KEY_LEGEND, image_viewer

ANSWER_LEGEND = "1/2/3 type · 4/5/6 certainty · Enter store and next · ←/→ case"
_ERROR_KEY = "desk_error"
_NOTE_KEY = "desk_note"
_ARM_DONE_KEY = "desk_arm_done"
_PREFETCH_KEY = "desk_gradcam_started"
AT_PARAM = "at"  # the case on screen, in the URL: a worklist position, never a case id


def _pos_key(arm: str) -> str:
    return f"position:{arm}"


def _answer_key(arm: str, position: int) -> str:
    return f"answer:{arm}:{position}"


def _go(arm: str, position: int) -> None:
    st.session_state[_pos_key(arm)] = int(position)
    reading.forget_shown_at(st.session_state)


def _position_in_url(arm: str) -> int | None:
    """The worklist position the URL names for ``arm`` (``?at=unaided:7``), if any."""
    text = str(st.query_params.get(AT_PARAM) or "")
    named_arm, _, number = text.partition(":")
    return int(number) if named_arm == arm and number.isdigit() and int(number) >= 1 else None


def _resume_at(study_id: int, reader_id: int, arm: str) -> int:
    first = reading.first_unread(study_id, reader_id, arm)
    return first if first is not None else 1


def _pick_type(arm: str, position: int, label: str) -> None:
    st.session_state[_answer_key(arm, position)] = {
        "label": label,
        "percent": answers.confidences_for(label),
    }


def _pick_certainty(arm: str, position: int, certainty: str) -> None:
    key = _answer_key(arm, position)
    chosen = st.session_state.get(key)
    if not chosen:
        st.session_state[_ERROR_KEY] = "Choose a type first (keys 1, 2, 3)."
        return
    percent = answers.confidences_for(chosen["label"], certainty)
    st.session_state[key] = {"label": chosen["label"], "percent": percent}


def _submit(study_id: int, reader_id: int, arm: str, position: int, revisit: bool) -> None:
    chosen = st.session_state.get(_answer_key(arm, position))
    if not chosen:
        st.session_state[_ERROR_KEY] = "Choose a type first (keys 1, 2, 3), then press Enter."
        return
    shown = reading.shown_at(st.session_state, arm, position)
    try:
        read_id = reading.submit_answer(
            study_id, reader_id, arm, position, chosen["label"], chosen["percent"], shown
        )
        nxt = None if revisit else reading.first_unread(study_id, reader_id, arm)
    except store.LIBRARY_ERRORS as exc:  # e.g. the study was closed meanwhile
        st.session_state[_ERROR_KEY] = str(exc)
        return
    st.session_state.pop(_answer_key(arm, position), None)  # the database holds it now
    with contextlib.suppress(*store.LIBRARY_ERRORS):  # the read is stored; the trace is extra
        auth.note_submit(read_id, arm, position)  # audited when the code is open elsewhere too
    if revisit:
        st.session_state[_NOTE_KEY] = "Answer updated."
        reading.forget_shown_at(st.session_state)  # a next change here is a new read
    else:
        _go(arm, nxt if nxt is not None else position)
        if nxt is None:  # the arm is finished: the next arm may open, which the page decides
            st.session_state[_ARM_DONE_KEY] = True


_COMPACT_CSS = """<style>
[data-testid="stMainBlockContainer"] { padding-top: 1.5rem; padding-bottom: 1rem; }
[data-testid="stMainBlockContainer"] h1 { padding-top: 0; padding-bottom: 0.25rem; }
</style>"""


def compact_page() -> None:
    """Less empty space above the reading page, so a case and its answer fit 1440x900."""
    st.markdown(_COMPACT_CSS, unsafe_allow_html=True)  # constant CSS, no user text in it


@st.fragment
def reading_desk(study_id: int, reader_id: int, arm: str) -> None:
    """The case at the reader's position in ``arm``, its viewer and the answer controls."""
    if st.session_state.pop(_ARM_DONE_KEY, False):
        st.rerun(scope="app")  # the page around the desk re-reads which arms are open
    pos_key = _pos_key(arm)
    with store.errors_shown():
        work = reading.worklist_status(study_id, reader_id, arm)
        if pos_key not in st.session_state:  # a new session: the URL's case (F5), else resume
            at = _position_in_url(arm)
            valid = at is not None and at <= len(work)
            st.session_state[pos_key] = at if valid else _resume_at(study_id, reader_id, arm)
        position = st.session_state[pos_key]
        if arm == "aided" and not st.session_state.get(_PREFETCH_KEY):
            st.session_state[_PREFETCH_KEY] = True
            with contextlib.suppress(*store.LIBRARY_ERRORS):  # only a head start: optional
                reading.prefetch_gradcam(study_id, reader_id, position)  # in a worker process
        case = reading.case_for_reader(study_id, reader_id, arm, position)
    if st.query_params.get(AT_PARAM) != f"{arm}:{position}":
        st.query_params[AT_PARAM] = f"{arm}:{position}"  # a reload comes back to this case
    reading.shown_at(st.session_state, arm, position)  # this display's clock starts now
    _header(arm, case, work)
    image_col, answer_col = st.columns([7, 4], gap="medium")
    with image_col:
        payload = viewer_data.reader_view(case)
        if payload is None:
            st.warning(case.image_problem or "No image for this case.")
        else:
            image_viewer(payload, key=f"viewer:{arm}", size=470, side_size=140)
            st.caption(KEY_LEGEND)
    with answer_col:
        if arm == "aided":
            _model_panel(case)
        _answer_panel(study_id, reader_id, arm, case)


def _header(arm: str, case, work) -> None:
    title, back, jump, forward = st.columns([3.2, 1, 2.2, 1], vertical_alignment="bottom")
    title.subheader(f"Case {safe_text.plain(case.display_id)} ({case.position} of {case.n_cases})")
    title.caption(f"{case.n_read} of {case.n_cases} read")
    back.button(
        "Previous",
        disabled=case.position <= 1,
        width="stretch",
        shortcut="left",
        on_click=_go,
        args=(arm, case.position - 1),
    )
    forward.button(
        "Next",
        disabled=case.position >= case.n_cases,
        width="stretch",
        shortcut="right",
        on_click=_go,
        args=(arm, case.position + 1),
    )
    choices = work["position"].tolist()
    labels = work["display_id"] + work["read"].map({True: " ✓", False: ""})
    marks = dict(zip(work["position"], labels, strict=True))
    picked = jump.selectbox(
        "Go to case",
        choices,
        index=choices.index(case.position),
        format_func=marks.get,
        key=f"jump:{arm}:{case.position}",  # a fresh widget per case: it never drags one back
    )
    if picked != case.position:
        _go(arm, picked)
        st.rerun(scope="fragment")
    if case.n_read == case.n_cases:
        st.success("All cases are read. You can still go back and change an answer.")


def _model_panel(case) -> None:
    if case.model_probabilities:
        st.markdown("**AI model**")
        st.markdown(" · ".join(f"{name} {case.model_probabilities[name]:.0%}" for name in CLASSES))
    if case.gradcam_problem:
        st.caption(case.gradcam_problem)


def _answer_panel(study_id: int, reader_id: int, arm: str, case) -> None:
    """The answer keys (a nested fragment: a type or certainty key reruns only them, never the
    viewer), then Enter's button, which reruns the desk to store and show the next case."""
    revisit = case.answer_label is not None
    stored = answers.as_percent(case.answer_confidences or {}) if revisit else None
    _answer_keys(arm, case.position, case.answer_label, stored)
    st.button(
        "Update" if revisit else "Submit and next",
        key=f"submit:{arm}:{case.position}",
        type="primary",
        width="stretch",
        shortcut="enter",
        on_click=_submit,
        args=(study_id, reader_id, arm, case.position, revisit),
    )
    st.caption(f"Keys: {ANSWER_LEGEND}")


@st.fragment
def _answer_keys(arm: str, position: int, stored_label: str | None, stored: dict | None) -> None:
    key = _answer_key(arm, position)
    if key not in st.session_state and stored_label:  # the stored answer exactly as entered
        st.session_state[key] = {"label": stored_label, "percent": stored}
    chosen = st.session_state.get(key)
    st.markdown("**Type**")
    for col, name in zip(st.columns(len(CLASSES)), CLASSES, strict=True):
        col.button(
            name,
            key=f"type:{arm}:{position}:{name}",
            type="primary" if chosen and chosen["label"] == name else "secondary",
            width="stretch",
            shortcut=answers.TYPE_KEYS[name],
            on_click=_pick_type,
            args=(arm, position, name),
        )
    level = answers.certainty_of(chosen["label"], chosen["percent"]) if chosen else None
    st.markdown("**Certainty**")
    for col, name in zip(st.columns(3), answers.CERTAINTY_LEVELS, strict=True):
        col.button(
            name,
            key=f"cert:{arm}:{position}:{name}",
            type="primary" if level == name else "secondary",
            width="stretch",
            shortcut=answers.CERTAINTY_KEYS[name],
            on_click=_pick_certainty,
            args=(arm, position, name),
        )
    summary = answers.format_answer(chosen["label"], chosen["percent"]) if chosen else "none yet"
    same = stored_label is not None and chosen == {"label": stored_label, "percent": stored}
    st.markdown(f"{'Stored answer' if same else 'Answer'}: **{summary}**")
    if st.session_state.get(_ERROR_KEY):
        st.error(st.session_state.pop(_ERROR_KEY))
    if st.session_state.get(_NOTE_KEY):
        st.success(st.session_state.pop(_NOTE_KEY))
