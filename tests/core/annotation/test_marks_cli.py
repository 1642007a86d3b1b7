"""The annotation commands: an annotator's code printed once and usable, a SEG imported onto a
case, and every marked case exported as a SEG highdicom reads; a bad file is one line, exit 2."""

from __future__ import annotations

import re

import highdicom
import numpy as np

import db
from core.annotation.marks import case_slices, save_drawn
from core.cli import main


def test_annotator_add_prints_a_code_that_signs_in(unmarked_db, tmp_path, capsys):
    path = unmarked_db.conn.execute("PRAGMA database_list").fetchone()[2]
    assert main(["--db", path, "annotator", "add", "Dr Cli"]) == 0
    code = re.search(r"access code (A\d+-[A-Z0-9-]+)", capsys.readouterr().out).group(1)
    assert db.authenticate_annotator(unmarked_db, code).display_name == "Dr Cli"
    assert main(["--db", path, "annotator", "revoke", code[1:].split("-")[0]]) == 0
    events = db.security_audit_frame(unmarked_db)["event"].tolist()
    assert "annotator_added" in events and "annotator_code_revoked" in events


def test_marks_export_then_import_round_trips(unmarked_db, tmp_path, capsys):
    path = unmarked_db.conn.execute("PRAGMA database_list").fetchone()[2]
    case_id = str(db.cases_frame(unmarked_db).sort_values("case_id")["case_id"].iloc[0])
    save_drawn(
        unmarked_db, case_id, "Dr A", [{"slice": 0, "kind": "box", "points": [[5, 6], [30, 40]]}]
    )
    assert main(["--db", path, "marks", "export", "--author", "Dr A", "--out", str(tmp_path)]) == 0
    (seg_file,) = tmp_path.glob("*.seg.dcm")
    uid = case_slices(unmarked_db, case_id)[0].sop_instance_uid
    seg = highdicom.seg.segread(str(seg_file))
    mask = seg.get_pixels_by_source_instance([uid], combine_segments=True)[0] != 0
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (5, 6, 30, 40)
    patient = db.split_case_key(case_id)[1]
    assert main(["--db", path, "marks", "import", str(seg_file), "--patient", patient,
                 "--author", "Dr B"]) == 0  # fmt: skip
    stored = db.current_marks_frame(unmarked_db, case_id=case_id).set_index("author")
    assert stored.loc["Dr B", "geometry"] == stored.loc["Dr A", "geometry"]
    assert stored.loc["Dr B", "origin"] == "dicom-seg"


def test_a_bad_mask_file_is_one_line_and_exit_2(unmarked_db, tmp_path, capsys):
    path = unmarked_db.conn.execute("PRAGMA database_list").fetchone()[2]
    patient = db.split_case_key(str(db.cases_frame(unmarked_db)["case_id"].iloc[0]))[1]
    junk = tmp_path / "junk.nii"
    junk.write_bytes(b"\x00" * 50)
    assert main(["--db", path, "marks", "import", str(junk), "--patient", patient]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "junk.nii: not a readable NIfTI file" in err[0]
    assert main(["--db", path, "marks", "import", str(junk), "--patient", "NOBODY"]) == 2
    assert "no case internal/NOBODY" in capsys.readouterr().err


def test_cervixscope_ingest_after_annotation_crops_what_a_boxed_manifest_crops(
    unmarked_db, tiny_cohort, tmp_path, capsys
):
    from core.data.ingest import ingest_folder
    from tests.core.annotation.test_ingest_from_marks import draw_manifest_boxes

    path = unmarked_db.conn.execute("PRAGMA database_list").fetchone()[2]
    draw_manifest_boxes(unmarked_db, tiny_cohort, "Dr A")
    manifest = str(tiny_cohort / "manifest_no_boxes.csv")
    assert main(["--db", path, "ingest", str(tiny_cohort), "--manifest", manifest, "--quiet"]) == 0
    assert "0 errors" in capsys.readouterr().out
    ingestion = db.latest_ingestion(unmarked_db)
    used = db.ingestion_marks_frame(unmarked_db, ingestion["ingestion_id"])
    boxed = ingest_folder(tiny_cohort, progress=False, cache_dir=tmp_path / "c").crops
    from_marks = np.load(ingestion["crop_cache"])
    order, other = np.argsort(from_marks["image_ids"]), np.argsort(boxed.image_ids)
    assert np.array_equal(from_marks["crops"][order], boxed.crops[other])
    assert len(used) == boxed.n_images and set(used["author"]) == {"Dr A"}
