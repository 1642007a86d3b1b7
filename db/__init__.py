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
from db.connection import connect, resolve_db_path
from db.csv_io import (
    export_predictions_csv,
    export_reads_csv,
    import_predictions_csv,
    import_reads_csv,
)
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
from db.reads import (
    audit_frame,
    next_unread,
    reader_progress_frame,
    reader_reads_frame,
    reads_frame,
    submit_read,
    worklist,
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
from db.studies import (
    Reader,
    add_reader,
    authenticate_reader,
    close_study,
    create_study,
    get_study,
    set_study_status,
    studies_frame,
)

__all__ = [
    "SCHEMA_VERSION",
    "CaseNotFound",
    "CervixScopeDBError",
    "DuplicateStudy",
    "ImportValidationError",
    "InvalidAccessCode",
    "Reader",
    "ReaderNotFound",
    "RunNotFound",
    "StudyClosed",
    "StudyNotFound",
    "add_reader",
    "add_run_warning",
    "audit_frame",
    "authenticate_reader",
    "cases_frame",
    "close_study",
    "connect",
    "create_run",
    "create_study",
    "export_predictions_csv",
    "export_reads_csv",
    "folds_frame",
    "get_run",
    "get_study",
    "images_frame",
    "import_predictions_csv",
    "import_reads_csv",
    "ingestion_issues_frame",
    "latest_ingestion",
    "migrate",
    "new_run_id",
    "next_unread",
    "predictions_frame",
    "reader_progress_frame",
    "reader_reads_frame",
    "reads_frame",
    "record_ingestion",
    "resolve_db_path",
    "runs_frame",
    "save_fold",
    "save_predictions",
    "schema_version",
    "set_study_status",
    "studies_frame",
    "submit_read",
    "update_run",
    "upsert_cases",
    "upsert_images",
    "worklist",
]
