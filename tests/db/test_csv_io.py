"""CSV export and all-or-nothing import: every exported file re-imports to the same rows."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

import db
from tests.db.conftest import make_cases

READ_KEY = ["reader_id", "case_id", "arm"]
READ_VALUES = ["display_name", "label", "c_SCC", "c_AC", "c_ASC", "shown_at", "submitted_at",
               "duration_ms", "truth"]  # fmt: skip


def _build(path):
    """The same study, readers and run in any file built by this function (IDs included)."""
    conn = db.connect(path)
    cases = make_cases(conn, 7)
    run_id = db.create_run(
        conn, model="resnet18", mode="features", config={}, seed=0, data_hash="h", device="cpu",
        weights=None, code_version=None, packages={}, run_id="r-fixed",
    )  # fmt: skip
    study_id = db.create_study(
        conn, name="s", case_ids=cases, arms=("unaided", "aided"), model_run_id=run_id
    )
    readers = [db.add_reader(conn, study_id, name)[0] for name in ("Dr A", 'Dr Ø, "quoted"')]
    return conn, study_id, cases, readers, run_id


def _fill(conn, study_id, cases, readers, run_id):
    awkward = [1 / 3, 0.1 + 0.2, 1e-17, 0.0, 1.0, 2 / 7, 0.5]  # round-trip traps for text floats
    for k, case_id in enumerate(cases):
        for r, reader_id in enumerate(readers):
            for arm in ("unaided", "aided")[: 1 + (k + r) % 2]:
                c = awkward[(k + r) % len(awkward)]
                db.submit_read(
                    conn, study_id=study_id, reader_id=reader_id, case_id=case_id, arm=arm,
                    label=("SCC", "AC", "ASC")[(k * r) % 3],
                    confidences=None if k == 3 else (c, 1 - c, 0.0),
                    shown_at=None if k == 5 else f"2026-02-0{1 + r}T10:0{k}:00+01:00",
                    submitted_at=f"2026-02-0{1 + r}T10:0{k}:07.25+01:00",
                )  # fmt: skip
    db.save_predictions(
        conn, run_id, 0,
        [{"case_id": c, "p_SCC": p, "p_AC": (1 - p) / 3, "p_ASC": 1 - p - (1 - p) / 3}
         for c, p in zip(cases, [1 / 3, 0.1, 0.7, 1e-9, 0.25, 0.999, 0.5], strict=True)],
    )  # fmt: skip


def _reads(conn, study_id):
    frame = db.reads_frame(conn, study_id)
    return frame.sort_values(READ_KEY).reset_index(drop=True)[READ_KEY + READ_VALUES]


def test_exported_reads_reimport_to_the_same_rows(tmp_path):
    source, study_id, cases, readers, run_id = _build(tmp_path / "a.db")
    _fill(source, study_id, cases, readers, run_id)
    out = db.export_reads_csv(source, study_id, tmp_path / "reads.csv")
    expected = _reads(source, study_id)
    assert len(expected) > 10

    target, target_study, *_ = _build(tmp_path / "b.db")
    assert db.import_reads_csv(target, target_study, out) == len(expected)
    pd.testing.assert_frame_equal(_reads(target, target_study), expected, check_exact=True)
    assert set(db.audit_frame(target, target_study)["source"]) == {"import"}

    # importing into the source again changes no read, and the audit log records the import
    assert db.import_reads_csv(source, study_id, out) == len(expected)
    pd.testing.assert_frame_equal(_reads(source, study_id), expected, check_exact=True)
    assert (db.audit_frame(source, study_id)["source"] == "import").sum() == len(expected)
    source.close()
    target.close()


def test_exported_predictions_reimport_to_the_same_rows(tmp_path):
    source, study_id, cases, readers, run_id = _build(tmp_path / "a.db")
    _fill(source, study_id, cases, readers, run_id)
    out = db.export_predictions_csv(source, [run_id], tmp_path / "pred.csv")
    target, *_ = _build(tmp_path / "b.db")
    assert db.import_predictions_csv(target, out) == len(cases)
    pd.testing.assert_frame_equal(
        db.predictions_frame(target, run_id).drop(columns="display_id"),  # random per database
        db.predictions_frame(source, run_id).drop(columns="display_id"),
        check_exact=True,
    )
    source.close()
    target.close()


def _write_csv(path, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_reads_collected_elsewhere_import_by_reader_name(tmp_path):
    conn, study_id, cases, _, _ = _build(tmp_path / "a.db")
    path = _write_csv(
        tmp_path / "elsewhere.csv",
        [{"display_name": "Dr A", "case_id": cases[2], "arm": "aided", "label": "asc",
          "c_SCC": "", "c_AC": "", "c_ASC": "", "submitted_at": "2026-05-01T12:00:00Z"}],
    )  # fmt: skip
    assert db.import_reads_csv(conn, study_id, path) == 1
    read = db.reads_frame(conn, study_id).iloc[0]
    assert (read["display_name"], read["case_id"], read["arm"], read["label"]) == (
        "Dr A", cases[2], "aided", "ASC",
    )  # fmt: skip
    assert pd.isna(read["c_SCC"]) and read["submitted_at"] == "2026-05-01T12:00:00.000+00:00"
    conn.close()


def test_bad_rows_are_all_listed_with_row_numbers_and_nothing_is_imported(tmp_path):
    conn, study_id, cases, readers, _ = _build(tmp_path / "a.db")
    good = {"reader_id": readers[0], "display_name": "", "case_id": cases[0], "arm": "unaided",
            "label": "SCC", "c_SCC": "0.9", "c_AC": "0.1", "c_ASC": "0"}  # fmt: skip
    rows = [
        good,
        {**good, "reader_id": "77"},
        {**good, "case_id": "P9999"},
        {**good, "case_id": cases[1], "label": "CIN"},
        {**good, "case_id": cases[2], "arm": "second look"},
        {**good, "case_id": cases[3], "c_AC": "1.5"},
        {**good},  # the same reader, case and arm as row 1
        {**good, "reader_id": "", "display_name": "Dr Nobody", "case_id": cases[4]},
        {**good, "display_name": 'Dr Ø, "quoted"', "case_id": cases[5]},  # id/name disagree
        {**good, "case_id": cases[6], "label": "ac"},  # fine
    ]
    path = _write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(db.ImportValidationError) as caught:
        db.import_reads_csv(conn, study_id, path)
    problems = caught.value.problems
    assert [p.split(":")[0] for p in problems] == [f"row {n}" for n in (2, 3, 4, 5, 6, 7, 8, 9)]
    for number, text in [
        (2, "unknown reader 77"),
        (3, "unknown case 'P9999'"),
        (4, "'CIN' is not one of SCC, AC, ASC"),
        (5, "arm 'second look'"),
        (6, "AC is 1.5"),
        (7, "same reader, case and arm as row 1"),
        (8, "unknown reader 'Dr Nobody'"),
        (9, "not 'Dr Ø, \"quoted\"'"),
    ]:
        assert text in problems[number - 2], problems[number - 2]  # fmt: skip
    assert "8 problem(s), nothing was imported" in str(caught.value)
    assert conn.execute("SELECT COUNT(*) FROM reads").fetchone()[0] == 0
    assert conn.execute("SELECT COUNT(*) FROM read_audit").fetchone()[0] == 0
    conn.close()


def test_missing_columns_and_closed_studies_are_refused(tmp_path):
    conn, study_id, cases, _, _ = _build(tmp_path / "a.db")
    path = _write_csv(tmp_path / "x.csv", [{"case_id": cases[0], "label": "SCC"}])
    with pytest.raises(db.ImportValidationError) as caught:
        db.import_reads_csv(conn, study_id, path)
    assert caught.value.problems == [
        "header: need a reader_id or display_name column", "header: missing column arm",
    ]  # fmt: skip
    with pytest.raises(FileNotFoundError, match="nope.csv does not exist"):
        db.import_reads_csv(conn, study_id, tmp_path / "nope.csv")
    db.close_study(conn, study_id)
    with pytest.raises(db.StudyClosed):
        db.import_reads_csv(conn, study_id, tmp_path / "x.csv")
    conn.close()


def test_bad_prediction_rows_are_listed_and_nothing_is_imported(tmp_path):
    conn, _, cases, _, run_id = _build(tmp_path / "a.db")
    good = {"run_id": run_id, "case_id": cases[0], "fold": "0", "p_SCC": "0.2", "p_AC": "0.3",
            "p_ASC": "0.5"}  # fmt: skip
    path = _write_csv(
        tmp_path / "p.csv",
        [good, {**good, "run_id": "r-nope"}, {**good, "case_id": "Q1"}, {**good, "p_AC": "-0.1"}],
    )
    with pytest.raises(db.ImportValidationError) as caught:
        db.import_predictions_csv(conn, path)
    assert [p.split(":")[0].split(" (")[0] for p in caught.value.problems] == [
        "row 2", "row 3", "row 4",
    ]  # fmt: skip
    assert "unknown run 'r-nope'" in caught.value.problems[0]
    assert "unknown case 'Q1'" in caught.value.problems[1]
    assert "p_AC=-0.1 is not in [0, 1]" in caught.value.problems[2]
    assert conn.execute("SELECT COUNT(*) FROM predictions").fetchone()[0] == 0
    conn.close()


def test_spreadsheet_quirks_in_the_header_are_tolerated(tmp_path):
    conn, study_id, cases, _, _ = _build(tmp_path / "a.db")
    path = tmp_path / "excel.csv"
    text = f"display_name , case_id, arm ,label\r\nDr A,{cases[1]}, unaided ,scc\r\n"
    path.write_bytes("\ufeff".encode() + text.encode())  # byte-order mark, spaces, CRLF
    assert db.import_reads_csv(conn, study_id, path) == 1
    assert db.reads_frame(conn, study_id)[["case_id", "arm", "label"]].values.tolist() == [
        [cases[1], "unaided", "SCC"]
    ]
    conn.close()
