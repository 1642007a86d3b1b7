"""Cases, images, ingestions, runs, folds and predictions, checked by reopening the file."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import db


def test_cases_get_a_stable_random_display_id_that_hides_the_label(db_path):
    with db.connect(db_path) as conn:
        db.upsert_cases(
            conn,
            [{"case_id": f"internal/P{i}", "label": label, "synthetic": True}
             for i, label in enumerate(["SCC", "ac", np.int64(2), 0])],
        )  # fmt: skip
        first = db.cases_frame(conn).set_index("case_id")
        changed = [{"case_id": "internal/P0", "label": "AC", "orientation": "sagittal"}]
        with pytest.raises(db.LabelChangeRefused, match="case internal/P0: stored label SCC"):
            db.upsert_cases(conn, changed)
        db.upsert_cases(conn, changed, allow_label_change=True)
    with db.connect(db_path) as conn:
        again = db.cases_frame(conn).set_index("case_id")
    assert first["label"].to_dict() == {
        "internal/P0": "SCC",
        "internal/P1": "AC",
        "internal/P2": "ASC",
        "internal/P3": "SCC",
    }
    assert all(re.fullmatch(r"C-[2-9B-Z]{6}", d) for d in first["display_id"])
    assert first["display_id"].is_unique
    assert again["display_id"].to_dict() == first["display_id"].to_dict()  # kept on re-upsert
    assert (
        again.loc["internal/P0", "label"] == "AC"
        and again.loc["internal/P0", "orientation"] == "sagittal"
    )
    assert again.loc["internal/P1", "synthetic"] == 1
    with db.connect(db_path) as conn:
        audit = db.case_audit_frame(conn)
    assert audit[["case_id", "field", "old", "new"]].values.tolist() == [
        ["internal/P0", "label", "SCC", "AC"]
    ]
    # nothing in the display ID reveals the label or the pseudonym
    for case_id, row in again.iterrows():
        assert case_id not in row["display_id"] and row["label"] not in row["display_id"][2:]


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        (
            [{"case_id": "internal/P1", "label": "CIN"}],
            "case internal/P1: label 'CIN' is not one of SCC, AC, ASC",
        ),
        ([{"case_id": "internal/P1", "label": 3}], "not a class index 0..2"),
        ([{"label": "SCC"}], "give patient_id"),
        ([{"case_id": "internal/P1", "colour": "red"}], "unknown field.*colour.*allowed: case_id"),
    ],
    ids=["label", "index", "missing-id", "unknown-field"],
)
def test_bad_cases_are_refused(conn, rows, match):
    with pytest.raises(ValueError, match=match):
        db.upsert_cases(conn, rows)
    assert db.cases_frame(conn).empty


def test_images_and_ingestion_round_trip(db_path):
    with db.connect(db_path) as conn:
        ingestion_id = db.record_ingestion(
            conn, data_dir="/data", manifest="/data/manifest.csv", crop_cache="/data/.cache",
            data_hash="abc", crop_size=100,
            issues=[{"row": 17, "path": "internal/P0042.dcm", "problem": "ROI outside image"},
                    {"row": None, "path": None, "problem": "3 files not in manifest"}],
        )  # fmt: skip
        db.upsert_cases(
            conn, [{"case_id": "internal/P1", "label": "AC"}], ingestion_id=ingestion_id
        )
        image = {"image_id": "internal/P1:a.dcm#0", "case_id": "internal/P1", "source_path": "a.dcm",
                 "frame": np.int64(0), "roi_x0": 10, "roi_y0": 12, "roi_x1": 60, "roi_y1": 70,
                 "crop_cache": "k1", "crop_index": 0, "rows": 256, "cols": 256}  # fmt: skip
        db.upsert_images(conn, pd.DataFrame([image]))
        db.upsert_images(conn, [{**image, "crop_index": 5}])  # re-ingest updates in place
        with pytest.raises(db.CaseNotFound, match="unknown case.*P404"):
            db.upsert_images(conn, [{**image, "image_id": "x", "case_id": "internal/P404"}])
    with db.connect(db_path) as conn:
        images = db.images_frame(conn, "internal/P1")
        assert len(images) == 1 and len(db.images_frame(conn)) == 1
        assert images.loc[0, "crop_index"] == 5 and images.loc[0, "label"] == "AC"
        assert images.loc[0, ["roi_x0", "roi_y0", "roi_x1", "roi_y1"]].tolist() == [10, 12, 60, 70]
        latest = db.latest_ingestion(conn)
        assert latest["ingestion_id"] == ingestion_id and latest["n_issues"] == 2
        assert latest["data_hash"] == "abc" and latest["crop_size"] == 100
        issues = db.ingestion_issues_frame(conn, ingestion_id)
        assert issues["problem"].tolist() == ["ROI outside image", "3 files not in manifest"]
        assert db.cases_frame(conn).loc[0, "ingestion_id"] == ingestion_id
        with pytest.raises(db.CaseNotFound, match="'nope'"):
            db.images_frame(conn, "nope")


def _run(conn, **overrides):
    fields = dict(
        model="resnet18", mode="features", config={"lr": np.float32(0.5), "folds": [0, 1]},
        seed=7, data_hash="h", device="cpu", weights="imagenet", code_version="abc123",
        packages={"torch": "2.14.1"},
    )  # fmt: skip
    fields.update(overrides)
    return db.create_run(conn, **fields)


def test_run_lifecycle_is_recorded(db_path):
    with db.connect(db_path) as conn:
        run_id = _run(conn, comparison_id="cmp1")
        assert re.fullmatch(r"r\d{8}T\d{6}-[0-9a-f]{6}", run_id)
        assert db.get_run(conn, run_id)["status"] == "queued"
        db.start_run(conn, run_id)
        db.report_progress(conn, run_id, 0.25, "fold 3/10")
        db.add_run_warning(conn, run_id, "ImageNet weights unavailable, random init")
        db.finish_run(conn, run_id, status="done", timings={"total": 12.5}, message="fold 3/10")
    with db.connect(db_path) as conn:
        run = db.get_run(conn, run_id)
        frame = db.runs_frame(conn)
    assert run["config"] == {"lr": 0.5, "folds": [0, 1]} and run["packages"]["torch"] == "2.14.1"
    assert (run["status"], run["progress"], run["message"]) == ("done", 1.0, "fold 3/10")
    assert run["started_at"] <= run["ended_at"] and run["timings"] == {"total": 12.5}
    assert run["warnings"] == ["ImageNet weights unavailable, random init"]
    assert frame.loc[0, "n_warnings"] == 1 and frame.loc[0, "comparison_id"] == "cmp1"
    # decoded once, in db: the frame's JSON columns are what get_run returns
    assert frame.loc[0, "warnings"] == run["warnings"] and frame.loc[0, "timings"] == run["timings"]
    assert frame.loc[0, "config"] == run["config"]


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"status": "exploded"}, ValueError, "'exploded' is not one of queued, running"),
        ({"progress": 1.5}, ValueError, r"progress 1.5 is not in \[0, 1\]"),
        ({"colour": "red"}, ValueError, "unknown field.*colour.*allowed: status"),
        ({"started_at": "soon"}, ValueError, "started_at 'soon' is not an ISO 8601"),
    ],
    ids=["status", "progress", "field", "time"],
)
def test_bad_run_updates_are_refused(conn, fields, error, match):
    run_id = _run(conn)
    with pytest.raises(error, match=match):
        db.update_run(conn, run_id, **fields)
    assert db.get_run(conn, run_id)["status"] == "queued"


def test_unknown_runs_and_taken_run_ids_are_named(conn):
    with pytest.raises(db.RunNotFound, match="run 'r-404'"):
        db.get_run(conn, "r-404")
    with pytest.raises(db.RunNotFound):
        db.update_run(conn, "r-404", status="running")
    with pytest.raises(db.RunNotFound):
        db.save_fold(conn, "r-404", 0, n_train=1, n_test=1, seconds=0.1, metrics={})
    _run(conn, run_id="r-mine")
    with pytest.raises(ValueError, match="run 'r-mine' already exists"):
        _run(conn, run_id="r-mine")


def test_folds_and_predictions_are_idempotent_per_run(db_path):
    with db.connect(db_path) as conn:
        db.upsert_cases(conn, [{"case_id": c, "label": lab} for c, lab in
                               [("internal/P1", "SCC"), ("internal/P2", "ASC"), ("internal/P3", "AC")]])  # fmt: skip
        run_id = _run(conn)
        for fold in (0, 1):
            for _attempt in range(2):  # a resumed job saves the same fold twice
                db.save_fold(conn, run_id, fold, n_train=8, n_test=2, seconds=1.5 + fold,
                             metrics={"accuracy": 0.5 + fold / 4, "cm": [[1, 0], [0, 1]]})  # fmt: skip
        rows = [{"case_id": "internal/P1", "p_SCC": 0.7, "p_AC": 0.2, "p_ASC": 0.1},
                {"case_id": "internal/P2", "p_SCC": 0.1, "p_AC": 0.1, "p_ASC": 0.8}]  # fmt: skip
        db.save_predictions(conn, run_id, 0, rows)
        db.save_predictions(conn, run_id, 1, pd.DataFrame(rows[:1]).assign(p_SCC=0.6, p_AC=0.3))
        with pytest.raises(db.CaseNotFound, match="unknown case.*P9"):
            db.save_predictions(conn, run_id, 0, [{**rows[0], "case_id": "internal/P9"}])
        with pytest.raises(ValueError, match=r"p_ASC=1.2 is not in \[0, 1\]"):
            db.save_predictions(conn, run_id, 0, [{**rows[0], "p_ASC": 1.2}])
    with db.connect(db_path) as conn:
        folds = db.folds_frame(conn, [run_id])
        preds = db.predictions_frame(conn, run_id)
        runs = db.runs_frame(conn)
        assert db.predictions_frame(conn, []).empty
    assert folds[["fold", "seconds", "accuracy"]].values.tolist() == [[0, 1.5, 0.5], [1, 2.5, 0.75]]
    assert folds.loc[0, "metrics"]["cm"] == [[1, 0], [0, 1]]
    assert preds[["case_id", "fold", "p_SCC", "p_AC", "p_ASC", "label"]].values.tolist() == [
        ["internal/P1", 1, 0.6, 0.3, 0.1, "SCC"], ["internal/P2", 0, 0.1, 0.1, 0.8, "ASC"],
    ]  # fmt: skip
    assert runs.loc[0, ["n_folds", "n_predictions"]].tolist() == [2, 2]
    assert runs.loc[0, "config"]["folds"] == [0, 1] and runs.loc[0, "warnings"] == []
    assert runs.loc[0, "timings"] is None  # not finished: no timings, whatever pandas makes of NULL


def test_image_predictions_are_idempotent_per_run_and_image(db_path):
    with db.connect(db_path) as conn:
        db.upsert_cases(
            conn,
            [
                {"case_id": "internal/P1", "label": "SCC"},
                {"case_id": "internal/P2", "label": "ASC"},
            ],
        )
        run_id = _run(conn)
        # image ids need not be in the images table: a CropSet may come from elsewhere
        rows = [{"image_id": "internal/P1:a#0", "case_id": "internal/P1", "p_SCC": 0.7, "p_AC": 0.2, "p_ASC": 0.1},
                {"image_id": "internal/P1:a#1", "case_id": "internal/P1", "p_SCC": 0.5, "p_AC": 0.4, "p_ASC": 0.1},
                {"image_id": "internal/P2:b#0", "case_id": "internal/P2", "p_SCC": 0.1, "p_AC": 0.1, "p_ASC": 0.8}]  # fmt: skip
        for _attempt in range(2):  # a resumed job saves the same fold twice
            assert db.save_image_predictions(conn, run_id, 0, rows) == 3
        db.save_image_predictions(
            conn, run_id, 1, pd.DataFrame(rows[:1]).assign(p_SCC=0.6, p_AC=0.3)
        )
        with pytest.raises(db.CaseNotFound, match="unknown case.*P9"):
            db.save_image_predictions(conn, run_id, 0, [{**rows[0], "case_id": "internal/P9"}])
        with pytest.raises(
            ValueError, match=r"row 0 \(internal/P1:a#0\).*p_ASC=1.2 is not in \[0, 1\]"
        ):
            db.save_image_predictions(conn, run_id, 0, [{**rows[0], "p_ASC": 1.2}])
        with pytest.raises(ValueError, match="row 0: missing image_id"):
            db.save_image_predictions(conn, run_id, 0, [{**rows[0], "image_id": ""}])
        with pytest.raises(db.RunNotFound):
            db.save_image_predictions(conn, "r-404", 0, rows)
    with db.connect(db_path) as conn:  # reopened: the image predictions were committed
        got = db.image_predictions_frame(conn, [run_id])
        display = db.cases_frame(conn).set_index("case_id")["display_id"]
        assert db.image_predictions_frame(conn, []).empty
    assert got[["image_id", "case_id", "fold", "p_SCC", "p_AC", "p_ASC", "label"]].values.tolist() == [
        ["internal/P1:a#0", "internal/P1", 1, 0.6, 0.3, 0.1, "SCC"],
        ["internal/P1:a#1", "internal/P1", 0, 0.5, 0.4, 0.1, "SCC"],
        ["internal/P2:b#0", "internal/P2", 0, 0.1, 0.1, 0.8, "ASC"],
    ]  # fmt: skip
    assert (got["run_id"] == run_id).all() and (got["model"] == "resnet18").all()
    assert got["display_id"].tolist() == display[got["case_id"]].tolist()


def test_case_probabilities_gives_one_case_without_its_label(db_path):
    with db.connect(db_path) as conn:
        db.upsert_cases(
            conn,
            [{"case_id": "internal/P1", "label": "SCC"}, {"case_id": "internal/P2", "label": "AC"}],
        )
        run_id = _run(conn)
        db.save_predictions(
            conn, run_id, 0, [{"case_id": "internal/P1", "p_SCC": 0.7, "p_AC": 0.2, "p_ASC": 0.1}]
        )
    with db.connect(db_path) as conn:  # reopened: the predictions were committed
        assert db.case_probabilities(conn, run_id, "internal/P1") == {
            "SCC": 0.7,
            "AC": 0.2,
            "ASC": 0.1,
        }
        assert db.case_probabilities(conn, run_id, "internal/P2") is None  # no prediction for it
        with pytest.raises(db.RunNotFound, match="run 'nope' is not in the database"):
            db.case_probabilities(conn, "nope", "internal/P1")


def test_a_queued_run_gets_its_provenance_once_and_is_failed_only_while_queued(db_path):
    with db.connect(db_path) as conn:
        queued = db.create_run(
            conn, model="cnn", mode="features", config={"seed": 1}, seed=1, message="queued"
        )
        assert db.get_run(conn, queued)["message"] == "queued"
        db.record_provenance(
            conn, queued, config={"seed": 1, "lr": 0.1}, data_hash="h", device="cpu",
            weights="none", code_version="abc", packages={"torch": "2"},
        )  # fmt: skip
        db.start_run(conn, queued)
        with pytest.raises(ValueError, match="data_hash can only be set while the run is queued"):
            db.update_run(conn, queued, data_hash="other")
        assert db.fail_queued_run(conn, queued, "too late") is False  # running: left alone
        assert db.fail_queued_run(conn, "r-404", "unknown") is False
        other = db.create_run(conn, model="cnn", mode="features", config={}, seed=0)
        assert db.fail_queued_run(conn, other, "no manifest") is True
        db.fail_run(conn, queued, "out of memory")
    with db.connect(db_path) as conn:  # reopened: the writes were committed
        first, second = db.get_run(conn, queued), db.get_run(conn, other)
    assert (first["status"], first["message"], first["data_hash"]) == (
        "failed",
        "out of memory",
        "h",
    )
    assert first["config"] == {"seed": 1, "lr": 0.1} and first["packages"] == {"torch": "2"}
    assert (second["status"], second["message"]) == ("failed", "no manifest")
    assert first["ended_at"] and second["ended_at"]


def test_a_partial_run_keeps_its_progress_and_says_what_is_left(conn):
    run_id = _run(conn)
    db.start_run(conn, run_id)
    db.finish_run(conn, run_id, status="partial", progress=0.4, message="folds done: [0, 1]")
    run = db.get_run(conn, run_id)
    assert (run["status"], run["progress"], run["message"]) == (
        "partial",
        0.4,
        "folds done: [0, 1]",
    )
    with pytest.raises(ValueError, match="status 'failed' is not done or partial"):
        db.finish_run(conn, run_id, status="failed")


@pytest.mark.parametrize(
    ("config", "data_hash", "match"),
    [
        ({"lr": 0.1, "folds": [0, 1]}, "h", r"other settings \(lr\): merge only folds"),
        ({"lr": 0.5, "folds": [2]}, "h2", "used data h, this data is h2"),
    ],
    ids=["settings", "data"],
)
def test_merging_into_a_run_needs_its_settings_and_data(conn, config, data_hash, match):
    run_id = _run(conn)
    with pytest.raises(ValueError, match=match):
        db.check_run_merge(conn, run_id, config=config, data_hash=data_hash, per_job=["folds"])


def test_merging_accepts_other_per_job_settings_and_a_new_run(conn):
    run_id = _run(conn)
    same = {"lr": 0.5, "folds": [2], "new_setting": 1}  # settings the run lacks are not compared
    run = db.check_run_merge(conn, run_id, config=same, data_hash="h", per_job=["folds"])
    assert run["run_id"] == run_id and run["config"]["lr"] == 0.5
    assert db.check_run_merge(conn, "r-new", config=same, data_hash="h") is None


def test_runs_frame_decodes_json_beside_runs_without_it(conn):
    """pandas reads NULL among text as NaN: the frame still says None, as get_run does."""
    done, queued = _run(conn), _run(conn)
    db.finish_run(conn, done, status="done", timings={"total": 1.5})
    db.add_run_warning(conn, done, "first")
    db.add_run_warning(conn, done, "second")
    frame = db.runs_frame(conn).set_index("run_id")
    assert frame.loc[done, "timings"] == {"total": 1.5} and frame.loc[queued, "timings"] is None
    assert (
        frame.loc[done, "warnings"] == ["first", "second"] and frame.loc[queued, "warnings"] == []
    )
    assert frame.loc[queued, "config"] == db.get_run(conn, queued)["config"]
