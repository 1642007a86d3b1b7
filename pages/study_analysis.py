"""Reader analysis (researchers only): the model against each reader on the same cases, live."""

import streamlit as st

import db
from dashboard import auth, localisation_panels, saved, widgets
from dashboard import study_analysis as sections
from dashboard.store import connection, errors_shown

auth.require_role("admin")
st.title("Reader analysis")

with errors_shown(), connection() as conn:  # e.g. a broken database path: one line, no traceback
    studies = db.studies_frame(conn)
if studies.empty:
    st.info("No reader study yet: create one on **Studies and readers** or run `make demo`.")
    st.stop()
study_id = widgets.study_picker(studies, newest_with_reads=True)
live = st.toggle("Live: re-read the database every 15 s", help="Or press R to rerun now.")


@st.fragment(run_every=15 if live else None)
def analysis() -> None:
    """Re-read on each run when the reads changed (db.reads_version), so new reads show up."""
    with saved.rendering():  # background updates wait: this run is what the researcher awaits
        tables_of_the_study()


def tables_of_the_study() -> None:
    notice = st.empty()
    try:
        draw_the_tables()
    except Exception:  # shown by Streamlit; tables drawn above it may be older ones: say so
        say_what_is_updating(notice)
        raise
    say_what_is_updating(notice)


def draw_the_tables() -> None:
    with errors_shown(), connection() as conn:
        data = sections.study_data(conn, study_id)
    sections.simulated_warning(data)
    if not data.has_reads:
        st.info("No reads yet. Tables appear here as readers submit answers.")
        return
    arm = st.radio("Arm", data.arms, horizontal=True) if len(data.arms) > 1 else data.arms[0]
    named = sections.rater_frames(data, arm)
    tables: dict = {}  # title -> table, filled by each section for the CSV export
    shown = sections.confusion_and_metrics(named, tables)  # the raters drawn in detail
    sections.roc_section(named, shown)
    sections.calibration_section(named, tables, shown)
    sections.mcnemar_section(named, tables)
    sections.agreement_section(named, tables)
    sections.repeat_section(data, tables)
    sections.time_sections(data, tables)
    sections.mrmc_section(data, arm, tables)
    localisation_panels.localisation_section(study_id, tables)
    sections.export_section(data, study_id, tables)


def say_what_is_updating(notice) -> None:
    pending = sections.updating_keys(study_id)
    if pending:
        notice.info(
            f"Updating {len(pending)} table{'s' if len(pending) > 1 else ''} for the newest "
            "reads: until each is ready, its place shows that of the reads before, or a "
            "placeholder; they refresh by themselves."
        )
        rerun_when_one_is_ready(pending)


@st.fragment(run_every=1)
def rerun_when_one_is_ready(pending_when_drawn: frozenset[str]) -> None:
    """While tables are recomputed in the background: a look each second (drawing nothing), and
    the page rerun when one of those it drew is ready, to show it (whatever else is queued, e.g.
    by another researcher's session). So a new read costs one page run, then one per second at
    most while tables come in; a page run that does not call this stops it."""
    if pending_when_drawn - sections.updating_keys(study_id):
        st.rerun()


analysis()
