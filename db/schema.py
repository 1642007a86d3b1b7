"""Every table of the CervixScope database, created and evolved only by the migrations below.

The schema version is the number of migrations applied; it is mirrored in ``PRAGMA user_version``
so :func:`migrate` can skip all work in the common case. Never edit a released migration: add a
new one at the end, so a database from an older release opens in a newer one.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils
from sqlite_utils.migrations import Migrations

from db.transactions import write_transaction

migrations = Migrations("cervixscope")


def _script(conn: sqlite_utils.Database, sql: str) -> None:
    """Run a script statement by statement inside the migration's transaction.

    ``sqlite3.executescript`` would COMMIT the open transaction first, so a migration that failed
    half-way would leave its first statements applied.
    """
    statement = ""
    for line in sql.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            conn.conn.execute(statement)
            statement = ""
    if statement.strip():
        raise ValueError(f"incomplete SQL statement in a migration: {statement.strip()[:80]!r}")


@migrations(name="v1_initial")
def _v1_initial(conn: sqlite_utils.Database) -> None:
    _script(
        conn,
        """
        CREATE TABLE ingestions (
            ingestion_id INTEGER PRIMARY KEY AUTOINCREMENT,
            created_at TEXT NOT NULL,
            data_dir TEXT, manifest TEXT, crop_cache TEXT, data_hash TEXT, crop_size INTEGER,
            n_issues INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE ingestion_issues (
            issue_id INTEGER PRIMARY KEY AUTOINCREMENT,
            ingestion_id INTEGER NOT NULL REFERENCES ingestions(ingestion_id),
            row INTEGER, path TEXT, problem TEXT NOT NULL
        );
        CREATE TABLE cases (
            case_id TEXT PRIMARY KEY,
            display_id TEXT NOT NULL UNIQUE,
            label TEXT CHECK (label IS NULL OR label IN ('SCC', 'AC', 'ASC')),
            synthetic INTEGER NOT NULL DEFAULT 0 CHECK (synthetic IN (0, 1)),
            series_description TEXT, orientation TEXT,
            ingestion_id INTEGER REFERENCES ingestions(ingestion_id),
            created_at TEXT NOT NULL, updated_at TEXT NOT NULL
        );
        CREATE TABLE images (
            image_id TEXT PRIMARY KEY,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            source_path TEXT, frame INTEGER NOT NULL DEFAULT 0,
            roi_x0 REAL, roi_y0 REAL, roi_x1 REAL, roi_y1 REAL,
            crop_cache TEXT, crop_index INTEGER, rows INTEGER, cols INTEGER
        );
        CREATE INDEX images_case ON images(case_id);
        CREATE TABLE runs (
            run_id TEXT PRIMARY KEY,
            model TEXT NOT NULL, mode TEXT NOT NULL, config TEXT NOT NULL, seed INTEGER,
            code_version TEXT, packages TEXT, data_hash TEXT, device TEXT, weights TEXT,
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'running', 'done', 'failed', 'partial')),
            progress REAL NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
            message TEXT,
            created_at TEXT NOT NULL, started_at TEXT, ended_at TEXT, timings TEXT
        );
        CREATE TABLE run_warnings (
            warning_id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            at TEXT NOT NULL, text TEXT NOT NULL
        );
        CREATE INDEX run_warnings_run ON run_warnings(run_id);
        CREATE TABLE folds (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            fold INTEGER NOT NULL,
            n_train INTEGER, n_test INTEGER, seconds REAL, metrics TEXT,
            PRIMARY KEY (run_id, fold)
        );
        CREATE TABLE predictions (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            fold INTEGER NOT NULL,
            p_SCC REAL NOT NULL, p_AC REAL NOT NULL, p_ASC REAL NOT NULL,
            PRIMARY KEY (run_id, case_id)
        );
        CREATE TABLE studies (
            study_id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            arms TEXT NOT NULL,
            order_seed INTEGER NOT NULL DEFAULT 0,
            model_run_id TEXT REFERENCES runs(run_id),
            washout_days INTEGER NOT NULL DEFAULT 0,
            simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1)),
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed'))
        );
        CREATE TABLE study_cases (
            study_id INTEGER NOT NULL REFERENCES studies(study_id),
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            PRIMARY KEY (study_id, case_id)
        );
        CREATE TABLE readers (
            reader_id INTEGER PRIMARY KEY AUTOINCREMENT,
            study_id INTEGER NOT NULL REFERENCES studies(study_id),
            display_name TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'reader',
            code_salt BLOB NOT NULL, code_hash BLOB NOT NULL,
            simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1)),
            created_at TEXT NOT NULL,
            UNIQUE (study_id, display_name)
        );
        CREATE TABLE assignments (
            study_id INTEGER NOT NULL,
            reader_id INTEGER NOT NULL REFERENCES readers(reader_id),
            arm TEXT NOT NULL,
            case_id TEXT NOT NULL,
            position INTEGER NOT NULL,
            PRIMARY KEY (reader_id, arm, position),
            UNIQUE (reader_id, arm, case_id),
            FOREIGN KEY (study_id, case_id) REFERENCES study_cases(study_id, case_id)
        );
        CREATE TABLE reads (
            read_id INTEGER PRIMARY KEY AUTOINCREMENT,
            study_id INTEGER NOT NULL,
            reader_id INTEGER NOT NULL REFERENCES readers(reader_id),
            case_id TEXT NOT NULL,
            arm TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('SCC', 'AC', 'ASC')),
            c_SCC REAL CHECK (c_SCC IS NULL OR c_SCC BETWEEN 0 AND 1),
            c_AC REAL CHECK (c_AC IS NULL OR c_AC BETWEEN 0 AND 1),
            c_ASC REAL CHECK (c_ASC IS NULL OR c_ASC BETWEEN 0 AND 1),
            shown_at TEXT, submitted_at TEXT NOT NULL, duration_ms INTEGER,
            UNIQUE (study_id, reader_id, case_id, arm),
            FOREIGN KEY (study_id, case_id) REFERENCES study_cases(study_id, case_id)
        );
        -- Reads are never deleted: a correction is an update, and the audit log keeps the history.
        CREATE TRIGGER reads_no_delete BEFORE DELETE ON reads
        BEGIN SELECT RAISE(ABORT, 'reads are never deleted'); END;
        """,
    )


@migrations(name="v2_audit_and_comparisons")
def _v2_audit_and_comparisons(conn: sqlite_utils.Database) -> None:
    # v2: an append-only audit log of every change to a read, a revision counter on reads, and
    # runs grouped into model comparisons that share one set of folds.
    _script(
        conn,
        """
        CREATE TABLE read_audit (
            audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
            read_id INTEGER NOT NULL REFERENCES reads(read_id),
            study_id INTEGER NOT NULL, reader_id INTEGER NOT NULL,
            case_id TEXT NOT NULL, arm TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('insert', 'update')),
            source TEXT NOT NULL DEFAULT 'app',
            old TEXT, new TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX read_audit_study ON read_audit(study_id, read_id);
        CREATE TRIGGER read_audit_no_update BEFORE UPDATE ON read_audit
        BEGIN SELECT RAISE(ABORT, 'read_audit is append-only'); END;
        CREATE TRIGGER read_audit_no_delete BEFORE DELETE ON read_audit
        BEGIN SELECT RAISE(ABORT, 'read_audit is append-only'); END;
        ALTER TABLE reads ADD COLUMN revision INTEGER NOT NULL DEFAULT 1;
        ALTER TABLE runs ADD COLUMN comparison_id TEXT;
        CREATE INDEX runs_comparison ON runs(comparison_id);
        """,
    )
    # Reads made before v2 start their history with a baseline row, so no read lacks an audit trail.
    conn.execute(
        """
        INSERT INTO read_audit (read_id, study_id, reader_id, case_id, arm, action, source,
                                old, new, at)
        SELECT read_id, study_id, reader_id, case_id, arm, 'insert', 'migration', NULL,
               json_object('label', label, 'c_SCC', c_SCC, 'c_AC', c_AC, 'c_ASC', c_ASC,
                           'shown_at', shown_at, 'submitted_at', submitted_at,
                           'duration_ms', duration_ms),
               strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
        FROM reads ORDER BY read_id
        """
    )


@migrations(name="v3_image_predictions")
def _v3_image_predictions(conn: sqlite_utils.Database) -> None:
    # v3: out-of-fold probabilities per image (slice), before the mean over a case's images, so
    # metrics can be reported per image as well as per case. Only the run is a foreign key: CV
    # runs on a CropSet whose images need not be in the images table.
    _script(
        conn,
        """
        CREATE TABLE image_predictions (
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            image_id TEXT NOT NULL,
            case_id TEXT NOT NULL,
            fold INTEGER NOT NULL,
            p_SCC REAL NOT NULL, p_AC REAL NOT NULL, p_ASC REAL NOT NULL,
            PRIMARY KEY (run_id, image_id)
        );
        CREATE INDEX image_predictions_case ON image_predictions(run_id, case_id);
        """,
    )


@migrations(name="v4_sessions_and_study_lifecycle")
def _v4_sessions_and_study_lifecycle(conn: sqlite_utils.Database) -> None:
    # v4: sign-in sessions that survive a reload (only a hash of each token is kept), reader codes
    # that an admin can revoke, and per-study reader instructions (Markdown).
    _script(
        conn,
        """
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            role TEXT NOT NULL CHECK (role IN ('admin', 'reader')),
            reader_id INTEGER REFERENCES readers(reader_id),
            study_id INTEGER REFERENCES studies(study_id),
            created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT,
            CHECK ((role = 'reader') = (reader_id IS NOT NULL))
        );
        CREATE INDEX sessions_reader ON sessions(reader_id);
        ALTER TABLE readers ADD COLUMN code_revoked_at TEXT;
        ALTER TABLE studies ADD COLUMN instructions TEXT NOT NULL DEFAULT '';
        """,
    )


@migrations(name="v5_repeat_reads")
def _v5_repeat_reads(conn: sqlite_utils.Database) -> None:
    # v5 (issue 18): repeat reads measure each reader's consistency. A repeat is a case shown to
    # the same reader again, later in the same arm, under a display ID of its own (so the reader
    # cannot match it to the first showing); its answer is kept apart from `reads`, so the MRMC
    # inputs never see it.
    _script(
        conn,
        """
        ALTER TABLE studies ADD COLUMN repeat_cases INTEGER NOT NULL DEFAULT 0
            CHECK (repeat_cases >= 0);
        CREATE TABLE repeat_assignments (
            study_id INTEGER NOT NULL,
            reader_id INTEGER NOT NULL REFERENCES readers(reader_id),
            arm TEXT NOT NULL,
            case_id TEXT NOT NULL,
            display_id TEXT NOT NULL UNIQUE,
            after_position INTEGER NOT NULL,
            PRIMARY KEY (reader_id, arm, case_id),
            FOREIGN KEY (study_id, case_id) REFERENCES study_cases(study_id, case_id)
        );
        CREATE TABLE repeat_reads (
            repeat_read_id INTEGER PRIMARY KEY AUTOINCREMENT,
            study_id INTEGER NOT NULL,
            reader_id INTEGER NOT NULL REFERENCES readers(reader_id),
            case_id TEXT NOT NULL,
            arm TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('SCC', 'AC', 'ASC')),
            c_SCC REAL CHECK (c_SCC IS NULL OR c_SCC BETWEEN 0 AND 1),
            c_AC REAL CHECK (c_AC IS NULL OR c_AC BETWEEN 0 AND 1),
            c_ASC REAL CHECK (c_ASC IS NULL OR c_ASC BETWEEN 0 AND 1),
            submitted_at TEXT NOT NULL, duration_ms INTEGER,
            UNIQUE (reader_id, case_id, arm),
            FOREIGN KEY (reader_id, arm, case_id)
                REFERENCES repeat_assignments(reader_id, arm, case_id)
        );
        """,
    )


@migrations(name="v6_run_liveness")
def _v6_run_liveness(conn: sqlite_utils.Database) -> None:
    # v6 (issues 15, 16): a run's process proves it is alive (heartbeat_at, pid, host), so a run
    # whose process died is marked failed by the next look instead of staying running forever;
    # and a run can be `cancelled`. The CHECK on runs.status gains that value by rewriting the
    # stored CREATE TABLE text (SQLite's documented procedure for a change that leaves every
    # stored row valid): rebuilding the table would have to drop a parent of four foreign keys.
    _script(
        conn,
        """
        ALTER TABLE runs ADD COLUMN heartbeat_at TEXT;
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE runs ADD COLUMN host TEXT;
        """,
    )
    _rewrite_table_sql(conn, "runs", "'failed', 'partial')", "'failed', 'partial', 'cancelled')")


def _rewrite_table_sql(conn: sqlite_utils.Database, table: str, old: str, new: str) -> None:
    """Replace ``old`` by ``new`` in a table's stored CREATE TABLE text (SQLite's documented way
    to widen a CHECK that every stored row already meets), bumping the schema version."""
    raw = conn.conn
    (sql,) = raw.execute(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if old not in sql:
        raise ValueError(f"the {table} table's CREATE text lacks {old!r}: not the expected schema")
    (version,) = raw.execute("PRAGMA schema_version").fetchone()
    raw.execute("PRAGMA writable_schema = ON")
    try:
        raw.execute(
            "UPDATE sqlite_schema SET sql = ? WHERE type = 'table' AND name = ?",
            (sql.replace(old, new), table),
        )
        raw.execute(f"PRAGMA schema_version = {int(version) + 1}")
    finally:
        raw.execute("PRAGMA writable_schema = OFF")


@migrations(name="v7_repeated_cv")
def _v7_repeated_cv(conn: sqlite_utils.Database) -> None:
    # v7 (issue 17): repeated cross-validation. The N runs of one repeated CV share a
    # repeat_group; repeat_index (0..N-1) is their order (fold seeds seed, seed+1, ...).
    _script(
        conn,
        """
        ALTER TABLE runs ADD COLUMN repeat_group TEXT;
        ALTER TABLE runs ADD COLUMN repeat_index INTEGER;
        CREATE INDEX runs_repeat_group ON runs(repeat_group);
        """,
    )


@migrations(name="v8_security_audit")
def _v8_security_audit(conn: sqlite_utils.Database) -> None:
    # v8 (issue 15): an append-only security audit (sign-ins ok and failed, lockouts, sign-outs,
    # exports, imports, reader and code changes, concurrent sessions). Its rows also drive the
    # sign-in limits (db.security), which read them through the two indexes below in one query.
    _script(
        conn,
        """
        CREATE TABLE security_audit (
            event_id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            event TEXT NOT NULL,
            ok INTEGER CHECK (ok IS NULL OR ok IN (0, 1)),
            role TEXT CHECK (role IS NULL OR role IN ('admin', 'reader')),
            client TEXT NOT NULL DEFAULT '',
            reader_id INTEGER, study_id INTEGER,
            session TEXT, detail TEXT
        );
        CREATE INDEX security_audit_event ON security_audit(event, at);
        CREATE INDEX security_audit_client ON security_audit(client, event, at);
        CREATE INDEX security_audit_study ON security_audit(study_id, event_id);
        CREATE TRIGGER security_audit_no_update BEFORE UPDATE ON security_audit
        BEGIN SELECT RAISE(ABORT, 'security_audit is append-only'); END;
        CREATE TRIGGER security_audit_no_delete BEFORE DELETE ON security_audit
        BEGIN SELECT RAISE(ABORT, 'security_audit is append-only'); END;
        """,
    )


@migrations(name="v9_cohorts_validations")
def _v9_cohorts_validations(conn: sqlite_utils.Database) -> None:
    # v9 (issue 19): every case belongs to a cohort ('internal' unless ingested as another)
    # and may name its site; an external validation applies one run's frozen models to a cohort
    # and keeps one prediction per case, so its metrics can be recomputed from the rows.
    _script(
        conn,
        """
        ALTER TABLE cases ADD COLUMN cohort TEXT NOT NULL DEFAULT 'internal';
        ALTER TABLE cases ADD COLUMN site TEXT;
        CREATE INDEX cases_cohort ON cases(cohort);
        CREATE TABLE validations (
            validation_id INTEGER PRIMARY KEY,
            run_id TEXT NOT NULL,
            cohort TEXT NOT NULL,
            model TEXT NOT NULL,
            created_at TEXT NOT NULL,
            n_cases INTEGER NOT NULL,
            metrics TEXT,
            provenance TEXT,
            shift TEXT
        );
        CREATE INDEX validations_run ON validations(run_id, cohort);
        CREATE TABLE validation_predictions (
            validation_id INTEGER NOT NULL REFERENCES validations(validation_id),
            case_id TEXT NOT NULL,
            label INTEGER NOT NULL,
            predicted INTEGER NOT NULL,
            p_scc REAL NOT NULL,
            p_ac REAL NOT NULL,
            p_asc REAL NOT NULL,
            site TEXT,
            PRIMARY KEY (validation_id, case_id)
        );
        """,
    )


@migrations(name="v10_cases_keyed_by_cohort")
def _v10_cases_keyed_by_cohort(conn: sqlite_utils.Database) -> None:
    # v10 (issue 23): a patient is (cohort, patient ID). Hospitals all number from P0001, so a
    # second cohort keyed by patient ID alone overwrote the first one's labels. Every case key
    # becomes "<cohort>/<patient_id>" (db.cases.case_key), here and in every table that names a
    # case; image ids start with their case key. A trigger keeps the rule for new rows. Label
    # changes by re-ingestion are refused unless asked for, and then audited in case_audit.
    raw = conn.conn
    bad = raw.execute("SELECT cohort FROM cases WHERE instr(cohort, '/') > 0 LIMIT 1").fetchone()
    if bad:
        raise ValueError(f"v10: cohort name {bad[0]!r} contains '/'; rename it before upgrading")
    raw.execute("PRAGMA defer_foreign_keys = ON")  # keys change in parents and children at once
    _script(
        conn,
        """
        ALTER TABLE cases ADD COLUMN patient_id TEXT NOT NULL DEFAULT '';
        CREATE TEMP TABLE v10_case_map AS
            SELECT case_id AS old, cohort || '/' || case_id AS new, cohort FROM cases;
        CREATE UNIQUE INDEX temp.v10_case_map_old ON v10_case_map(old);
        UPDATE cases SET patient_id = case_id, case_id = cohort || '/' || case_id;
        UPDATE images SET
            image_id = (SELECT cohort FROM v10_case_map WHERE old = images.case_id) || '/'
                       || image_id,
            case_id = (SELECT new FROM v10_case_map WHERE old = images.case_id)
            WHERE case_id IN (SELECT old FROM v10_case_map);
        UPDATE image_predictions SET
            image_id = (SELECT cohort FROM v10_case_map WHERE old = image_predictions.case_id)
                       || '/' || image_id,
            case_id = (SELECT new FROM v10_case_map WHERE old = image_predictions.case_id)
            WHERE case_id IN (SELECT old FROM v10_case_map);
        """,
    )
    for table in (
        "predictions", "study_cases", "assignments", "reads", "repeat_assignments",
        "repeat_reads", "validation_predictions",
    ):  # fmt: skip
        raw.execute(
            f"UPDATE {table} SET case_id = (SELECT new FROM v10_case_map"  # noqa: S608 - fixed names
            f" WHERE old = {table}.case_id) WHERE case_id IN (SELECT old FROM v10_case_map)"
        )
    _rekey_read_audit(conn)
    _script(
        conn,
        """
        DROP TABLE temp.v10_case_map;
        CREATE UNIQUE INDEX cases_cohort_patient ON cases(cohort, patient_id);
        CREATE TRIGGER cases_key_on_insert BEFORE INSERT ON cases
        WHEN NEW.case_id IS NOT NEW.cohort || '/' || NEW.patient_id OR NEW.patient_id = ''
            OR instr(NEW.cohort, '/') > 0
        BEGIN SELECT RAISE(ABORT, 'a case_id is <cohort>/<patient_id>'); END;
        CREATE TRIGGER cases_key_on_update BEFORE UPDATE OF case_id, cohort, patient_id ON cases
        BEGIN SELECT RAISE(ABORT, 'a case keeps its cohort and patient ID'); END;
        CREATE TABLE case_audit (
            audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            field TEXT NOT NULL,
            old TEXT, new TEXT,
            ingestion_id INTEGER REFERENCES ingestions(ingestion_id),
            at TEXT NOT NULL
        );
        CREATE INDEX case_audit_case ON case_audit(case_id, audit_id);
        CREATE TRIGGER case_audit_no_update BEFORE UPDATE ON case_audit
        BEGIN SELECT RAISE(ABORT, 'case_audit is append-only'); END;
        CREATE TRIGGER case_audit_no_delete BEFORE DELETE ON case_audit
        BEGIN SELECT RAISE(ABORT, 'case_audit is append-only'); END;
        ALTER TABLE studies ADD COLUMN cohorts TEXT;
        """,
    )


def _rekey_read_audit(conn: sqlite_utils.Database) -> None:
    # The audit is append-only; its case keys are renamed once, in this migration, and the
    # append-only trigger is put back in the same transaction.
    _script(
        conn,
        """
        DROP TRIGGER read_audit_no_update;
        UPDATE read_audit SET case_id = (SELECT new FROM v10_case_map
            WHERE old = read_audit.case_id) WHERE case_id IN (SELECT old FROM v10_case_map);
        CREATE TRIGGER read_audit_no_update BEFORE UPDATE ON read_audit
        BEGIN SELECT RAISE(ABORT, 'read_audit is append-only'); END;
        """,
    )


@migrations(name="v11_security_audit_sources")
def _v11_security_audit_sources(conn: sqlite_utils.Database) -> None:
    # v11 (issue 28): the audit keeps the connection's own address and the X-Forwarded-For value
    # apart from the client the limits count (the forwarded hop only behind a trusted proxy), and
    # names the credential tried ("admin", "reader:<id>"), which has its own limit.
    _script(
        conn,
        """
        ALTER TABLE security_audit ADD COLUMN address TEXT;
        ALTER TABLE security_audit ADD COLUMN forwarded TEXT;
        ALTER TABLE security_audit ADD COLUMN credential TEXT;
        CREATE INDEX security_audit_credential ON security_audit(credential, event, at);
        """,
    )


@migrations(name="v12_answer_attempts")
def _v12_answer_attempts(conn: sqlite_utils.Database) -> None:
    # v12 (issue 24): the reading page answers in the browser and saves in the background, so a
    # submit can arrive twice (a retry after a dropped connection). Each answer carries the
    # browser's attempt id; an attempt is stored once, and one the server refused (a closed study,
    # a revoked code) is kept here for the admin with its reason.
    _script(
        conn,
        """
        CREATE TABLE answer_attempts (
            attempt_id TEXT PRIMARY KEY,
            study_id INTEGER NOT NULL, reader_id INTEGER NOT NULL, arm TEXT NOT NULL,
            position INTEGER NOT NULL, display_id TEXT NOT NULL, case_id TEXT,
            label TEXT NOT NULL, confidences TEXT NOT NULL,
            duration_ms INTEGER, answered_at TEXT NOT NULL, received_at TEXT NOT NULL,
            outcome TEXT NOT NULL CHECK (outcome IN ('stored', 'refused')),
            reason TEXT, read_id INTEGER
        );
        CREATE INDEX answer_attempts_study ON answer_attempts(study_id, outcome);
        ALTER TABLE studies ADD COLUMN slices TEXT NOT NULL DEFAULT 'model'
            CHECK (slices IN ('model', 'series'));
        """,
    )


@migrations(name="v13_lesion_marks")
def _v13_lesion_marks(conn: sqlite_utils.Database) -> None:
    # v13 (issue 25): the expert's lesion marks. Annotators sign in with their own access code
    # (stored as a salted scrypt hash, like a reader's). Every save of a case's marks by one author
    # is a new version and old versions stay, so an ingestion names the versions its crops were cut
    # from (ingestion_marks). mark_choices records whose marks ingestion uses in a cohort.
    _script(
        conn,
        """
        CREATE TABLE annotators (
            annotator_id INTEGER PRIMARY KEY AUTOINCREMENT,
            display_name TEXT NOT NULL UNIQUE,
            code_salt BLOB NOT NULL, code_hash BLOB NOT NULL,
            created_at TEXT NOT NULL, code_revoked_at TEXT
        );
        CREATE TABLE mark_versions (
            version_id INTEGER PRIMARY KEY AUTOINCREMENT,
            case_id TEXT NOT NULL REFERENCES cases(case_id),
            author TEXT NOT NULL,
            annotator_id INTEGER REFERENCES annotators(annotator_id),
            version INTEGER NOT NULL CHECK (version >= 1),
            created_at TEXT NOT NULL,
            origin TEXT NOT NULL CHECK (origin IN ('drawn', 'dicom-seg', 'nifti')),
            origin_detail TEXT NOT NULL DEFAULT '',
            UNIQUE (case_id, author, version)
        );
        CREATE TABLE marks (
            mark_id INTEGER PRIMARY KEY AUTOINCREMENT,
            version_id INTEGER NOT NULL REFERENCES mark_versions(version_id),
            sop_instance_uid TEXT NOT NULL,
            frame INTEGER NOT NULL DEFAULT 0,
            kind TEXT NOT NULL CHECK (kind IN ('box', 'polygon', 'mask')),
            geometry TEXT NOT NULL
        );
        CREATE INDEX marks_version ON marks(version_id);
        CREATE TABLE mark_choices (
            cohort TEXT PRIMARY KEY, author TEXT NOT NULL, chosen_at TEXT NOT NULL
        );
        CREATE TABLE ingestion_marks (
            ingestion_id INTEGER NOT NULL REFERENCES ingestions(ingestion_id),
            image_id TEXT NOT NULL,
            version_id INTEGER NOT NULL REFERENCES mark_versions(version_id),
            PRIMARY KEY (ingestion_id, image_id)
        );
        ALTER TABLE sessions ADD COLUMN annotator_id INTEGER REFERENCES annotators(annotator_id);
        """,
    )
    # The role CHECKs of sessions and security_audit gain 'annotator' by rewriting their stored
    # CREATE TABLE text, as v6 did: every stored row stays valid.
    for table in ("sessions", "security_audit"):
        _rewrite_table_sql(
            conn, table, "role IN ('admin', 'reader'))", "role IN ('admin', 'reader', 'annotator'))"
        )


@migrations(name="v14_localisation")
def _v14_localisation(conn: sqlite_utils.Database) -> None:
    # v14 (issue 26): a study may ask readers to mark where they see the lesion. Marks are part
    # of the read (replaced with it, in its audit row) and are scored against the reference ROI
    # at analysis time, by the rule recorded with the study (inside, or within hit_radius_mm).
    # The model reads too: its mark per case and type is the peak of its fold model's Grad-CAM
    # (model_marks), mapped back through the crop window, which needs the ingestion's margin.
    # And an index for a reader's reads in an arm: progress tables at 20 readers x 6,410 cases.
    _script(
        conn,
        """
        ALTER TABLE studies ADD COLUMN localise INTEGER NOT NULL DEFAULT 0
            CHECK (localise IN (0, 1));
        ALTER TABLE studies ADD COLUMN hit_radius_mm REAL NOT NULL DEFAULT 0
            CHECK (hit_radius_mm >= 0);
        ALTER TABLE answer_attempts ADD COLUMN marks TEXT;
        ALTER TABLE ingestions ADD COLUMN margin REAL;
        CREATE INDEX reads_reader_arm ON reads(reader_id, arm, submitted_at);
        CREATE TABLE model_marks (
            study_id INTEGER NOT NULL REFERENCES studies(study_id),
            run_id TEXT NOT NULL REFERENCES runs(run_id),
            case_id TEXT NOT NULL,
            class TEXT NOT NULL CHECK (class IN ('SCC', 'AC', 'ASC')),
            image_id TEXT NOT NULL,
            x INTEGER NOT NULL, y INTEGER NOT NULL,
            row_spacing_mm REAL, col_spacing_mm REAL,
            PRIMARY KEY (study_id, run_id, case_id, class)
        );
        CREATE TABLE read_marks (
            read_id INTEGER NOT NULL REFERENCES reads(read_id),
            mark_index INTEGER NOT NULL CHECK (mark_index >= 0),
            slice INTEGER NOT NULL CHECK (slice >= 0),
            image_id TEXT,
            sop_instance_uid TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL CHECK (kind IN ('point', 'box')),
            x0 INTEGER NOT NULL, y0 INTEGER NOT NULL, x1 INTEGER NOT NULL, y1 INTEGER NOT NULL,
            row_spacing_mm REAL, col_spacing_mm REAL,
            PRIMARY KEY (read_id, mark_index)
        );
        """,
    )


@migrations(name="v15_saved_results")
def _v15_saved_results(conn: sqlite_utils.Database) -> None:
    # v15 (issue 27): results that take seconds to compute (bootstrap CIs of every rater, the
    # MRMC analyses) are saved under a key of what they were computed from, so a restarted
    # server, or a new read by one reader, recomputes only what changed. A cache: any row may be
    # deleted; a scope keeps one row per kind (the newest); the payload is a JSON document
    # (core.project.saved_values), never a pickle.
    _script(
        conn,
        """
        CREATE TABLE saved_results (
            scope TEXT NOT NULL,
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            payload BLOB NOT NULL,
            saved_at TEXT NOT NULL,
            PRIMARY KEY (scope, key)
        );
        CREATE INDEX saved_results_kind ON saved_results(scope, kind);
        CREATE INDEX saved_results_age ON saved_results(scope, saved_at);
        """,
    )


@migrations(name="v16_latest_read_audit")
def _v16_latest_read_audit(conn: sqlite_utils.Database) -> None:
    # v16 (issue 27): every rerun of the reader analysis asks for a study's newest audit row
    # (db.reads_version); indexed by read_id only, that scanned all its rows (8 ms at 128,000)
    _script(conn, "CREATE INDEX read_audit_latest ON read_audit(study_id, audit_id);")


MIGRATION_NAMES: tuple[str, ...] = tuple(m.name for m in migrations._migrations)
SCHEMA_VERSION: int = len(MIGRATION_NAMES)


def schema_version(conn: sqlite_utils.Database) -> int:
    """Return the schema version of an open database (0 for an empty file)."""
    return int(conn.conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite_utils.Database, *, target: int | None = None) -> int:
    """Apply pending migrations up to ``target`` (default: all) in one write transaction.

    Safe to call from many connections at once: the version is re-checked after the write lock
    is taken, so each migration runs exactly once.

    Parameters
    ----------
    conn : sqlite_utils.Database
        An open database.
    target : int, optional
        Stop at this schema version (``1`` builds a release-1 database, as the tests do).

    Returns
    -------
    int
        The schema version after migrating.

    Raises
    ------
    ValueError
        If ``target`` is outside ``0..SCHEMA_VERSION`` or the file is newer than this code.
    """
    goal = SCHEMA_VERSION if target is None else target
    if not 0 <= goal <= SCHEMA_VERSION:
        raise ValueError(f"target schema version {target} is not in 0..{SCHEMA_VERSION}")
    current = schema_version(conn)
    if current > SCHEMA_VERSION:
        raise ValueError(
            f"database schema version {current} is newer than this CervixScope "
            f"(knows up to {SCHEMA_VERSION}); upgrade CervixScope to open it"
        )
    if current >= goal:
        return current
    with write_transaction(conn):
        stop = MIGRATION_NAMES[goal] if goal < SCHEMA_VERSION else None
        migrations.apply(conn, stop_before=stop)
        applied = {m.name for m in migrations.applied(conn)}
        version = sum(1 for name in MIGRATION_NAMES if name in applied)
        conn.conn.execute(f"PRAGMA user_version = {int(version)}")
    return version
