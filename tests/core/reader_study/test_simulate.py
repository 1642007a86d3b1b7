"""Simulated readers reproduce the paper's expert tables exactly (no DICOM needed)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from core.data.labels import CLASSES
from core.reader_study.simulate import (
    PAPER_EXPERT_TABLES,
    simulate_confidences,
    simulate_labels,
    simulate_paper_readers,
    simulate_reader,
    simulate_seconds,
)

# The paper's expert tables, typed in again here so a typo in the module cannot hide.
EXPERT_1 = [[477, 0, 10], [5, 101, 10], [8, 7, 23]]
EXPERT_2 = [[480, 1, 6], [1, 108, 7], [3, 2, 33]]


@pytest.fixture
def demo_truth():
    """The demo cohort's 487 SCC / 116 AC / 38 ASC, shuffled so order carries no information."""
    y = np.repeat([0, 1, 2], [487, 116, 38])
    rng = np.random.default_rng(7)
    y = y[rng.permutation(len(y))]
    return np.array([f"internal/P{i:04d}" for i in range(len(y))]), y


@pytest.mark.parametrize(
    "name, table",
    [
        (n, t)
        for n, t in zip(
            ["Expert 1 (simulated)", "Expert 2 (simulated)"], [EXPERT_1, EXPERT_2], strict=True
        )
    ],
    ids=["expert1", "expert2"],
)
def test_paper_readers_reproduce_published_tables(demo_truth, name, table):
    case_ids, y = demo_truth
    reads = simulate_paper_readers(case_ids, y, seed=3)[name]
    truth_by_case = dict(zip(case_ids, y, strict=True))
    y_true = np.array([truth_by_case[c] for c in reads["case_id"]])
    y_pred = np.array([CLASSES.index(label) for label in reads["label"]])
    assert confusion_matrix(y_true, y_pred, labels=[0, 1, 2]).tolist() == table
    assert sorted(reads["case_id"]) == sorted(case_ids)  # every case read exactly once


def test_module_tables_match_paper():
    assert PAPER_EXPERT_TABLES["Expert 1 (simulated)"].tolist() == EXPERT_1
    assert PAPER_EXPERT_TABLES["Expert 2 (simulated)"].tolist() == EXPERT_2


def test_labels_are_seeded_and_seed_changes_assignment(demo_truth):
    _, y = demo_truth
    a = simulate_labels(y, EXPERT_1, seed=1)
    assert np.array_equal(a, simulate_labels(y, EXPERT_1, seed=1))
    b = simulate_labels(y, EXPERT_1, seed=2)
    assert not np.array_equal(a, b)
    assert confusion_matrix(y, b, labels=[0, 1, 2]).tolist() == EXPERT_1


