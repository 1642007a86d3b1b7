"""connect(): where the file is, how it is configured, and migrations from an older release."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

import db
from db.schema import MIGRATION_NAMES, SCHEMA_VERSION, migrate, schema_version


def _build_release_1(path):
    """A database exactly as release 1 left it: the v1 migration only, then some data."""
    conn = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    assert migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO cases (case_id, display_id, label, synthetic, created_at, updated_at)"
        " VALUES ('P1', 'C-00AA11', 'ASC', 0, '2025-01-01', '2025-01-01')"
    )
    conn.execute(
        "INSERT INTO runs (run_id, model, mode, config, status, progress, created_at)"
        " VALUES ('r-old', 'resnet18', 'features', '{\"seed\": 3}', 'done', 1, '2025-01-01')"
    )
    conn.execute(
        "INSERT INTO studies (study_id, name, created_at, arms) VALUES (1, 'old', '2025', '[\"unaided\"]')"
    )
    conn.execute("INSERT INTO study_cases VALUES (1, 'P1')")
    conn.execute(
        "INSERT INTO readers (reader_id, study_id, display_name, code_salt, code_hash, created_at)"
        " VALUES (1, 1, 'Dr Old', x'00', x'00', '2025')"
    )
    conn.execute(
        "INSERT INTO reads (study_id, reader_id, case_id, arm, label, submitted_at)"
        " VALUES (1, 1, 'P1', 'unaided', 'AC', '2025-01-02T10:00:00.000+00:00')"
    )
    conn.close()


def test_release_1_database_migrates_and_keeps_its_data(db_path):
    _build_release_1(db_path)
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "read_audit" not in {r[0] for r in raw.execute("SELECT name FROM sqlite_master")}
    raw.close()

    with db.connect(db_path) as conn:
        assert schema_version(conn) == SCHEMA_VERSION == len(MIGRATION_NAMES) >= 2
        assert "read_audit" in conn.table_names()
        assert "revision" in conn["reads"].columns_dict
        assert "comparison_id" in conn["runs"].columns_dict
        assert "image_predictions" in conn.table_names()  # v3
        assert db.image_predictions_frame(conn, ["r-old"]).empty
        cases = db.cases_frame(conn)
        assert cases[
            ["case_id", "cohort", "patient_id", "display_id", "label"]
        ].values.tolist() == [["internal/P1", "internal", "P1", "C-00AA11", "ASC"]]
        assert db.get_run(conn, "r-old")["config"] == {"seed": 3}
        reads = db.reads_frame(conn, 1)
        assert reads[["display_name", "label", "revision", "truth"]].values.tolist() == [
            ["Dr Old", "AC", 1, "ASC"]
        ]
        audit = db.audit_frame(conn, 1)  # pre-v2 reads get a baseline history row
        assert audit[["action", "source"]].values.tolist() == [["insert", "migration"]]
        # and the migrated database takes new writes through the current code
        db.submit_read(
            conn, study_id=1, reader_id=1, case_id="internal/P1", arm="unaided", label="SCC",
            confidences=None, shown_at=None,
        )  # fmt: skip
        assert db.audit_frame(conn, 1)["action"].tolist() == ["insert", "update"]


def test_connect_twice_applies_each_migration_once(db_path):
    db.connect(db_path).close()
    with db.connect(db_path) as conn:
        applied = [r["name"] for r in conn.query("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == list(MIGRATION_NAMES)


def test_connect_configures_wal_foreign_keys_and_busy_timeout(db_path):
    with db.connect(db_path) as conn:
        assert conn.journal_mode == "wal"
        assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 5000
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute("INSERT INTO images (image_id, case_id) VALUES ('x', 'no such case')")


def test_a_newer_database_is_refused_with_a_clear_error(db_path):
    db.connect(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(ValueError, match=f"version {SCHEMA_VERSION + 1} is newer"):
        db.connect(db_path)


def test_db_path_prefers_argument_then_environment_then_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CERVIXSCOPE_DB", raising=False)
    assert db.resolve_db_path() == tmp_path / "cervixscope.db"
    monkeypatch.setenv("CERVIXSCOPE_DB", str(tmp_path / "env.db"))
    assert db.resolve_db_path() == tmp_path / "env.db"
    assert db.resolve_db_path("given.db") == tmp_path / "given.db"
    db.connect().close()
    assert (tmp_path / "env.db").is_file()


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*nowhere does not exist"):
        db.connect(tmp_path / "nowhere" / "x.db")
