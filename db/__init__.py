"""The CervixScope study database: one SQLite file, reached only through these functions.

Open one short-lived connection per operation or thread with :func:`connect`; every public
function takes it as its first argument, e.g. ``db.submit_read(conn, ...)``.
"""

from db.cases import (
    cases_frame,
    images_frame,
    ingestion_issues_frame,
    latest_ingestion,
    record_ingestion,
    upsert_cases,
    upsert_images,
)
from db.connection import connect, resolve_db_path, write_transaction
from db.errors import (
    CaseNotFound,
    CervixScopeDBError,
    DuplicateStudy,
    ImportValidationError,
    InvalidAccessCode,
    ReaderNotFound,
    RunNotFound,
    StudyClosed,
    StudyNotFound,
)
from db.runs import (
    add_run_warning,
    create_run,
    folds_frame,
    get_run,
    new_run_id,
    predictions_frame,
    runs_frame,
    save_fold,
    save_predictions,
    update_run,
)
from db.schema import SCHEMA_VERSION, migrate, schema_version

__all__ = [
    "SCHEMA_VERSION",
    "CaseNotFound",
    "CervixScopeDBError",
    "DuplicateStudy",
    "ImportValidationError",
    "InvalidAccessCode",
    "ReaderNotFound",
    "RunNotFound",
    "StudyClosed",
    "StudyNotFound",
    "add_run_warning",
    "cases_frame",
    "connect",
    "create_run",
    "folds_frame",
    "get_run",
    "images_frame",
    "ingestion_issues_frame",
    "latest_ingestion",
    "migrate",
    "new_run_id",
    "predictions_frame",
    "record_ingestion",
    "resolve_db_path",
    "runs_frame",
    "save_fold",
    "save_predictions",
    "schema_version",
    "update_run",
    "upsert_cases",
    "upsert_images",
    "write_transaction",
]
