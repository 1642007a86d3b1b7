"""Where CervixScope writes: one project home for runs, caches and reports.

The home is ``$CERVIXSCOPE_HOME`` when set, else the folder of the database file
(``$CERVIXSCOPE_DB``, ``--db``, or ``./cervixscope.db``). So a run started from any working
directory lands where the dashboard, opened on the same database, looks for it, and nothing is
ever written into a user's DICOM folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from db.connection import resolve_db_path

HOME_ENV = "CERVIXSCOPE_HOME"


def project_home() -> Path:
    """The project home folder (not created here)."""
    chosen = os.environ.get(HOME_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    return resolve_db_path().parent


def runs_dir() -> Path:
    """``<home>/runs``: one folder per run (config, models, summaries)."""
    return project_home() / "runs"


def cache_dir(kind: str) -> Path:
    """``<home>/cache/<kind>``: content-addressed caches that are safe to delete (crops, embeddings)."""
    return project_home() / "cache" / kind
