"""The lesion marks stored in the database that ingestion cuts crops from, where the manifest gives
a row neither a box nor a mask.

Whose marks: the author asked for (``--marks-by``), else the one the admin chose for the cohort,
else the only author who marked the case. A case marked by several authors with no choice made is
refused by name, never decided silently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import db
from core.data.mark_geometry import Mark


@dataclass(frozen=True)
class StoredMarks:
    """``by_slice[(patient_id, sop_instance_uid, frame)] = (version_id, author, marks)``;
    ``undecided[patient_id]`` = the authors of a case nobody chose between."""

    by_slice: dict = field(default_factory=dict)
    undecided: dict = field(default_factory=dict)
    author: str | None = None

    def digest(self) -> str:
        """Changes whenever a version in use changes (it is part of ingestion's cache key)."""
        used = sorted({(k[0], v[0]) for k, v in self.by_slice.items()})
        text = repr((self.author, used, sorted(self.undecided.items())))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def refusal(self, patient_id: str) -> str | None:
        authors = self.undecided.get(patient_id)
        if not authors:
            return None
        return (
            f"patient {patient_id} has lesion marks by {' and '.join(authors)}; choose whose "
            "marks ingestion uses (cervixscope ingest --marks-by NAME, or the Annotate lesions "
            "page's agreement panel)"
        )


def stored_marks(conn, cohort: str, marks_by: str | None = None) -> StoredMarks:
    """The current marks of ``cohort``'s cases, by the author ingestion should use."""
    author = marks_by or db.mark_choice(conn, cohort)
    frame = db.current_marks_frame(conn, cohort=cohort).dropna(subset=["kind"])
    if author is not None:
        frame = frame.loc[frame["author"] == author]
    by_slice: dict = {}
    undecided: dict = {}
    for case_id, marks in frame.groupby("case_id", sort=True):
        patient_id = db.split_case_key(str(case_id))[1]
        authors = sorted(marks["author"].unique())
        if len(authors) > 1:
            undecided[patient_id] = tuple(authors)
            continue
        for (sop, slice_frame), rows in marks.groupby(["sop_instance_uid", "frame"]):
            shapes = tuple(Mark.from_json(g) for g in rows["geometry"])
            key = (patient_id, str(sop), int(slice_frame))
            by_slice[key] = (int(rows["version_id"].iloc[0]), authors[0], shapes)
    return StoredMarks(by_slice, undecided, author)

