"""The study page's lifecycle panels: details, close/reopen, reader instructions, reader codes."""

from __future__ import annotations

import streamlit as st

import db
import db.attempts
from dashboard import auth, safe_text
from dashboard.store import LIBRARY_ERRORS, connection, errors_shown

SLICE_OPTIONS = {"model": "the slices the model used", "series": "the whole series"}


def details_panel(study_id: int, run_names: dict[str, str]) -> dict:
    """Cases, arms, washout, model, readers and progress of one study; returns the study."""
    with errors_shown(), connection() as conn:
        study = db.get_study(conn, study_id)
        progress = db.reader_progress_frame(conn, study_id)
        readers = db.readers_frame(conn, study_id)
    status = "open" if study["status"] == "open" else "closed"
    run = study["model_run_id"]
    st.markdown(
        f"**{safe_text.plain(study['name'])}** · {status} · {study['n_cases']} cases from "
        f"{safe_text.plain(', '.join(study['cohorts']))} · arms "
        f"{', '.join(study['arms'])} · washout {study['washout_days']} days · "
        f"{study['n_readers']} readers · model: {run_names.get(run, run) if run else 'none'}"
        f" · {study.get('repeat_cases') or 0} repeat cases per reader"
        f" · readers see {SLICE_OPTIONS.get(study.get('slices'), 'the slices the model used')}"
        + (
            f" · readers mark the lesion (hit: inside the ROI or within "
            f"{float(study.get('hit_radius_mm') or 0):g} mm)"
            if study.get("localise")
            else ""
        )
    )
    revoked = dict(zip(readers["reader_id"], readers["code_revoked_at"].notna(), strict=True))
    progress = progress.assign(code=progress["reader_id"].map(revoked).map({True: "revoked"}))
    st.dataframe(
        progress.fillna({"code": "valid"}),
        hide_index=True,
        column_config={
            "fraction": st.column_config.ProgressColumn("progress", min_value=0, max_value=1)
        },
    )
    return study


def status_controls(study: dict) -> None:
    """Close the study (it then refuses every read) or reopen it."""
    closing = study["status"] == "open"
    label = "Close study (refuse reads)" if closing else "Reopen study"
    if st.button(label, key=f"status:{study['study_id']}"):
        try:
            with connection() as conn:
                db.set_study_status(conn, study["study_id"], "closed" if closing else "open")
        except LIBRARY_ERRORS as exc:
            st.error(str(exc))
        else:
            st.rerun()


def instructions_editor(study: dict) -> None:
    """Reader instructions in Markdown, shown to each reader before the first case."""
    with st.form(f"instructions:{study['study_id']}"):
        text = st.text_area(
            "Reader instructions (Markdown, shown before the first case)",
            value=str(study.get("instructions") or ""),
            height=120,
        )
        if st.form_submit_button("Save instructions"):
            try:
                with connection() as conn:
                    db.set_study_instructions(conn, study["study_id"], text)
            except LIBRARY_ERRORS as exc:
                st.error(str(exc))
            else:
                st.success("Instructions saved.")
    if study.get("instructions"):
        with st.expander("Preview as readers see it"):
            st.markdown(safe_text.instructions(study["instructions"]))  # as readers see it


def code_controls(study_id: int) -> None:
    """Revoke a reader's access code (and sessions), or issue a new code shown once."""
    with errors_shown(), connection() as conn:
        readers = db.readers_frame(conn, study_id)
    readers = readers[readers["simulated"] == 0]
    if readers.empty:
        return
    names = dict(zip(readers["reader_id"], readers["display_name"], strict=True))
    pick, revoke, reissue = st.columns([2, 1, 1], vertical_alignment="bottom")
    reader_id = pick.selectbox("Reader", list(names), format_func=names.get, key="code_reader")
    if revoke.button("Revoke code", width="stretch"):
        _code_action(
            db.revoke_reader_code,
            study_id,
            reader_id,
            f"{safe_text.plain(names[reader_id])}'s code is revoked.",
        )
    if reissue.button("Issue a new code", width="stretch"):
        _code_action(
            db.reissue_reader_code,
            study_id,
            reader_id,
            f"New code for {safe_text.plain(names[reader_id])}:",
        )


def _code_action(action, study_id: int, reader_id: int, message: str) -> None:
    try:
        with connection() as conn:
            code = action(conn, int(reader_id))
    except LIBRARY_ERRORS as exc:
        st.error(str(exc))
        return
    event = "code_reissued" if code else "code_revoked"
    auth.audit(event, study_id=int(study_id), reader_id=int(reader_id))
    st.success(message)
    if code:
        st.code(code, language=None)
        st.caption("Shown only now; the old code and its sessions no longer work.")


def security_panel(study_id: int) -> None:
    """Readers whose code is open in more than one session, and the security audit (sign-ins,
    lockouts, exports, imports, reader and code changes) of this study and of admin sign-in."""
    with errors_shown(), connection() as conn:
        shared = db.concurrent_sessions_frame(conn, study_id)
        audit = db.security_audit_frame(conn, study_id=study_id, limit=500)
    if not shared.empty:
        st.warning(
            f"{len(shared)} reader(s) have their access code open in more than one session at "
            "once: one code may be shared. Each submit of theirs is in the audit with its "
            "session; revoke or reissue the code if that is not the reader."
        )
        st.dataframe(shared, hide_index=True)
    failures = int((audit["event"] == "sign_in_failed").sum())
    with st.expander(f"Security audit ({len(audit)} events, {failures} failed sign-ins)"):
        st.dataframe(audit, hide_index=True, height=260)


def refused_answers_panel(study_id: int) -> None:
    """Answers the server refused (the study was closed, a session had ended): kept, not lost."""
    with connection() as conn:
        refused = db.attempts.refused_answers_frame(conn, study_id)
    if refused.empty:
        return
    st.subheader("Answers refused")
    st.warning(
        f"{len(refused)} answer(s) reached the server after the study was closed or a reader's "
        "session had ended. They are not reads; they are kept here with the reason."
    )
    st.dataframe(refused.drop(columns=["attempt_id"]), hide_index=True)


def reads_csv_bytes(study_id: int) -> bytes:
    """The study's reads as the CSV ``cervixscope study export-reads`` writes (for a download)."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp, connection() as conn:
        path = Path(tmp) / "reads.csv"
        db.export_reads_csv(conn, study_id, path)
        return path.read_bytes()
