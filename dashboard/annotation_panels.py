"""The admin's panels on the annotation page: annotators and their codes, agreement between two
authors with patient-bootstrap CIs, whose marks ingestion uses, and SEG / NIfTI in and out."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

import db
from core.annotation import formats
from core.annotation import marks as marks_lib
from core.annotation.agreement import summarise
from core.data.mark_geometry import MarkError
from dashboard import auth, safe_text
from dashboard.store import LIBRARY_ERRORS, connection

NO_CHOICE = "(no choice: the only author of each case)"


def admin_panels(cohort: str, case_id: str, display_id: str, slices) -> None:
    with connection() as conn:
        authors = sorted(set(db.current_marks_frame(conn, cohort=cohort)["author"]))
    annotators_panel()
    agreement_panel(cohort, authors)
    with st.expander(f"Versions of the marks of case {safe_text.plain(display_id)}"):
        with connection() as conn:
            st.dataframe(db.mark_versions_frame(conn, case_id), hide_index=True)
    if not isinstance(slices, str):
        formats_panel(case_id, display_id, slices, authors)


def annotators_panel() -> None:
    with st.expander("Annotators and access codes"):
        with st.form("add_annotator", clear_on_submit=True):
            name = st.text_input("New annotator's display name")
            if st.form_submit_button("Add annotator"):
                try:
                    with connection() as conn:
                        annotator_id, code = db.add_annotator(conn, name)
                except LIBRARY_ERRORS as exc:
                    st.error(str(exc))
                else:
                    auth.audit("annotator_added", detail=f"annotator {annotator_id}")
                    st.success(f"Access code for {safe_text.plain(name.strip())} (shown once):")
                    st.code(code, language=None)
        with connection() as conn:
            people = db.annotators_frame(conn)
        st.dataframe(people, hide_index=True)
        live = people.loc[people["code_revoked_at"].isna()]
        if not live.empty:
            pick = st.selectbox("Revoke the code of", live["display_name"], key="revoke_annotator")
            if st.button("Revoke code", key="revoke_annotator_button"):
                annotator_id = int(live.loc[live["display_name"] == pick, "annotator_id"].iloc[0])
                with connection() as conn:
                    db.revoke_annotator_code(conn, annotator_id)
                auth.audit("annotator_code_revoked", detail=f"annotator {annotator_id}")
                st.rerun()


def agreement_panel(cohort: str, authors: list[str]) -> None:
    with st.expander("Agreement between annotators, and whose marks ingestion uses"):
        if len(authors) >= 2:
            left, right = st.columns(2)
            first = left.selectbox("First author", authors, index=0, key="agree_first")
            second = right.selectbox("Second author", authors, index=1, key="agree_second")
            if first != second:
                _agreement(cohort, first, second)
        else:
            st.caption("Agreement needs two authors who marked cases of this cohort.")
        with connection() as conn:
            chosen = db.mark_choice(conn, cohort)
        options = [NO_CHOICE, *authors]
        pick = st.radio(
            f"Ingestion of cohort {safe_text.plain(cohort)} uses the marks of",
            options,
            index=options.index(chosen) if chosen in options else 0,
            format_func=safe_text.plain,  # radio labels are Markdown; names are user text
            key="mark_choice",
        )
        wanted = None if pick == NO_CHOICE else pick
        if wanted != chosen:
            with connection() as conn:
                db.set_mark_choice(conn, cohort, wanted)
            auth.audit("mark_choice", detail=f"{cohort}: {wanted or 'none'}")
            st.toast("Saved: the next `cervixscope ingest` uses these marks.")


def _agreement(cohort: str, first: str, second: str) -> None:
    with connection() as conn:
        per_case = marks_lib.agreement_frame(conn, cohort, first, second)
    if per_case.empty:
        st.caption("No case is marked by both.")
        return
    summary = summarise(per_case)
    pct = f"{summary.level:.0%}"
    st.markdown(
        f"**{summary.n_cases} cases marked by both.** Mean IoU {summary.iou:.3f} "
        f"({pct} CI {summary.iou_ci[0]:.3f}-{summary.iou_ci[1]:.3f}), mean Dice "
        f"{summary.dice:.3f} ({pct} CI {summary.dice_ci[0]:.3f}-{summary.dice_ci[1]:.3f}); "
        f"percentile bootstrap over patients, {summary.n_boot} resamples."
    )
    st.caption("Cases that disagree most (lowest Dice first)")
    st.dataframe(
        per_case[["display_id", "iou", "dice"]].head(20).round(3), hide_index=True,
        key="agreement_table",
    )  # fmt: skip


def formats_panel(case_id: str, display_id: str, slices, authors: list[str]) -> None:
    with st.expander(f"DICOM SEG and NIfTI for case {safe_text.plain(display_id)}"):
        upload = st.file_uploader(
            "Import a mask (DICOM SEG .dcm, or NIfTI .nii / .nii.gz)",
            type=["dcm", "nii", "gz"],
            key="mask_upload",
        )
        as_author = st.text_input("Import as author", value=db.ADMIN_AUTHOR, key="import_author")
        if upload is not None and st.button("Import mask", key="import_mask"):
            _import(upload, case_id, slices, as_author.strip() or db.ADMIN_AUTHOR)
        if authors:
            who = st.selectbox("Export the marks of", authors, key="export_author")
            _export(case_id, display_id, slices, who)


def _import(upload, case_id: str, slices, author: str) -> None:
    name = Path(upload.name).name
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(upload.getvalue())
        nifti = name.lower().endswith((".nii", ".nii.gz"))
        try:
            with connection() as conn:
                reader = formats.import_nifti if nifti else formats.import_seg
                version = reader(conn, path, case_id, slices, author)
        except (formats.MaskImportError, MarkError, *LIBRARY_ERRORS) as exc:
            st.error(str(exc))
            return
    auth.audit("marks_imported", detail=f"{name} as {author} version {version}")
    st.success(f"Imported {name} as version {version} of {author}'s marks.")


def _export(case_id: str, display_id: str, slices, author: str) -> None:
    with connection() as conn:
        marks = marks_lib.marks_on_slices(conn, case_id, slices).get(author, [])
    if not marks:
        st.caption(f"{safe_text.plain(author)} has no marks on this case.")
        return
    with tempfile.TemporaryDirectory() as folder:
        try:
            out = formats.export_seg(marks, slices, Path(folder) / "seg.dcm", author=author)
        except (MarkError, ValueError, OSError) as exc:
            st.error(f"No SEG for this case: {exc}")
            return
        data = out.read_bytes()
    st.download_button(
        "Download DICOM SEG", data, file_name=f"{display_id}-{author}-seg.dcm",
        mime="application/dicom", key="export_seg",
    )  # fmt: skip
