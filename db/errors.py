"""Named exceptions raised by ``db/``; pages catch them and show ``str(exc)`` as it is."""

from __future__ import annotations


class CervixScopeDBError(Exception):
    """Base class of every error ``db/`` raises on purpose."""


class CaseNotFound(CervixScopeDBError, LookupError):
    """A case ID that is not in the ``cases`` table (or not in the study)."""


class RunNotFound(CervixScopeDBError, LookupError):
    """A run ID that is not in the ``runs`` table."""


class StudyNotFound(CervixScopeDBError, LookupError):
    """A study ID that is not in the ``studies`` table."""


class ReaderNotFound(CervixScopeDBError, LookupError):
    """A reader ID that is not a reader of the study in question."""


class InvalidAccessCode(CervixScopeDBError, PermissionError):
    """An access code that matches no reader."""


class StudyClosed(CervixScopeDBError):
    """A write to a study whose status is ``closed``."""


class DuplicateStudy(CervixScopeDBError, ValueError):
    """A study name that is already taken."""


class ImportValidationError(CervixScopeDBError, ValueError):
    """A CSV import that failed validation; nothing was written.

    Attributes
    ----------
    problems : list of str
        One line per bad row, each starting with its 1-based data row number (the header is row 0).
    """

    def __init__(self, path: object, problems: list[str]) -> None:
        self.problems = list(problems)
        shown = "\n".join(self.problems[:20])
        more = f"\n... and {len(self.problems) - 20} more" if len(self.problems) > 20 else ""
        super().__init__(
            f"{path}: {len(self.problems)} problem(s), nothing was imported:\n{shown}{more}"
        )


class LabelChangeRefused(CervixScopeDBError, ValueError):
    """A re-ingestion that would change the stored label of cases; nothing was written.

    Attributes
    ----------
    changes : list of dict
        One per case: ``case_id, old, new, runs`` (the runs that predicted the case).
    """

    def __init__(self, changes: list[dict]) -> None:
        self.changes = list(changes)
        lines = [
            f"case {c['case_id']}: stored label {c['old']}, new label {c['new']}; "
            + (f"used by run(s) {', '.join(c['runs'])}" if c["runs"] else "used by no run yet")
            for c in self.changes[:10]
        ]
        more = f"\n... and {len(self.changes) - 10} more" if len(self.changes) > 10 else ""
        super().__init__(
            f"refused: this would change the label of {len(self.changes)} stored case(s), "
            "nothing was written:\n" + "\n".join(lines) + more + "\nIf the new labels are "
            "right, re-ingest with --allow-label-change (the change is audited)."
        )
