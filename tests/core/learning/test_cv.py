"""CV engine: patient-grouped folds, runs and predictions in a real database, seeds, fold merging."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import db
from core.data.dataset import mean_by_case
from core.data.labels import CLASSES
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.learning.folds import make_folds
from tests.core.cropsets import database_with_cases, synthetic_crops

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def crops():
    return synthetic_crops((12, 8, 6), images_per_case=2, size=32)


def features_cfg(**changes):
    return RunConfig(**{"weights": "none", "n_folds": 3, "crop_size": 32, **changes})


def run(crops, cfg, tmp_path, conn=None, **kwargs):
    conn = conn or database_with_cases(tmp_path / "t.db", crops)
    run_id = run_cv(
        crops, cfg, conn=conn, runs_dir=tmp_path / "runs", cache_dir=tmp_path / "cache", **kwargs
    )
    return conn, run_id


def test_folds_never_split_a_patient_and_every_fold_has_every_class():
    crops = synthetic_crops((25, 12, 10), images_per_case=3, size=8)
    folds = make_folds(crops.case_ids, crops.labels, n_splits=10, seed=0)
    per_case = pd.DataFrame({"case": crops.case_ids, "fold": folds, "label": crops.labels})
    assert (per_case.groupby("case")["fold"].nunique() == 1).all()
    assert set(folds) == set(range(10))
    for _, group in per_case.drop_duplicates("case").groupby("fold"):
        assert set(group["label"]) == {0, 1, 2}
    # ASC (10 cases) spreads one per fold, exactly.
    asc = per_case.drop_duplicates("case").query("label == 2")
    assert sorted(asc["fold"]) == list(range(10))


def test_folds_do_not_depend_on_input_order_and_do_depend_on_the_seed():
    crops = synthetic_crops((20, 10, 6), images_per_case=2, size=8)
    folds = make_folds(crops.case_ids, crops.labels, n_splits=5, seed=3)
    order = np.random.default_rng(1).permutation(crops.n_images)
    shuffled = make_folds(crops.case_ids[order], crops.labels[order], n_splits=5, seed=3)
    np.testing.assert_array_equal(shuffled, folds[order])
    other = make_folds(crops.case_ids, crops.labels, n_splits=5, seed=4)
    assert not np.array_equal(other, folds)


def test_too_many_folds_for_the_smallest_class_is_a_clear_error():
    crops = synthetic_crops((20, 10, 6), images_per_case=1, size=8)
    with pytest.raises(ValueError, match=r"n_splits=10 but class ASC has only 6 cases"):
        make_folds(crops.case_ids, crops.labels, n_splits=10, seed=0)


def test_features_run_lands_in_the_database_with_one_prediction_per_case(
    crops, tmp_path, monkeypatch
):
    monkeypatch.setenv("CERVIXSCOPE_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = features_cfg(weights="auto")
    conn, run_id = run(crops, cfg, tmp_path)

    # Reopen the file: the commit happened.
    conn2 = db.connect(tmp_path / "t.db")
    rec = db.get_run(conn2, run_id)
    assert rec["status"] == "done"
    assert rec["model"] == "resnet18" and rec["mode"] == "features" and rec["seed"] == 0
    assert rec["data_hash"] == crops.data_hash()
    assert rec["device"] == "cpu"
    assert set(rec["packages"]) >= {"torch", "torchvision", "numpy", "scikit-learn"}
    assert rec["code_version"]
    assert rec["config"]["n_folds"] == 3
    assert rec["config"]["extra"]["model_info"]["channel_policy"] == "sum_rgb"
    assert {"embed", "folds", "total"} <= set(rec["timings"])
    assert rec["warnings"] == [
        "ImageNet weights unavailable (offline): resnet18 uses random initialisation"
    ]

    oof = db.predictions_frame(conn2, run_id)
    cases, labels = crops.cases()
    assert sorted(oof["case_id"]) == sorted(cases.tolist())
    np.testing.assert_allclose(oof[[f"p_{c}" for c in CLASSES]].sum(axis=1), 1.0, atol=1e-6)
    expected_folds = make_folds(cases, labels, n_splits=3, seed=0)
    got = oof.set_index("case_id").loc[cases, "fold"].to_numpy()
    np.testing.assert_array_equal(got, expected_folds)
    assert len(db.folds_frame(conn2, run_id)) == 3

    run_dir = tmp_path / "runs" / run_id
    assert json.loads((run_dir / "config.json").read_text())["model"] == "resnet18"
    assert len(pd.read_csv(run_dir / "oof_predictions.csv")) == len(cases)
    assert (run_dir / "model.pt").exists()
    # This data has signal: the engine must find it.
    assert (
        oof[[f"p_{c}" for c in CLASSES]].to_numpy().argmax(1)
        == oof["label"].map({c: i for i, c in enumerate(CLASSES)})
    ).mean() > 0.8


@pytest.mark.parametrize(
    "cfg",
    [
        features_cfg(),
        RunConfig(model="cnn", mode="finetune", epochs=1, n_folds=3, crop_size=32, batch_size=16),
    ],
    ids=["features", "finetune-cnn"],
)
def test_every_image_gets_one_out_of_fold_prediction_and_they_average_to_the_case(
    crops, tmp_path, cfg
):
    _, run_id = run(crops, cfg, tmp_path, final_model=False)
    with db.connect(tmp_path / "t.db") as conn:  # reopened: committed
        images = db.image_predictions_frame(conn, run_id)
        cases = db.predictions_frame(conn, run_id).set_index("case_id")
    assert sorted(images["image_id"]) == sorted(crops.image_ids.tolist())  # each exactly once
    truth = pd.Series(crops.case_ids, index=crops.image_ids)
    assert (images["case_id"].to_numpy() == truth[images["image_id"]].to_numpy()).all()
    # an image's fold is its case's fold: out of fold
    assert (images["fold"].to_numpy() == cases.loc[images["case_id"], "fold"].to_numpy()).all()
    probs = [f"p_{c}" for c in CLASSES]
    mean = images.groupby("case_id")[probs].mean()
    np.testing.assert_allclose(mean.to_numpy(), cases.loc[mean.index, probs].to_numpy(), atol=1e-12)
    assert (images["label"].to_numpy() == cases.loc[images["case_id"], "label"].to_numpy()).all()


def test_case_prediction_is_the_mean_of_its_images(crops):
    probs = np.array([[0.2, 0.3, 0.5], [0.4, 0.5, 0.1], [1.0, 0.0, 0.0]])
    cases, mean = mean_by_case(np.array(["b", "a", "b"]), probs)
    assert cases.tolist() == ["a", "b"]
    np.testing.assert_allclose(mean, [[0.4, 0.5, 0.1], [0.6, 0.15, 0.25]])


@pytest.mark.parametrize(
    "cfg",
    [
        features_cfg(balance="smote"),
        features_cfg(balance="weights"),
        RunConfig(model="cnn", mode="finetune", epochs=2, n_folds=3, crop_size=32, batch_size=16),
    ],
    ids=["features-smote", "features-weights", "finetune-cnn"],
)
def test_same_seed_gives_identical_predictions(crops, tmp_path, cfg):
    conn, first = run(crops, cfg, tmp_path, final_model=False)
    _, second = run(crops, cfg, tmp_path, conn=conn, final_model=False)
    a = db.predictions_frame(conn, first).drop(columns="run_id")
    b = db.predictions_frame(conn, second).drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    _, third = run(crops, cfg.replace(seed=1), tmp_path, conn=conn, final_model=False)
    c = db.predictions_frame(conn, third).drop(columns="run_id")
    assert not np.allclose(a[["p_SCC", "p_AC", "p_ASC"]], c[["p_SCC", "p_AC", "p_ASC"]])


def test_fold_subsets_merge_into_the_same_result_as_one_full_run(crops, tmp_path):
    conn, full = run(crops, features_cfg(), tmp_path, final_model=False)
    _, part = run(crops, features_cfg(folds=[0]), tmp_path, conn=conn, run_id="split-run")
    rec = db.get_run(conn, part)
    assert part == "split-run" and rec["status"] == "partial"
    assert "folds done: [0] of 3" in rec["message"]
    run(crops, features_cfg(folds=[2, 1]), tmp_path, conn=conn, run_id="split-run")
    assert db.get_run(conn, part)["status"] == "done"
    a = db.predictions_frame(conn, full).drop(columns="run_id")
    b = db.predictions_frame(conn, part).drop(columns="run_id")
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert sorted(db.folds_frame(conn, part)["fold"]) == [0, 1, 2]


def test_merging_folds_of_another_configuration_is_refused(crops, tmp_path):
    conn, run_id = run(crops, features_cfg(folds=[0]), tmp_path, run_id="r1")
    with pytest.raises(ValueError, match=r"run r1 was made with other settings \(balance\)"):
        run(crops, features_cfg(folds=[1], balance="none"), tmp_path, conn=conn, run_id="r1")


def test_a_failing_run_is_marked_failed_with_the_message(crops, tmp_path):
    conn = db.connect(tmp_path / "empty.db")  # no cases: saving predictions must fail
    with pytest.raises(db.CaseNotFound):
        run(crops, features_cfg(), tmp_path, conn=conn, run_id="bad")
    rec = db.get_run(conn, "bad")
    assert rec["status"] == "failed"
    assert "unknown case" in rec["message"]


def test_a_comparison_gives_every_model_the_same_folds_and_one_comparison_id(crops, tmp_path):
    from core.learning.compare import comparison_table, run_comparison, same_splits

    conn = database_with_cases(tmp_path / "t.db", crops)
    base = features_cfg()
    overrides = {"cnn": {"mode": "finetune", "epochs": 1, "batch_size": 16}}
    run_ids = run_comparison(
        crops,
        ["cnn", "resnet18"],
        base,
        conn=conn,
        overrides=overrides,
        runs_dir=tmp_path / "runs",
        cache_dir=tmp_path / "cache",
    )
    runs = [db.get_run(conn, r) for r in run_ids]
    assert [r["model"] for r in runs] == ["cnn", "resnet18"]
    assert [r["mode"] for r in runs] == ["finetune", "features"]
    assert runs[0]["comparison_id"] and runs[0]["comparison_id"] == runs[1]["comparison_id"]
    assert same_splits(conn, run_ids)
    table = comparison_table(conn, run_ids, n_boot=50)
    assert set(table["model"]) == {"cnn", "resnet18"}
    with pytest.raises(ValueError, match=r"override of cnn changes \['seed'\]"):
        run_comparison(crops, ["cnn"], base, conn=conn, overrides={"cnn": {"seed": 3}})


def test_early_stopping_split_takes_whole_patients_of_the_training_fold_only(crops):
    from core.learning.folds import inner_split

    folds = make_folds(crops.case_ids, crops.labels, n_splits=3, seed=0)
    train = np.flatnonzero(folds != 0)
    val = inner_split(crops.case_ids[train], crops.labels[train], fraction=0.25, seed=0)
    val_cases = set(crops.case_ids[train][val])
    fit_cases = set(crops.case_ids[train][~val])
    assert val_cases and fit_cases and not val_cases & fit_cases
    assert not val_cases & set(crops.case_ids[folds == 0])


def test_finetuning_learns_the_patterns_of_the_training_data():
    from core.learning.models import build_model
    from core.learning.training import finetune, predict_proba, seed_everything

    data = synthetic_crops((10, 10, 10), images_per_case=1, size=32, seed=1)
    cfg = RunConfig(model="cnn", mode="finetune", epochs=8, batch_size=10, lr=3e-3, crop_size=32)
    seed_everything(0)
    model, _ = build_model(cfg)
    before = (predict_proba(model, data.crops).argmax(1) == data.labels).mean()
    fit = finetune(model, data.crops, data.labels, cfg.replace(augment=False))
    after = (predict_proba(model, data.crops).argmax(1) == data.labels).mean()
    assert fit.epochs_run == 8 and fit.images_seen == 8 * 30
    assert fit.history[-1]["train_loss"] < fit.history[0]["train_loss"]
    assert after > max(before, 0.8)


def test_a_run_queued_by_the_dashboard_gets_its_provenance_when_the_worker_runs_it(crops, tmp_path):
    conn = database_with_cases(tmp_path / "t.db", crops)
    cfg = features_cfg()
    queued = db.create_run(
        conn,
        model=cfg.model,
        mode=cfg.mode,
        config=cfg.to_dict(),
        seed=cfg.seed,
        data_hash=None,
        device=None,
        weights=None,
        code_version=None,
        packages=None,
    )
    _, run_id = run(crops, cfg, tmp_path, conn=conn, run_id=queued)
    record = db.get_run(db.connect(tmp_path / "t.db"), run_id)
    assert record["status"] == "done"
    assert record["data_hash"] == crops.data_hash()
    assert record["device"] == "cpu" and record["weights"] == "none"
    assert record["code_version"] and record["packages"]["torch"]
    with pytest.raises(ValueError, match="only be set while the run is queued"):
        db.update_run(conn, run_id, data_hash="changed")


def test_the_run_records_the_model_inference_time_per_case(crops, tmp_path):
    conn, run_id = run(crops, features_cfg(), tmp_path)
    timings = db.get_run(conn, run_id)["timings"]
    n_cases = len(set(crops.case_ids.tolist()))
    assert timings["inference_cases"] == n_cases
    assert 0 < timings["inference_seconds_per_case"] <= timings["total"] / n_cases


def test_inference_time_includes_the_backbone_when_embeddings_come_from_the_cache(crops, tmp_path):
    conn, first = run(crops, features_cfg(), tmp_path)
    _, second = run(crops, features_cfg(), tmp_path, conn=conn)  # same cache_dir: cached

    def timings(run_id):
        return db.get_run(conn, run_id)["timings"]

    assert "embed" in timings(first) and "embed_cached" in timings(second)
    warm = timings(second)
    # Every image is a test image once, so the run's inference holds the whole backbone pass.
    assert warm["embed_estimate"] > 0
    assert warm["inference_seconds"] >= warm["embed_estimate"] * (1 - 1e-9)


def test_setup_failure_marks_a_queued_run_failed(crops, tmp_path):
    """A run the dashboard queued must not stay queued when run_cv fails before its folds."""
    conn = database_with_cases(tmp_path / "q.db", crops)
    run_id = db.create_run(
        conn, model="cnn", mode="features", config={}, seed=0, data_hash=None, device=None,
        weights=None, code_version=None, packages=None,
    )  # fmt: skip
    with pytest.raises(ValueError, match="use --folds <= 6"):
        run_cv(crops, features_cfg(n_folds=7), conn=conn, run_id=run_id, runs_dir=tmp_path)
    run = db.get_run(db.connect(tmp_path / "q.db"), run_id)
    assert run["status"] == "failed"
    assert "use --folds <= 6" in run["message"]
