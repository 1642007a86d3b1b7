"""Localisation studies on a real SQLite file with real DICOM: readers' marks are stored with the
read, checked against the slice, never shown the reference ROI, and scored by the study's rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import db
from core.data.demo_data import generate_demo_cohort
from core.data.ingest import ingest_folder
from core.reader_study import desk, localisation
from core.reader_study.pixel_transport import unpack


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    folder = tmp_path_factory.mktemp("loc_cohort")
    generate_demo_cohort(folder, seed=5, counts=(3, 3, 1))
    return folder


@pytest.fixture
def studies(cohort, tmp_path):
    """A localisation study (radius 2 mm) and a plain one over the same cases."""
    path = tmp_path / "loc.db"
    conn = db.connect(path)
    try:
        ingest_folder(cohort, cohort / "manifest.csv", conn=conn, progress=False)
        cases = db.cases_frame(conn)["case_id"].tolist()
        loc = db.create_study(conn, name="where", case_ids=cases, localise=True, hit_radius_mm=2.0)
        plain = db.create_study(conn, name="what", case_ids=cases)
        readers = {s: db.add_reader(conn, s, "Dr Mark")[0] for s in (loc, plain)}
    finally:
        conn.close()
    return path, loc, plain, readers


def _sync(path, study_id, reader_id, **request):
    reply = desk.sync(study_id, reader_id, "unaided", desk.SyncRequest(**request), db_path=path)
    return reply, unpack(reply.message)[0]


def _answer(header, position, marks, label="AC", attempt=None):
    row = next(w for w in header["work"] if w[0] == position)
    return {"attempt": attempt or f"attempt-{position}-{label}-x", "arm": "unaided",
            "position": position, "display_id": row[1], "label": label, "certainty": "certain",
            "duration_ms": 1200, "age_ms": 10, "marks": marks}  # fmt: skip


def test_no_reference_roi_or_lesion_picture_reaches_a_localisation_reader(studies):
    path, loc, plain, readers = studies
    _, shown = _sync(path, plain, readers[plain])
    assert any(s["roi"] for c in shown["cases"] for s in c["slices"])  # the plain study shows it
    assert any(c["side"] for c in shown["cases"])
    _, header = _sync(path, loc, readers[loc])
    assert header["localise"] is True and header["cases"]
    for case in header["cases"]:
        assert all(s["roi"] is None for s in case["slices"]) and case["side"] == []
        assert case["start"] == 0
    text = json.dumps(header)
    assert "Lesion crop" not in text and "Grad-CAM" not in text


def test_marks_are_stored_with_the_read_and_come_back_to_their_reader(studies):
    path, loc, _, readers = studies
    _, header = _sync(path, loc, readers[loc])
    marks = [{"slice": 0, "x": 40, "y": 51}, {"slice": 0, "x0": 70, "y0": 20, "x1": 60, "y1": 31}]
    reply, _ = _sync(path, loc, readers[loc], pending=(_answer(header, 1, marks),))
    assert len(reply.acks) == 1
    with db.connect(path) as conn:
        stored = db.read_marks_frame(conn, loc)
        audit = db.audit_frame(conn, loc)
    assert stored[["kind", "x0", "y0", "x1", "y1"]].values.tolist() == [
        ["point", 40, 51, 40, 51], ["box", 60, 20, 70, 31],
    ]  # fmt: skip
    assert stored["sop_instance_uid"].str.len().min() > 10 and stored["image_id"].notna().all()
    assert stored["row_spacing_mm"].notna().all()
    assert audit["new"].iloc[-1]["marks"][0]["x0"] == 40
    _, again = _sync(path, loc, readers[loc], at=1)
    first = next(c for c in again["cases"] if c["position"] == 1)
    assert first["answer"]["marks"] == [
        {"slice": 0, "x": 40, "y": 51}, {"slice": 0, "x0": 60, "y0": 20, "x1": 70, "y1": 31}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("marks", "reason"),
    [
        ([{"slice": 0, "x": 100000, "y": 3}], "x 100000 is not a whole pixel"),
        ([{"slice": 7, "x": 1, "y": 3}], "slice 7 is not a whole pixel"),
        ([{"slice": 0, "x": 1.5, "y": 3}], "x 1.5 is not a whole pixel"),
        ([{"slice": 0, "x": 1, "y": 1}] * 21, "at most 20 marks"),
        (["here"], "is not a mark"),
    ],
)
def test_a_bad_mark_refuses_the_answer_with_a_reason_and_stores_nothing(studies, marks, reason):
    path, loc, _, readers = studies
    _, header = _sync(path, loc, readers[loc])
    reply, after = _sync(path, loc, readers[loc], pending=(_answer(header, 1, marks),))
    assert not reply.acks and reason in after["refused"][0][1]
    with db.connect(path) as conn:
        assert db.reads_frame(conn, loc).empty and db.read_marks_frame(conn, loc).empty


def test_a_plain_study_refuses_marks(studies):
    path, _, plain, readers = studies
    _, header = _sync(path, plain, readers[plain])
    marks = [{"slice": 0, "x": 1, "y": 1}]
    _, after = _sync(path, plain, readers[plain], pending=(_answer(header, 1, marks),))
    assert "does not take lesion marks" in after["refused"][0][1]


ROI = (10, 10, 20, 20)  # pixels 10..19 in x and y


@pytest.mark.parametrize(
    ("x", "y", "radius", "hit"),
    [
        (19, 19, 0.0, True),  # the last pixel inside
        (20, 15, 0.0, False),  # one pixel out, no radius
        (24, 15, 2.5, True),  # 5 px x 0.5 mm = 2.5 mm: on the boundary is a hit
        (24, 15, 2.4999, False),
        (15, 23, 2.4, True),  # 4 rows x 0.6 mm = 2.4 mm (rows use the row spacing)
        (15, 23, 2.3999, False),
        (22, 23, 3.0, True),  # diagonal: hypot(3 x 0.5, 4 x 0.6) = hypot(1.5, 2.4) = 2.8302
        (22, 23, 2.83, False),
    ],
)
def test_hit_or_miss_at_the_acceptance_radius(x, y, radius, hit):
    mark = {"x0": x, "y0": y, "x1": x, "y1": y, "row_spacing_mm": 0.6, "col_spacing_mm": 0.5}
    assert localisation.is_hit(mark, ROI, localisation.HitRule(radius)) is hit


def test_a_box_mark_counts_by_its_centre_and_a_slice_without_roi_misses():
    box = {"x0": 0, "y0": 0, "x1": 30, "y1": 30, "row_spacing_mm": 1, "col_spacing_mm": 1}
    assert localisation.is_hit(box, ROI, localisation.HitRule(0))  # centre (15, 15)
    assert not localisation.is_hit(box, None, localisation.HitRule(50))
    nospacing = {"x0": 30, "y0": 15, "x1": 30, "y1": 15, "row_spacing_mm": None}
    assert not localisation.is_hit(nospacing, ROI, localisation.HitRule(50))


def test_stored_marks_are_scored_against_the_image_roi_with_the_study_radius(studies):
    from core.reader_study.slice_sources import slice_sources

    path, loc, _, _ = studies
    with db.connect(path) as conn:
        cases = db.get_study(conn, loc)["case_ids"]
        spacing = slice_sources(conn, cases[0])[0].decoded().pixel_spacing
        # the acceptance radius is 3 columns of this cohort's pixel spacing, whatever it is
        radius = 3 * spacing[1]
        study = db.create_study(conn, name="radius", case_ids=cases, localise=True,
                                hit_radius_mm=radius)  # fmt: skip
        reader, _ = db.add_reader(conn, study, "Dr Radius")
        work = db.worklist(conn, study, reader, "unaided")
        by_position = dict(zip(work["position"], work["case_id"], strict=True))
        rois = {p: db.images_frame(conn, c).iloc[0] for p, c in by_position.items()}
    _, header = _sync(path, study, reader)
    # case 1: 3 columns right of the ROI's last column (on the radius: a hit); case 2: 4 (a
    # miss); case 3: the ROI's first pixel
    offsets = {1: 3, 2: 4, 3: None}
    pending = []
    for position, offset in offsets.items():
        roi = rois[position]
        x = int(roi["roi_x0"]) if offset is None else int(roi["roi_x1"]) - 1 + offset
        mark = [{"slice": 0, "x": x, "y": int(roi["roi_y0"])}]
        pending.append(_answer(header, position, mark, attempt=f"scored-{position}-abcdef"))
    reply, _ = _sync(path, study, reader, pending=tuple(pending))
    assert len(reply.acks) == 3
    with db.connect(path) as conn:
        scored, rule = localisation.scored_reads(conn, study)
    assert f"within {radius:g} mm" in rule.describe()
    by_case = {r.case_id: [m["hit"] for m in r.marks] for r in scored.itertuples()}
    assert [by_case[by_position[p]] for p in (1, 2, 3)] == [[True], [False], [True]]


def _frame(rows):
    out = []
    for reader, case, truth, c_ac, marks in rows:
        out.append({"display_name": reader, "arm": "unaided", "case_id": case, "truth": truth,
                    "c_SCC": 1 - c_ac, "c_AC": c_ac, "c_ASC": 0.0,
                    "marks": [{"hit": h} for h in marks]})  # fmt: skip
    return pd.DataFrame(out)


def test_type_localisation_by_hand():
    # 2 AC cases, 2 SCC cases, two readers; the rating is the confidence in AC
    rows = [
        ("A", "c1", "AC", 0.9, [True]),  # localised
        ("A", "c2", "AC", 0.7, [False]),  # called AC, looking elsewhere
        ("A", "c3", "SCC", 0.8, [True]),  # a false positive for AC (marked)
        ("A", "c4", "SCC", 0.2, []),  # no mark
        ("B", "c1", "AC", 0.6, [False, True]),  # first mark missed, second hit
        ("B", "c2", "AC", 0.9, [True]),
        ("B", "c3", "SCC", 0.3, [True]),
        ("B", "c4", "SCC", 0.3, [True]),
    ]
    result = localisation.type_localisation(_frame(rows), localisation.HitRule(0), "AC")
    foms = result.foms.set_index("reader")
    # LROC (first mark decides): A: localised AC ratings {0.9}; vs SCC {0.8, 0.2}: 2 of 4 pairs
    # -> 0.5. B: c1's first mark missed; c2 (0.9) beats 0.3 and 0.3 -> 2 of 4 -> 0.5.
    assert foms.loc["A", "ALROC"] == pytest.approx(0.5)
    assert foms.loc["B", "ALROC"] == pytest.approx(0.5)
    # wAFROC (any hit counts; FP = rating if marked, -inf if not): A: LL {0.9, -inf} vs FP
    # {0.8, -inf}: 0.9 beats both (2); -inf vs 0.8 loses, vs -inf ties (0.5) -> 2.5 / 4.
    # B: LL {0.6, 0.9} vs FP {0.3, 0.3}: all 4 pairs won -> 1.
    assert foms.loc["A", "wAFROC"] == pytest.approx(0.625)
    assert foms.loc["B", "wAFROC"] == pytest.approx(1.0)
    assert result.wafroc_or is not None and result.wafroc_or.foms.shape == (2, 1)
    curve = result.curves[("A", "unaided")]["lroc"]
    np.testing.assert_allclose(curve.fpf, [0, 0, 0.5, 1])
    np.testing.assert_allclose(curve.pcl, [0, 0.5, 0.5, 0.5])


def test_exported_sr_files_read_back_with_highdicom_into_the_same_reads(studies, tmp_path):
    import pydicom

    from core.reader_study import structured_reports as sr

    path, loc, _, readers = studies
    _, header = _sync(path, loc, readers[loc])
    answers = [
        _answer(header, 1, [{"slice": 0, "x": 12, "y": 34}, {"slice": 0, "x0": 5, "y0": 6,
                                                             "x1": 40, "y1": 30}]),
        _answer(header, 2, [], label="ASC"),
    ]  # fmt: skip
    answers[1]["certainty"] = "unsure"
    reply, _ = _sync(path, loc, readers[loc], pending=tuple(answers))
    assert len(reply.acks) == 2
    result = sr.export_study_reports(loc, tmp_path / "sr", db_path=path)
    assert not result.problems and len(result.files) == 2
    with db.connect(path) as conn:
        reads = db.reads_frame(conn, loc).set_index("display_id")
        marks = db.read_marks_frame(conn, loc)
    back = {r.case: r for r in map(sr.read_report, result.files)}
    first, second = back[header["work"][0][1]], back[header["work"][1][1]]
    assert (first.reader, first.label, first.certainty) == ("Dr Mark", "AC", "certain")
    assert first.confidences == {"SCC": 5.0, "AC": 90.0, "ASC": 5.0}
    assert first.duration_s == pytest.approx(reads.loc[first.case, "duration_ms"] / 1000)
    uid = marks["sop_instance_uid"].iloc[0]
    assert first.marks == [
        {"sop_instance_uid": uid, "x": 12, "y": 34},
        {"sop_instance_uid": uid, "x0": 5, "y0": 6, "x1": 40, "y1": 30},
    ]
    assert (second.label, second.certainty, second.marks) == ("ASC", "unsure", [])
    ds = pydicom.dcmread(result.files[0])
    assert ds.Modality == "SR" and ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
    evidence = {
        item.ReferencedSOPInstanceUID
        for study in ds.CurrentRequestedProcedureEvidenceSequence
        for series in study.ReferencedSeriesSequence
        for item in series.ReferencedSOPSequence
    }
    assert uid in evidence  # the report references the source image it marks


def test_the_export_sr_command_writes_one_file_per_read(studies, tmp_path):
    import subprocess
    import sys

    path, loc, _, readers = studies
    _, header = _sync(path, loc, readers[loc])
    _sync(path, loc, readers[loc], pending=(_answer(header, 1, [{"slice": 0, "x": 3, "y": 4}]),))
    out = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "core.cli", "--db", str(path), "study", "export-sr",
         "--study", str(loc), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "wrote 1 SR file(s)" in done.stdout and len(list(out.glob("*.dcm"))) == 1


def test_the_reading_service_hides_the_roi_and_crop_in_a_localisation_study(studies):
    from core.reader_study import reading

    path, loc, plain, readers = studies
    shown = reading.case_for_reader(plain, readers[plain], "unaided", 1, db_path=path)
    assert shown.roi is not None and shown.crop is not None  # the plain study shows them
    hidden = reading.case_for_reader(loc, readers[loc], "unaided", 1, db_path=path)
    assert hidden.roi is None and hidden.crop is None and not any(hidden.rois)
    assert hidden.image is not None  # the slice itself is still there to be marked
