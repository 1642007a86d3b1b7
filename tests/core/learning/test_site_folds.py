"""Site-aware cross-validation (issue 19): whole sites on one side of every split, and per-site
tables that add up to the pooled confusion matrix."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion

from core.learning.folds import make_site_folds
from core.learning.validation import per_site_tables


def _cohort(n_cases: int, n_sites: int, seed: int):
    """Cases with 1-3 images each, a site per case, a label per case, rows shuffled."""
    rng = np.random.default_rng(seed)
    site_of = rng.integers(0, n_sites, n_cases)
    site_of[:n_sites] = np.arange(n_sites)  # every site present
    label_of = rng.integers(0, 3, n_cases)
    per_case = rng.integers(1, 4, n_cases)
    case = np.repeat(np.arange(n_cases), per_case)
    order = rng.permutation(len(case))
    case = case[order]
    return (
        np.array([f"P{c:03d}" for c in case]),
        np.array([f"site-{site_of[c]}" for c in case]),
        label_of[case],
    )


@pytest.mark.parametrize(("n_sites", "n_splits"), [(3, 5), (5, 5), (9, 4), (12, 3)])
def test_no_site_lies_on_both_sides_of_a_split(n_sites, n_splits):
    case_ids, sites, labels = _cohort(120, n_sites, seed=n_sites)
    folds = make_site_folds(case_ids, sites, labels, n_splits=n_splits, seed=0)
    n_folds = min(n_sites, n_splits)
    assert sorted(set(folds.tolist())) == list(range(n_folds))
    for fold in range(n_folds):
        test, train = set(sites[folds == fold]), set(sites[folds != fold])
        assert test and train and not test & train
        assert not set(case_ids[folds == fold]) & set(case_ids[folds != fold])
    if n_sites <= n_splits:  # leave one site out: each fold is exactly one site
        assert all(len(set(sites[folds == f])) == 1 for f in range(n_folds))


def test_site_folds_refuse_a_missing_site_or_a_single_site():
    case_ids, sites, labels = _cohort(30, 3, seed=1)
    sites = sites.astype(object)
    sites[4] = None
    with pytest.raises(ValueError, match="needs a site"):
        make_site_folds(case_ids, sites, labels, n_splits=3, seed=0)
    with pytest.raises(ValueError, match="only one site"):
        make_site_folds(case_ids, ["A"] * len(case_ids), labels, n_splits=3, seed=0)


def test_per_site_tables_sum_to_the_pooled_confusion_matrix():
    rng = np.random.default_rng(5)
    n = 150
    proba = rng.dirichlet(np.ones(3), n)
    frame = pd.DataFrame(proba, columns=["p_scc", "p_ac", "p_asc"])
    frame["case_id"] = [f"C{i}" for i in range(n)]
    frame["label"] = rng.integers(0, 3, n)
    frame["predicted"] = proba.argmax(1)
    frame["site"] = rng.choice(["north", "south", "east", None], n)
    tables = per_site_tables(frame, n_boot=50)
    assert set(tables) == {"north", "south", "east", "-"}
    assert sum(t["n_cases"] for t in tables.values()) == n
    pooled = sk_confusion(frame["label"], frame["predicted"], labels=[0, 1, 2])
    np.testing.assert_array_equal(sum(t["confusion"] for t in tables.values()), pooled)
    for name, table in tables.items():  # each site's accuracy is its own cases' accuracy
        part = frame[frame["site"].fillna("-") == name]
        metrics = table["metrics"].set_index(["scope", "metric"])["value"]
        expected = float((part["label"] == part["predicted"]).mean())
        assert metrics[("overall", "accuracy")] == pytest.approx(expected)
        lo, hi = (
            table["metrics"]
            .set_index(["scope", "metric"])
            .loc[("overall", "accuracy"), ["ci_low", "ci_high"]]
        )
        assert lo <= expected <= hi


def test_cv_group_by_site_keeps_each_site_on_one_side(small_cohort_dir, tmp_path, monkeypatch):
    """``cervixscope cv --group-by site`` on a real ingested cohort with three sites and five
    folds asked for: leave one site out, so three folds, each one whole site."""
    import csv
    import shutil

    import db
    from core.cli import main
    from core.learning.fold_models import fold_cases

    data = tmp_path / "data"
    shutil.copytree(small_cohort_dir, data)
    manifest = data / "manifest.csv"
    rows = list(csv.DictReader(manifest.open(encoding="utf-8")))
    site_of = {}  # by case key
    for row in rows:
        site_of.setdefault(
            f"internal/{row['patient_id']}", ("north", "south", "east")[len(site_of) % 3]
        )
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0], "site"])
        writer.writeheader()
        writer.writerows({**row, "site": site_of[f"internal/{row['patient_id']}"]} for row in rows)
    argv = ["--db", str(tmp_path / "cs.db"), "--home", str(tmp_path), "-q", "cv"]
    argv += ["--data", str(data), "--model", "cnn", "--weights", "none", "--folds", "5"]
    assert main([*argv, "--group-by", "site"]) == 0
    conn = db.connect(tmp_path / "cs.db")
    try:
        run = db.runs_frame(conn).iloc[0]
        predictions = db.predictions_frame(conn, [run["run_id"]])
    finally:
        conn.close()
    assert run["config"]["n_folds"] == 3 and run["config"]["extra"]["group_by"] == "site"
    assert len(predictions) == len(site_of)  # one out-of-fold prediction per case
    by_fold = predictions.assign(site=predictions["case_id"].map(site_of)).groupby("fold")["site"]
    assert sorted(by_fold.nunique()) == [1, 1, 1]
    assert sorted(by_fold.first()) == ["east", "north", "south"]
    for record in fold_cases(run["run_id"], tmp_path / "runs").values():
        train = {site_of[c] for c in record["train_cases"]}
        test = {site_of[c] for c in record["test_cases"]}
        assert len(test) == 1 and not train & test
    # The results page's per-site table of this run: every case once, each site's accuracy its own
    from dashboard import external

    monkeypatch.setenv("CERVIXSCOPE_DB", str(tmp_path / "cs.db"))
    table = external.internal_site_table(run["run_id"], n_boot=50).set_index("site")
    assert sorted(table.index) == ["east", "north", "south"]
    assert table["cases"].sum() == len(site_of)
    for site, part in predictions.groupby(predictions["case_id"].map(site_of)):
        truth = part["label"].map({"SCC": 0, "AC": 1, "ASC": 2})
        acc = float((part[["p_SCC", "p_AC", "p_ASC"]].to_numpy().argmax(1) == truth).mean())
        assert table.loc[site, "accuracy"].startswith(f"{acc:.3f} (")
