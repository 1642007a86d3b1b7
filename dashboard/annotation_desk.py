"""The annotation desk: one case of the worklist in the viewer's annotation mode, its marks saved
as a new version by the signed-in author (an annotator, or ``admin``) when the viewer says so.

The browser sends ``{view, base, marks, move}`` (see :mod:`dashboard.viewer`); a save for another
case than the one on screen (a stale message) is ignored, a refused one leaves the marks in the
browser with the reason shown under the image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

import db
from core.annotation import marks as marks_lib
from core.reader_study.viewer_data import viewer_payload
from dashboard import safe_text, store
from dashboard.viewer import ANNOTATE_LEGEND, image_viewer

COMPONENT_KEY = "annotate_viewer"
SAVE_KEY = "annotate_save"  # the browser's latest save, until the page has handled it
NOTE_KEY = "annotate_note"
CASE_PARAM = "case"  # the case on screen, in the URL, by its display ID


@dataclass(frozen=True)
class Author:
    name: str
    annotator_id: int | None
    sees_others: bool  # the admin sees every author's marks; an annotator only their own


def author_of(identity) -> Author:
    if identity.role == "admin":
        return Author(db.ADMIN_AUTHOR, None, True)
    return Author(identity.name, identity.annotator_id, False)


def _on_save() -> None:
    value = st.session_state.get(COMPONENT_KEY) or {}
    st.session_state[SAVE_KEY] = value.get("save")


def _store_key(author: str, display_id: str) -> str:
    """Where this browser keeps marks not yet stored: per author and case, the name hashed."""
    return hashlib.sha256(author.encode()).hexdigest()[:12] + ":" + display_id


def view_id(display_id: str) -> str:
    return f"annotate:{display_id}"


def handle_save(author: Author, case_id: str, display_id: str) -> str | None:
    """Store the save the browser sent for this case; return the move it asked for, if stored."""
    request = st.session_state.pop(SAVE_KEY, None)
    if not isinstance(request, dict) or request.get("view") != view_id(display_id):
        return None
    try:
        with store.connection() as conn:
            version = marks_lib.save_drawn(conn, case_id, author.name, request.get("marks"),
                                           annotator_id=author.annotator_id)  # fmt: skip
    except store.LIBRARY_ERRORS as exc:  # a MarkError is a ValueError: the bad mark, named
        st.session_state[NOTE_KEY] = f"Not saved: {exc}"
        return None
    # the version row itself records who saved what and when
    st.session_state[NOTE_KEY] = f"Saved {display_id} as version {version}." if version else ""
    return str(request.get("move") or "")


def annotation_view(author: Author, case_id: str, display_id: str, slices) -> None:
    """The viewer in annotation mode on one case's slices."""
    with store.connection() as conn:
        by_author = marks_lib.marks_on_slices(conn, case_id, slices)
        version = db.current_mark_version(conn, case_id, author.name)
    own = [
        {k: v for k, v in m.items() if k in ("slice", "kind", "points")}
        for m in by_author.get(author.name, [])
    ]
    others = []
    if author.sees_others:
        names = sorted(a for a in by_author if a != author.name)
        colours = marks_lib.AUTHOR_COLOURS[1:]
        others = [
            {"author": name, "colour": colours[i % len(colours)], "marks": by_author[name]}
            for i, name in enumerate(names)
        ]
    first = slices[0].source.decoded()
    payload = viewer_payload(
        [s.source.pixels() for s in slices],
        [None] * len(slices),  # the manifest's box is not shown: a second opinion is independent
        window_center=first.window_center,
        window_width=first.window_width,
        view_id=view_id(display_id),
    )
    payload["marks"] = others
    payload["annotate"] = {
        "marks": own,
        "version": version,
        "store_key": _store_key(author.name, display_id),
        "colour": marks_lib.AUTHOR_COLOURS[0],
        "note": st.session_state.get(NOTE_KEY, ""),
    }
    image_viewer(payload, key=COMPONENT_KEY, size=560, on_save=_on_save)
    st.caption(ANNOTATE_LEGEND)
    if others:
        st.caption(
            "Dashed: "
            + ", ".join(f"{safe_text.plain(o['author'])} ({o['colour']})" for o in others)
        )