def test_row_sum_mismatch_is_refused():
    y = np.array([0, 0, 1, 2])
    with pytest.raises(ValueError, match="row SCC .* sums to 3 but there are 2 true SCC"):
        simulate_labels(y, [[2, 1, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="must be 3x3"):
        simulate_labels(y, [[2, 0], [0, 2]])


def test_confidences_agree_with_label_and_sum_to_one(demo_truth):
    _, y = demo_truth
    y_pred = simulate_labels(y, EXPERT_2, seed=0)
    conf = simulate_confidences(y, y_pred, seed=0)
    assert np.allclose(conf.sum(axis=1), 1.0)
    assert (conf >= 0).all()
    assert np.array_equal(conf.argmax(axis=1), y_pred)
    wrong = y != y_pred
    # on a wrong read the truth is the second choice, so confidences carry information
    second = np.argsort(conf, axis=1)[:, -2]
    assert np.array_equal(second[wrong], y[wrong])


def test_seconds_are_positive_and_near_median():
    s = simulate_seconds(2000, median=30.0, seed=0)
    assert (s >= 3.0).all()
    assert 27.0 < np.median(s) < 33.0
    with pytest.raises(ValueError, match="median must be positive"):
        simulate_seconds(3, median=0)


def test_reader_timestamps_follow_reading_times():
    y = np.array([0, 0, 1, 2])
    reads = simulate_reader(["a", "b", "c", "d"], y, np.diag([2, 1, 1]), seed=0)
    shown = pd.to_datetime(reads["shown_at"]).to_numpy()
    submitted = pd.to_datetime(reads["submitted_at"]).to_numpy()
    spent = (submitted - shown) / np.timedelta64(1, "s")
    assert np.allclose(spent, reads["seconds"], atol=0.002)
    assert (shown[1:] > submitted[:-1]).all()  # one case after another


@pytest.fixture
def demo_labels_db(tmp_path, demo_truth):
    """A real database file holding the 641 demo cases (labels only, no images)."""
    import db

    case_ids, y = demo_truth
    path = tmp_path / "demo.db"
    conn = db.connect(path)
    try:
        db.upsert_cases(
            conn, [{"case_id": c, "label": CLASSES[k]} for c, k in zip(case_ids, y, strict=True)]
        )
    finally:
        conn.close()
    return path


def test_demo_study_in_database_reproduces_tables_and_is_idempotent(demo_labels_db):
    import db
    from core.cli import main
    from core.reader_study.simulate import DEMO_STUDY_NAME

    assert main(["--db", str(demo_labels_db), "demo-study"]) == 0
    conn = db.connect(demo_labels_db)  # reopen: the command's writes are committed
    try:
        studies = db.studies_frame(conn)
        study_id = int(studies.loc[studies["name"] == DEMO_STUDY_NAME, "study_id"].iloc[0])
        reads = db.reads_frame(conn, study_id)
        n_audit = len(db.audit_frame(conn, study_id))
    finally:
        conn.close()
    assert studies["simulated"].tolist() == [1]
    assert reads["reader_simulated"].all()
    for name, table in (("Expert 1 (simulated)", EXPERT_1), ("Expert 2 (simulated)", EXPERT_2)):
        mine = reads[reads["display_name"] == name]
        assert (
            confusion_matrix(mine["truth"], mine["label"], labels=list(CLASSES)).tolist() == table
        )
        assert (mine["duration_ms"] > 0).all()

    assert main(["--db", str(demo_labels_db), "demo-study"]) == 0  # again: nothing added
    conn = db.connect(demo_labels_db)
    try:
        assert len(db.studies_frame(conn)) == 1
        assert len(db.reads_frame(conn, study_id)) == len(reads) == 2 * 641
        assert len(db.audit_frame(conn, study_id)) == n_audit
        assert len(db.reader_progress_frame(conn, study_id)) == 2
    finally:
        conn.close()


def test_export_then_import_reads_round_trip(demo_labels_db, tmp_path):
    import db
    from core.cli import main

    assert main(["--db", str(demo_labels_db), "demo-study"]) == 0
    out = tmp_path / "reads.csv"
    assert (
        main(
            [
                "--db",
                str(demo_labels_db),
                "study",
                "export-reads",
                "--study",
                "1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    exported = pd.read_csv(out)
    assert len(exported) == 2 * 641
    assert (
        main(["--db", str(demo_labels_db), "study", "import-reads", "--study", "1", str(out)]) == 0
    )
    conn = db.connect(demo_labels_db)
    try:
        assert len(db.reads_frame(conn, 1)) == 2 * 641  # same reads again: upserted, not added
    finally:
        conn.close()
    missing = tmp_path / "nope.csv"
    assert (
        main(["--db", str(demo_labels_db), "study", "import-reads", "--study", "1", str(missing)])
        == 2
    )


def test_demo_study_refuses_a_cohort_without_the_paper_counts(tmp_path):
    import db
    from core.reader_study.simulate import seed_demo_study

    conn = db.connect(tmp_path / "small.db")
    try:
        db.upsert_cases(
            conn, [{"case_id": f"internal/P{i}", "label": CLASSES[i % 3]} for i in range(9)]
        )
        with pytest.raises(
            ValueError, match="needs the paper's class counts 487/116/38 .* has 3/3/3"
        ):
            seed_demo_study(conn)
        assert db.studies_frame(conn).empty  # refused before anything was written
    finally:
        conn.close()
