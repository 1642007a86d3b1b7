"""Read cases: the reader's own randomised worklist, one case at a time, blinded, from the keyboard.

Only the reading service (``core.reader_study``) is called: it returns what a reader may see and
nothing else. The study's instructions come first; the desk (``dashboard.reading_desk``) resumes
at the first unread case.
"""

import streamlit as st

from core.reader_study import reading
from core.reader_study.arms import reader_arms
from dashboard import auth, safe_text, store
from dashboard.reading_desk import compact_page, reading_desk

me = auth.require_role("reader")
compact_page()
st.title("Read cases")

with store.errors_shown():  # e.g. the study or this reader was deleted meanwhile
    study = reading.study_overview(me.study_id)
    arms = reader_arms(me.study_id, me.reader_id)
if not study["open"]:
    st.info(
        f"The study {safe_text.plain(study['name'])} is closed. Your answers are kept; ask "
        "the study admin."
    )
    if arms:  # answers still waiting in this browser are refused and kept for the admin
        reading_desk(me.study_id, me.reader_id, arms[0].arm)
    st.stop()
if study["instructions"]:
    with st.sidebar.expander("Reader instructions"):
        st.markdown(safe_text.instructions(study["instructions"]))  # no images, links, HTML
    if not st.session_state.get("instructions_seen") and not any(a.n_read for a in arms):
        st.markdown(safe_text.instructions(study["instructions"]))
        if st.button("Start reading", type="primary", shortcut="enter"):
            st.session_state["instructions_seen"] = True
            st.rerun()
        st.stop()

open_arms = [s.arm for s in arms if s.open]
where = st.sidebar if open_arms else st  # beside the desk, so the case fits the window
for status in arms:
    if status.open:
        continue
    if status.arm == "unaided":  # locked after the aided arm opened: the reason says so
        where.info(status.reason)
    else:
        where.info(f"The {status.arm} reading is not open yet. {status.reason}")
if not open_arms:
    st.stop()
arm = open_arms[0] if len(open_arms) == 1 else st.radio("Reading", open_arms, horizontal=True)
reading_desk(me.study_id, me.reader_id, arm)
