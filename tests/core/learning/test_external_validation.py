"""External validation (issue 19): a real run's frozen models applied to the demo's external
cohort (second synthetic scanner), stored in a real SQLite file and checked against core.metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

import db
from core.data.demo_data import generate_external_cohort
from core.data.ingest import ingest_folder
from core.data.shift import profile_ingestion, shift_flags
from core.learning.config import RunConfig
from core.learning.cv import run_cv
from core.learning.fold_models import fold_cases
from core.learning.validation import metrics_table, validate_run


@pytest.fixture(scope="module")
def validated(small_cohort_dir, tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("validation")
    conn = db.connect(work / "cs.db")
    internal = ingest_folder(small_cohort_dir, conn=conn, progress=False, cache_dir=work / "c")
    cfg = RunConfig(model="cnn", mode="features", weights="none", n_folds=3, seed=0)
    run_id = run_cv(internal.crops, cfg, conn=conn, runs_dir=work / "runs", cache_dir=False)
    generate_external_cohort(work / "external", counts=(6, 5, 4))
    external = ingest_folder(
        work / "external", conn=conn, progress=False, cohort="external", cache_dir=work / "c"
    )
    checks = shift_flags(profile_ingestion(internal, "internal"), profile_ingestion(external, "x"))
    sites = {c["case_id"]: c["site"] for c in external.cases}
    result = validate_run(
        run_id, external.crops, cohort="external", sites=sites, conn=conn,
        runs_dir=work / "runs", shift=checks, n_boot=200,
    )  # fmt: skip
    yield conn, run_id, external, result, work
    conn.close()


def test_one_stored_prediction_per_external_case(validated):
    conn, run_id, external, result, _ = validated
    stored = db.validation_predictions(conn, result.validation_id)
    case_ids, labels = external.crops.cases()
    assert sorted(stored["case_id"]) == sorted(case_ids.tolist())
    assert len(stored) == len(set(stored["case_id"])) == 15
    truth = dict(zip(case_ids.tolist(), labels.tolist(), strict=True))
    assert (stored["label"] == stored["case_id"].map(truth)).all()
    assert np.allclose(stored[["p_scc", "p_ac", "p_asc"]].sum(axis=1), 1.0)
    row = db.validations_frame(conn, run_id).iloc[0]
    assert (row["cohort"], row["model"], row["n_cases"]) == ("external", "ensemble", 15)
    assert row["provenance"]["data_hash"] == external.crops.data_hash()
    assert set(stored["site"]) == {"B-north", "B-south"}


def test_stored_metrics_equal_core_metrics_on_the_stored_predictions(validated):
    conn, _, _, result, _ = validated
    stored = db.validation_predictions(conn, result.validation_id)
    recomputed = metrics_table(stored, n_boot=200).set_index(["scope", "metric"])
    saved = pd.DataFrame(db.validations_frame(conn).iloc[0]["metrics"]).set_index(
        ["scope", "metric"]
    )
    pd.testing.assert_series_equal(saved["value"], recomputed["value"], check_names=False)
    # and independently of core: scikit-learn on the same rows
    score = stored[["p_scc", "p_ac", "p_asc"]].to_numpy()
    assert saved.loc[("overall", "accuracy"), "value"] == pytest.approx(
        accuracy_score(stored["label"], score.argmax(1))
    )
    assert saved.loc[("macro", "auc"), "value"] == pytest.approx(
        roc_auc_score(stored["label"], score, multi_class="ovr", average="macro")
    )


def test_external_cases_were_never_part_of_the_run(validated):
    conn, run_id, external, _, work = validated
    seen = set(db.predictions_frame(conn, [run_id])["case_id"])
    for record in fold_cases(run_id, work / "runs").values():
        seen |= set(record["train_cases"]) | set(record["test_cases"])
    assert seen and not seen & set(external.crops.case_ids.tolist())


def test_a_cohort_the_run_trained_on_is_refused(validated, small_crops):
    conn, run_id, _, _, work = validated
    with pytest.raises(ValueError, match="must be new to the run"):
        validate_run(run_id, small_crops, cohort="again", conn=conn, runs_dir=work / "runs")


def test_the_second_scanner_is_flagged_before_trusting_the_numbers(validated):
    shift = validated[3].shift
    flagged = {check["check"] for check in shift}
    assert "series description" in flagged
    assert any(name.startswith("intensity") for name in flagged)


def test_validate_command_prints_the_model_metrics_and_shift(validated, tmp_path, capsys):
    from core.cli import main

    conn, run_id, _, _, work = validated
    generate_external_cohort(tmp_path / "other", seed=5, counts=(3, 3, 3))
    argv = ["validate", "--run", run_id, "--data", str(tmp_path / "other"), "--cohort", "site-c"]
    assert main(["--db", str(work / "cs.db"), "--home", str(work), "-q", *argv]) == 0
    out = capsys.readouterr().out
    assert "ensemble of the 3 fold models" in out and "macro AUC" in out
    assert "DIFFERS series description" in out
    stored = db.validations_frame(conn, run_id)
    newest = stored.iloc[0]
    assert (newest["cohort"], newest["n_cases"]) == ("site-c", 9)
    assert len(db.validation_predictions(conn, newest["validation_id"])) == 9
    cases = db.cases_frame(conn).set_index("case_id")
    assert (
        cases.loc[db.validation_predictions(conn, newest["validation_id"])["case_id"], "cohort"]
        == "site-c"
    ).all()


def test_validate_command_refuses_the_runs_own_cohort_in_one_line(
    validated, small_cohort_dir, capsys
):
    from core.cli import main

    _, run_id, _, _, work = validated
    argv = ["validate", "--run", run_id, "--data", str(small_cohort_dir), "--cohort", "again"]
    assert main(["--db", str(work / "cs.db"), "--home", str(work), "-q", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "must be new to the run" in err


def test_a_second_hospital_reusing_the_patient_ids_is_validated_apart(validated, tmp_path):
    """Its DEMO-0001 is another patient: validated as its own case, the run's cases untouched."""
    from core.cli import main
    from core.data.demo_data import generate_demo_cohort

    conn, run_id, _, _, work = validated
    before = db.cases_frame(conn).set_index("case_id")
    generate_demo_cohort(tmp_path / "hospital-b", seed=11, counts=(3, 3, 3))
    argv = ["validate", "--run", run_id, "--data", str(tmp_path / "hospital-b")]
    argv += ["--cohort", "hospital-b"]
    assert main(["--db", str(work / "cs.db"), "--home", str(work), "-q", *argv]) == 0
    after = db.cases_frame(conn).set_index("case_id")
    assert "internal/DEMO-0001" in before.index and "hospital-b/DEMO-0001" in after.index
    kept = ["cohort", "patient_id", "label", "site", "display_id"]
    assert after.loc[before.index, kept].equals(before[kept])
    newest = db.validations_frame(conn, run_id).iloc[0]
    stored = db.validation_predictions(conn, newest["validation_id"])
    assert sorted(stored["case_id"]) == [f"hospital-b/DEMO-{i:04d}" for i in range(1, 10)]
    internal = db.predictions_frame(conn, [run_id])
    assert not set(internal["case_id"]) & set(stored["case_id"])
