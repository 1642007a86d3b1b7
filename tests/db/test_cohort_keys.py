"""A patient is (cohort, patient ID): cohorts that reuse IDs stay apart, label changes by
re-ingestion are refused unless asked for (then audited), and a database written by the previous
schema (v9, cases keyed by patient ID alone) keeps every case, read and run when it is opened."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

import db
from db.schema import MIGRATION_NAMES, migrate

V9 = MIGRATION_NAMES.index("v9_cohorts_validations") + 1


def _predict(conn, run_id, case_id, p_scc):
    db.save_predictions(
        conn, run_id, 0, [{"case_id": case_id, "p_SCC": p_scc, "p_AC": 1 - p_scc, "p_ASC": 0.0}]
    )


def _run(conn) -> str:
    return db.create_run(conn, model="cnn", mode="features", config={}, seed=0, data_hash="h")


def test_two_cohorts_sharing_patient_ids_keep_their_own_labels_sites_and_predictions(conn):
    db.upsert_cases(conn, [{"patient_id": "P0001", "label": "SCC", "site": "Leeds"}])
    db.upsert_cases(
        conn, [{"patient_id": "P0001", "cohort": "external", "label": "AC", "site": "Oslo"}]
    )
    run_id = _run(conn)
    _predict(conn, run_id, "internal/P0001", 0.9)
    _predict(conn, run_id, "external/P0001", 0.2)
    cases = db.cases_frame(conn).set_index("case_id")
    assert cases[["cohort", "patient_id", "label", "site"]].to_dict("index") == {
        "external/P0001": {"cohort": "external", "patient_id": "P0001", "label": "AC",
                           "site": "Oslo"},
        "internal/P0001": {"cohort": "internal", "patient_id": "P0001", "label": "SCC",
                           "site": "Leeds"},
    }  # fmt: skip
    assert cases.loc["internal/P0001", "display_id"] != cases.loc["external/P0001", "display_id"]
    preds = db.predictions_frame(conn, run_id).set_index("case_id")
    assert preds["p_SCC"].to_dict() == {"external/P0001": 0.2, "internal/P0001": 0.9}
    assert preds["label"].to_dict() == {"external/P0001": "AC", "internal/P0001": "SCC"}


def test_a_label_change_is_refused_naming_the_case_both_labels_and_its_runs(conn):
    db.upsert_cases(
        conn, [{"patient_id": "P1", "label": "SCC"}, {"patient_id": "P2", "label": "AC"}]
    )
    run_id = _run(conn)
    _predict(conn, run_id, "internal/P1", 0.7)
    relabel = [{"patient_id": "P1", "label": "ASC"}, {"patient_id": "P3", "label": "AC"}]
    assert db.label_changes(conn, relabel) == [
        {"case_id": "internal/P1", "old": "SCC", "new": "ASC", "runs": [run_id]}
    ]
    with pytest.raises(db.LabelChangeRefused) as refused:
        db.upsert_cases(conn, relabel)
    text = str(refused.value)
    assert f"case internal/P1: stored label SCC, new label ASC; used by run(s) {run_id}" in text
    assert "--allow-label-change" in text
    assert db.cases_frame(conn)["case_id"].tolist() == ["internal/P1", "internal/P2"]  # no P3
    assert db.case_audit_frame(conn).empty

    db.upsert_cases(conn, relabel, allow_label_change=True)
    labels = db.cases_frame(conn).set_index("case_id")["label"].to_dict()
    assert labels == {"internal/P1": "ASC", "internal/P2": "AC", "internal/P3": "AC"}
    audit = db.case_audit_frame(conn)
    assert audit[["case_id", "field", "old", "new"]].values.tolist() == [
        ["internal/P1", "label", "SCC", "ASC"]
    ]
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.conn.execute("DELETE FROM case_audit")


def test_a_changed_site_is_kept_and_audited(conn):
    db.upsert_cases(conn, [{"patient_id": "P1", "label": "SCC", "site": "A"}])
    db.upsert_cases(conn, [{"patient_id": "P1", "label": "SCC", "site": "B"}])
    assert db.cases_frame(conn)["site"].tolist() == ["B"]
    assert db.case_audit_frame(conn)[["field", "old", "new"]].values.tolist() == [
        ["site", "A", "B"]
    ]


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ({"case_id": "P1", "label": "SCC"}, "not a case key '<cohort>/<patient_id>'"),
        ({"patient_id": "P1", "cohort": "a/b", "label": "SCC"}, "without '/'"),
        ({"patient_id": "P1", "cohort": "x", "case_id": "y/P1"}, "its key would be 'x/P1'"),
        ({"case_id": "x/P1", "cohort": "y"}, "is not in cohort 'y'"),
    ],
    ids=["bare-id", "slash-cohort", "key-mismatch", "cohort-mismatch"],
)
def test_a_case_names_its_cohort_and_patient_consistently(conn, row, match):
    with pytest.raises(ValueError, match=match):
        db.upsert_cases(conn, [row])
    assert db.cases_frame(conn).empty


def test_the_database_itself_refuses_a_key_that_is_not_cohort_slash_patient(conn):
    with pytest.raises(sqlite3.IntegrityError, match="cohort>/<patient_id"):
        conn.conn.execute(
            "INSERT INTO cases (case_id, patient_id, cohort, display_id, created_at, updated_at)"
            " VALUES ('internal/P1', 'P2', 'internal', 'C-BBBBBB', 'x', 'x')"
        )
    db.upsert_cases(conn, [{"patient_id": "P1", "label": "SCC"}])
    with pytest.raises(sqlite3.IntegrityError, match="keeps its cohort"):
        conn.conn.execute("UPDATE cases SET cohort = 'external'")


def _v9_database(path) -> None:
    """A database as the previous release (schema v9) left it, keyed by patient ID alone."""
    conn = sqlite_utils.Database(sqlite3.connect(str(path), isolation_level=None))
    assert migrate(conn, target=V9) == V9
    rows = {
        "cases": [
            ("P1", "C-BBBBB1", "SCC", "internal", "Leeds"),
            ("P2", "C-BBBBB2", "AC", "internal", None),
            ("X9", "C-BBBBB3", "ASC", "external", "Oslo"),
        ],
    }
    for case_id, display, label, cohort, site in rows["cases"]:
        conn.execute(
            "INSERT INTO cases (case_id, display_id, label, cohort, site, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, '2026-01-01', '2026-01-01')",
            (case_id, display, label, cohort, site),
        )
    script = [
        "INSERT INTO images (image_id, case_id, source_path, frame) VALUES"
        " ('P1:P1/a.dcm#0', 'P1', '/d/P1/a.dcm', 0), ('P2:P2/a.dcm#0', 'P2', '/d/P2/a.dcm', 0)",
        "INSERT INTO runs (run_id, model, mode, config, status, progress, created_at)"
        " VALUES ('r-old', 'cnn', 'features', '{}', 'done', 1, '2026-01-01')",
        "INSERT INTO predictions VALUES ('r-old', 'P1', 0, 0.8, 0.1, 0.1),"
        " ('r-old', 'P2', 1, 0.2, 0.7, 0.1)",
        "INSERT INTO image_predictions VALUES ('r-old', 'P1:P1/a.dcm#0', 'P1', 0, 0.8, 0.1, 0.1)",
        "INSERT INTO studies (study_id, name, created_at, arms) VALUES (1, 'old', '2026',"
        " '[\"unaided\"]')",
        "INSERT INTO study_cases VALUES (1, 'P1'), (1, 'P2')",
        "INSERT INTO readers (reader_id, study_id, display_name, code_salt, code_hash, created_at)"
        " VALUES (1, 1, 'Dr Old', x'00', x'00', '2026')",
        "INSERT INTO assignments VALUES (1, 1, 'unaided', 'P2', 1), (1, 1, 'unaided', 'P1', 2)",
        "INSERT INTO reads (study_id, reader_id, case_id, arm, label, submitted_at) VALUES"
        " (1, 1, 'P2', 'unaided', 'AC', '2026-01-02T10:00:00.000+00:00')",
        "INSERT INTO read_audit (read_id, study_id, reader_id, case_id, arm, action, new, at)"
        " VALUES (1, 1, 1, 'P2', 'unaided', 'insert', '{\"label\": \"AC\"}', '2026-01-02')",
        "INSERT INTO validations (validation_id, run_id, cohort, model, created_at, n_cases)"
        " VALUES (1, 'r-old', 'external', 'ensemble', '2026', 1)",
        "INSERT INTO validation_predictions VALUES (1, 'X9', 2, 2, 0.1, 0.1, 0.8, 'Oslo')",
    ]
    for statement in script:
        conn.execute(statement)
    conn.close()


def test_a_v9_database_keeps_every_case_read_and_run_under_cohort_keys(db_path):
    _v9_database(db_path)
    with db.connect(db_path) as conn:
        cases = db.cases_frame(conn)
        assert cases[["case_id", "cohort", "patient_id", "display_id", "label"]].values.tolist() == [
            ["external/X9", "external", "X9", "C-BBBBB3", "ASC"],
            ["internal/P1", "internal", "P1", "C-BBBBB1", "SCC"],
            ["internal/P2", "internal", "P2", "C-BBBBB2", "AC"],
        ]  # fmt: skip
        assert cases["site"].fillna("").tolist() == ["Oslo", "Leeds", ""]
        assert db.images_frame(conn)[["image_id", "case_id"]].values.tolist() == [
            ["internal/P1:P1/a.dcm#0", "internal/P1"], ["internal/P2:P2/a.dcm#0", "internal/P2"],
        ]  # fmt: skip
        preds = db.predictions_frame(conn, "r-old")
        assert preds[["case_id", "fold", "p_SCC", "label"]].values.tolist() == [
            ["internal/P1", 0, 0.8, "SCC"], ["internal/P2", 1, 0.2, "AC"],
        ]  # fmt: skip
        images = db.image_predictions_frame(conn, "r-old")
        assert images[["image_id", "case_id"]].values.tolist() == [
            ["internal/P1:P1/a.dcm#0", "internal/P1"]
        ]
        assert db.get_run(conn, "r-old")["status"] == "done"
        study = db.get_study(conn, 1)
        assert study["case_ids"] == ["internal/P1", "internal/P2"]
        assert db.worklist(conn, 1, 1, "unaided")["case_id"].tolist() == [
            "internal/P2",
            "internal/P1",
        ]
        reads = db.reads_frame(conn, 1)
        assert reads[["case_id", "label", "truth"]].values.tolist() == [["internal/P2", "AC", "AC"]]
        assert db.audit_frame(conn, 1)["case_id"].tolist() == ["internal/P2"]
        (validated,) = conn.conn.execute("SELECT case_id FROM validation_predictions").fetchone()
        assert validated == "external/X9"
        assert conn.conn.execute("PRAGMA foreign_key_check").fetchall() == []
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):  # the trigger is back
            conn.conn.execute("UPDATE read_audit SET arm = 'aided'")
        # and the migrated file takes new writes through the current code
        db.submit_read(
            conn, study_id=1, reader_id=1, case_id="internal/P1", arm="unaided", label="SCC",
            confidences=None, shown_at=None,
        )  # fmt: skip
        assert len(db.reads_frame(conn, 1)) == 2


def test_a_failing_migration_leaves_the_old_database_as_it_was(db_path):
    _v9_database(db_path)
    raw = sqlite3.connect(db_path)
    raw.execute("UPDATE cases SET cohort = 'bad/name' WHERE case_id = 'X9'")
    raw.commit()
    raw.close()
    with pytest.raises(ValueError, match="cohort name 'bad/name' contains '/'"):
        db.connect(db_path)
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == V9
    assert [r[0] for r in raw.execute("SELECT case_id FROM cases ORDER BY case_id")] == [
        "P1", "P2", "X9"
    ]  # fmt: skip
    raw.close()
