"""Read cases: the reader's own randomised worklist, one case at a time, blinded.

Only the reading service (``core.reader_study``) is called: it returns what a reader may see and
nothing else. The position survives reruns in session state; a new session resumes at the first
unread case (DB).
"""

import streamlit as st

from core.labels import CLASSES
from core.reader_study import reading, viewing
from core.reader_study.arms import reader_arms
from dashboard import auth, store

me = auth.require_role("reader")
st.title("Read cases")
st.caption(f"Signed in as {me.name}. Choose the type and how confident you are in each type.")

with store.errors_shown():  # e.g. the study or this reader was deleted meanwhile
    arms = reader_arms(me.study_id, me.reader_id)
for status in arms:
    if status.open:
        continue
    if status.arm == "unaided":  # locked after the aided arm opened: the reason says so
        st.info(status.reason)
    else:
        st.info(f"The {status.arm} reading is not open yet. {status.reason}")
open_arms = [s.arm for s in arms if s.open]
if not open_arms:
    st.stop()
arm = open_arms[0] if len(open_arms) == 1 else st.radio("Reading", open_arms, horizontal=True)

pos_key = f"position:{arm}"
with store.errors_shown():
    if pos_key not in st.session_state:  # a new session resumes where the database says
        first = reading.first_unread(me.study_id, me.reader_id, arm)
        st.session_state[pos_key] = first if first is not None else 1
    position = st.session_state[pos_key]
    case = reading.case_for_reader(me.study_id, me.reader_id, arm, position)
    work = reading.worklist_status(me.study_id, me.reader_id, arm)
shown_at = reading.shown_at(st.session_state, arm, position)  # this display, not the first

st.progress(case.n_read / max(case.n_cases, 1), text=f"{case.n_read} of {case.n_cases} read")
if case.n_read == case.n_cases:
    st.success("All cases are read. You can still go back and change an answer.")

back, jump, forward = st.columns([1, 3, 1])
if back.button("Previous", disabled=position <= 1, width="stretch"):
    st.session_state[pos_key] = position - 1
    reading.forget_shown_at(st.session_state)
    st.rerun()
if forward.button("Next", disabled=position >= case.n_cases, width="stretch"):
    st.session_state[pos_key] = position + 1
    reading.forget_shown_at(st.session_state)
    st.rerun()
choices = work["position"].tolist()
labels = work["display_id"] + work["read"].map({True: " ✓", False: ""})
marks = dict(zip(work["position"], labels, strict=True))
picked = jump.selectbox(
    "Go to case",
    choices,
    index=choices.index(position),
    format_func=marks.get,
    key=f"jump:{arm}:{position}",  # a fresh widget per case, so it never drags the reader back
)
if picked != position:
    st.session_state[pos_key] = picked
    reading.forget_shown_at(st.session_state)
    st.rerun()

st.subheader(f"Case {case.display_id} ({position} of {case.n_cases})")
image_col, crop_col = st.columns([3, 2])
with image_col:
    if case.image is None:
        st.warning(case.image_problem or "No image for this case.")
    else:
        bounds = viewing.window_controls(case.image, case.window_center, case.window_width)
        level = st.slider("Level", bounds.level_min, bounds.level_max, bounds.level)
        width = st.slider("Window", bounds.width_min, bounds.width_max, bounds.width)
        slice_rgb = viewing.render_slice(case.image, level, width, case.roi)
        st.image(slice_rgb, caption="Slice, ROI in yellow", width=480)  # small DICOMs: scale up
with crop_col:
    if case.crop is not None:
        st.image(case.crop, caption="Lesion crop", clamp=True, width=260)
    if arm == "aided" and case.model_probabilities:
        st.markdown("**AI model**")
        for name in CLASSES:
            st.progress(
                case.model_probabilities[name], text=f"{name} {case.model_probabilities[name]:.0%}"
            )
        if case.gradcam is not None:
            st.image(case.gradcam, caption="Grad-CAM of the model's top class", width=260)
        elif case.gradcam_problem:
            st.caption(case.gradcam_problem)

with crop_col, st.form(f"answer:{arm}:{position}"):
    previous = case.answer_confidences or {}
    label = st.radio(
        "Type",
        CLASSES,
        index=CLASSES.index(case.answer_label) if case.answer_label else None,
        horizontal=True,
        key=f"type:{arm}:{position}",
    )
    sliders = {
        name: st.slider(
            f"Confidence {name}",
            0,
            100,
            int(round(100 * previous.get(name, 0.0))),
            key=f"conf:{arm}:{position}:{name}",
        )
        for name in CLASSES
    }
    if st.form_submit_button("Submit and next", type="primary"):
        if label is None:
            st.error("Choose a type (SCC, AC or ASC) before submitting.")
        else:
            try:
                reading.submit_answer(
                    me.study_id,
                    me.reader_id,
                    arm,
                    position,
                    label,
                    sliders,
                    shown_at,
                )
                nxt = reading.first_unread(me.study_id, me.reader_id, arm)
            except store.LIBRARY_ERRORS as exc:  # e.g. the study was closed
                st.error(str(exc))
            else:
                st.session_state[pos_key] = nxt if nxt is not None else position
                reading.forget_shown_at(st.session_state)  # a next answer here is a new read
                st.rerun()
