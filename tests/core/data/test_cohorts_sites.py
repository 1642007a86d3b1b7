"""Cohorts and sites (issues 19, 23): ingestion records both per case, in a real SQLite file; a
case is (cohort, patient ID), so two cohorts that reuse patient IDs never touch each other, and a
re-ingestion that would change a stored label is refused unless asked for."""

from __future__ import annotations

import csv

import pytest

import db
from core.data.demo_data import generate_demo_cohort
from core.data.ingest import ingest_folder


def _with_sites(manifest, sites):
    """Rewrite the manifest with a ``site`` column: patient -> site from ``sites(patient)``."""
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=[*rows[0].keys(), "site"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "site": sites(row["patient_id"])})
    return {row["patient_id"]: sites(row["patient_id"]) for row in rows}


def test_cohort_and_site_are_stored_per_case(tmp_path):
    manifest = generate_demo_cohort(tmp_path / "data", seed=3, counts=(4, 2, 2))
    expected = _with_sites(manifest, lambda pid: "A" if int(pid[-4:]) % 2 else "B")
    conn = db.connect(tmp_path / "cs.db")
    try:
        result = ingest_folder(
            tmp_path / "data",
            conn=conn,
            progress=False,
            cohort="hospital-2",
            cache_dir=tmp_path / "cache",
        )
        cases = db.cases_frame(conn).set_index("patient_id")
    finally:
        conn.close()
    assert not result.errors
    assert set(cases.index) == set(expected)
    assert (cases["cohort"] == "hospital-2").all()
    assert cases["case_id"].tolist() == [f"hospital-2/{pid}" for pid in cases.index]
    assert cases["site"].to_dict() == expected


def test_default_cohort_is_internal_and_site_is_optional(tmp_path):
    generate_demo_cohort(tmp_path / "data", seed=4, counts=(2, 1, 1))
    conn = db.connect(tmp_path / "cs.db")
    try:
        ingest_folder(tmp_path / "data", conn=conn, progress=False, cache_dir=tmp_path / "c")
        cases = db.cases_frame(conn)
    finally:
        conn.close()
    assert (cases["cohort"] == "internal").all()
    assert cases["site"].isna().all()


def test_an_unusable_cohort_name_is_one_clear_error(tmp_path):
    generate_demo_cohort(tmp_path / "data", seed=4, counts=(2, 1, 1))
    for name in ("  ", "a/b"):
        with pytest.raises(ValueError, match="cohort name"):
            ingest_folder(tmp_path / "data", progress=False, cohort=name, cache_dir=tmp_path / "c")


def _relabel(manifest, patient_id: str, label: str) -> None:
    with manifest.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        writer.writeheader()
        writer.writerows({**r, "label": label if r["patient_id"] == patient_id else r["label"]}
                         for r in rows)  # fmt: skip


def test_a_second_cohort_reusing_patient_ids_leaves_the_first_as_it_was(tmp_path):
    first = generate_demo_cohort(tmp_path / "first", seed=5, counts=(3, 2, 1))
    second = generate_demo_cohort(tmp_path / "second", seed=6, counts=(3, 2, 1))
    _relabel(second, "DEMO-0001", "ASC")  # the other hospital's P0001 is another patient
    _with_sites(first, lambda pid: "Leeds")
    _with_sites(second, lambda pid: "Oslo")
    conn = db.connect(tmp_path / "two.db")
    try:
        a = ingest_folder(tmp_path / "first", conn=conn, progress=False, cache_dir=tmp_path / "c")
        before = db.cases_frame(conn).set_index("case_id")
        b = ingest_folder(
            tmp_path / "second", conn=conn, progress=False, cohort="oslo",
            cache_dir=tmp_path / "c",
        )  # fmt: skip
        after = db.cases_frame(conn).set_index("case_id")
        images = db.images_frame(conn)
    finally:
        conn.close()
    assert not a.errors and not b.errors
    assert len(after) == 2 * len(before)
    same = after.loc[before.index, ["cohort", "patient_id", "label", "site", "display_id"]]
    assert same.equals(before[["cohort", "patient_id", "label", "site", "display_id"]])
    assert after.loc["oslo/DEMO-0001", "label"] == "ASC"
    assert after.loc["internal/DEMO-0001", "label"] == before.loc["internal/DEMO-0001", "label"]
    assert set(after.loc[after["cohort"] == "oslo", "site"]) == {"Oslo"}
    assert not set(a.crops.case_ids) & set(b.crops.case_ids)
    sources = images.groupby("case_id")["source_path"].first()
    assert "/first/" in sources["internal/DEMO-0001"]
    assert "/second/" in sources["oslo/DEMO-0001"]


def test_a_label_changing_reingestion_is_refused_and_records_nothing(tmp_path, capsys):
    from core.cli import main

    manifest = generate_demo_cohort(tmp_path / "data", seed=7, counts=(3, 2, 1))
    path = tmp_path / "relabel.db"
    args = ["--db", str(path), "ingest", str(tmp_path / "data"), "--quiet"]
    assert main(args) == 0
    conn = db.connect(path)
    run_id = db.create_run(conn, model="cnn", mode="features", config={}, seed=0, data_hash="h")
    db.save_predictions(
        conn, run_id, 0,
        [{"case_id": "internal/DEMO-0002", "p_SCC": 0.5, "p_AC": 0.3, "p_ASC": 0.2}],
    )  # fmt: skip
    old = db.cases_frame(conn).set_index("case_id").loc["internal/DEMO-0002", "label"]
    new = "ASC" if old != "ASC" else "SCC"
    n_ingestions = conn.conn.execute("SELECT COUNT(*) FROM ingestions").fetchone()[0]
    conn.close()
    _relabel(manifest, "DEMO-0002", new)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert (
        f"case internal/DEMO-0002: stored label {old}, new label {new}; used by run(s) {run_id}"
        in err
    )
    assert "--allow-label-change" in err
    conn = db.connect(path)
    assert db.cases_frame(conn).set_index("case_id").loc["internal/DEMO-0002", "label"] == old
    assert conn.conn.execute("SELECT COUNT(*) FROM ingestions").fetchone()[0] == n_ingestions
    conn.close()

    assert main([*args, "--allow-label-change"]) == 0
    conn = db.connect(path)
    assert db.cases_frame(conn).set_index("case_id").loc["internal/DEMO-0002", "label"] == new
    audit = db.case_audit_frame(conn)
    conn.close()
    assert audit[["case_id", "field", "old", "new"]].values.tolist() == [
        ["internal/DEMO-0002", "label", old, new]
    ]
    assert audit["ingestion_id"].notna().all()
