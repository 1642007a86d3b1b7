"""DICOM SEG written by highdicom and NIfTI written by nibabel import to the box they encode; an
exported SEG reads back with highdicom into the same mask. Bad files: one line, nothing stored."""

from __future__ import annotations

import highdicom
import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

import db
from core.annotation.formats import MaskImportError, export_seg, import_nifti, import_seg
from core.annotation.marks import case_slices, marks_on_slices, save_drawn
from core.data.mark_geometry import Mark, mark_mask

BOX = (21, 34, 57, 61)  # x0, y0, x1, y1


def box_mask(rows, cols, x0, y0, x1, y1):
    mask = np.zeros((rows, cols), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def first_case(conn):
    cases = db.cases_frame(conn).sort_values("case_id")
    return str(cases["case_id"].iloc[0]), str(cases["case_id"].iloc[1])


def write_seg(path, source: pydicom.Dataset, mask: np.ndarray):
    for keyword in ("PatientBirthDate", "ReferringPhysicianName"):
        setattr(source, keyword, getattr(source, keyword, ""))  # type 2, absent in the demo files
    description = highdicom.seg.SegmentDescription(
        segment_number=1,
        segment_label="lesion",
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm,
        algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    seg = highdicom.seg.Segmentation(
        source_images=[source], pixel_array=mask[None].astype(np.uint8),
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=highdicom.UID(),
        series_number=5, sop_instance_uid=highdicom.UID(), instance_number=1,
        manufacturer="Test", manufacturer_model_name="Test", software_versions="1",
        device_serial_number="1",
    )  # fmt: skip
    seg.save_as(path)


def nifti_affine(ds) -> np.ndarray:
    """The voxel (column, row, 0) -> RAS mm affine of a single slice, the way dcm2niix-like tools
    build it: LPS direction cosines scaled by spacing, x and y negated into RAS."""
    iop = np.asarray(ds.ImageOrientationPatient, float)
    row_mm, col_mm = (float(v) for v in ds.PixelSpacing)
    normal = np.cross(iop[:3], iop[3:])
    lps = np.eye(4)
    lps[:3, 0] = iop[:3] * col_mm
    lps[:3, 1] = iop[3:] * row_mm
    lps[:3, 2] = normal * float(ds.SliceThickness)
    lps[:3, 3] = np.asarray(ds.ImagePositionPatient, float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps


def test_a_highdicom_seg_imports_to_the_box_it_encodes(unmarked_db, tmp_path):
    case_id, _ = first_case(unmarked_db)
    slices = case_slices(unmarked_db, case_id)
    source = pydicom.dcmread(slices[0].source.path)
    write_seg(tmp_path / "lesion.seg.dcm", source, box_mask(slices[0].rows, slices[0].cols, *BOX))
    version = import_seg(unmarked_db, tmp_path / "lesion.seg.dcm", case_id, slices, "Dr Seg")
    marks = marks_on_slices(unmarked_db, case_id, slices)["Dr Seg"]
    assert version == 1 and len(marks) == 1
    assert marks[0]["kind"] == "box" and marks[0]["slice"] == 0
    assert marks[0]["points"] == [[BOX[0], BOX[1]], [BOX[2], BOX[3]]]
    versions = db.mark_versions_frame(unmarked_db, case_id)
    assert versions["origin"].tolist() == ["dicom-seg"]
    assert versions["origin_detail"].iloc[0].startswith("lesion.seg.dcm (sha256 ")


def test_a_nibabel_nifti_imports_to_the_box_it_encodes(unmarked_db, tmp_path):
    case_id, _ = first_case(unmarked_db)
    slices = case_slices(unmarked_db, case_id)
    ds = pydicom.dcmread(slices[0].source.path, stop_before_pixels=True)
    mask = box_mask(slices[0].rows, slices[0].cols, *BOX)
    volume = mask.T[:, :, None].astype(np.uint8)  # nibabel's first axis is the column
    nibabel.save(nibabel.Nifti1Image(volume, nifti_affine(ds)), tmp_path / "lesion.nii.gz")
    import_nifti(unmarked_db, tmp_path / "lesion.nii.gz", case_id, slices, "Dr Nii")
    marks = marks_on_slices(unmarked_db, case_id, slices)["Dr Nii"]
    assert [(m["kind"], m["points"]) for m in marks] == [
        ("box", [[BOX[0], BOX[1]], [BOX[2], BOX[3]]])
    ]


def test_an_exported_seg_reads_back_with_highdicom_into_the_same_mask(unmarked_db, tmp_path):
    case_id, _ = first_case(unmarked_db)
    slices = case_slices(unmarked_db, case_id)
    drawn = [
        {"slice": 0, "kind": "box", "points": [[10, 12], [30, 40]]},
        {"slice": 0, "kind": "polygon", "points": [[60, 60], [100, 64], [80, 110]]},
    ]
    save_drawn(unmarked_db, case_id, "Dr A", drawn)
    marks = marks_on_slices(unmarked_db, case_id, slices)["Dr A"]
    out = export_seg(marks, slices, tmp_path / "export" / "case.seg.dcm", author="Dr A")
    seg = highdicom.seg.segread(str(out))
    uid = slices[0].sop_instance_uid
    assert [u for _, _, u in seg.get_source_image_uids()] == [uid]
    got = seg.get_pixels_by_source_instance([uid], combine_segments=True)[0] != 0
    rows, cols = slices[0].rows, slices[0].cols
    expected = np.zeros((rows, cols), bool)
    for entry in drawn:
        expected |= mark_mask(Mark.from_json(entry), rows, cols)
    assert np.array_equal(got, expected)
    plain = pydicom.dcmread(out)
    assert plain.Modality == "SEG" and str(plain.ContentCreatorName) == "Dr A^"
    # and it comes back in as the same pixels
    import_seg(unmarked_db, out, case_id, slices, "Dr Back")
    back = marks_on_slices(unmarked_db, case_id, slices)["Dr Back"]
    assert np.array_equal(mark_mask(Mark.from_json(back[0]), rows, cols), expected)


def stored_versions(conn) -> int:
    return int(conn.conn.execute("SELECT COUNT(*) FROM mark_versions").fetchone()[0])


def test_a_seg_of_another_patients_image_names_the_file_and_stores_nothing(unmarked_db, tmp_path):
    case_id, other = first_case(unmarked_db)
    slices, other_slices = case_slices(unmarked_db, case_id), case_slices(unmarked_db, other)
    source = pydicom.dcmread(other_slices[0].source.path)
    write_seg(tmp_path / "other.dcm", source, box_mask(source.Rows, source.Columns, *BOX))
    with pytest.raises(MaskImportError, match=r"^other\.dcm: references 1 image\(s\), none of "
                       rf"them a slice of case {case_id}"):  # fmt: skip
        import_seg(unmarked_db, tmp_path / "other.dcm", case_id, slices, "Dr X")
    assert stored_versions(unmarked_db) == 0


def test_a_nifti_of_another_size_names_the_file_and_stores_nothing(unmarked_db, tmp_path):
    case_id, _ = first_case(unmarked_db)
    slices = case_slices(unmarked_db, case_id)
    ds = pydicom.dcmread(slices[0].source.path, stop_before_pixels=True)
    small = np.ones((64, 64, 1), np.uint8)
    nibabel.save(nibabel.Nifti1Image(small, nifti_affine(ds)), tmp_path / "small.nii")
    with pytest.raises(MaskImportError, match=r"^small\.nii: its voxel grid matches no slice"):
        import_nifti(unmarked_db, tmp_path / "small.nii", case_id, slices, "Dr X")
    (tmp_path / "junk.dcm").write_bytes(b"not dicom at all" * 20)
    with pytest.raises(MaskImportError, match=r"^junk\.dcm: not a readable DICOM SEG"):
        import_seg(unmarked_db, tmp_path / "junk.dcm", case_id, slices, "Dr X")
    assert stored_versions(unmarked_db) == 0


def test_hostile_drawn_marks_store_nothing(unmarked_db):
    from core.data.mark_geometry import MarkError

    case_id, _ = first_case(unmarked_db)
    fine = {"slice": 0, "kind": "box", "points": [[1, 1], [9, 9]]}
    huge = {"slice": 0, "kind": "polygon", "points": [[5, 5]] * 100_000}
    bowtie = {"slice": 0, "kind": "polygon", "points": [[10, 10], [30, 30], [30, 10], [10, 30]]}
    for bad, message in ((huge, "mark 2 .*100,000 points"), (bowtie, "mark 2 .*crosses itself"),
                         ({"slice": 7, "kind": "box", "points": [[1, 1], [2, 2]]},
                          "mark 2: slice 7 is not a slice of this case")):  # fmt: skip
        with pytest.raises(MarkError, match=message):
            save_drawn(unmarked_db, case_id, "Dr A", [fine, bad])
    assert stored_versions(unmarked_db) == 0


def without_references(path) -> None:
    """Strip a SEG's references to its source images (some tools write none): only the
    frames' positions and the frame of reference are left to match it by."""
    seg = pydicom.dcmread(path)
    del seg.ReferencedSeriesSequence
    for item in seg.PerFrameFunctionalGroupsSequence:
        if "DerivationImageSequence" in item:
            del item.DerivationImageSequence
    seg.save_as(path)


def test_a_seg_without_references_is_matched_by_position_in_its_frame_of_reference(
    unmarked_db, tmp_path
):
    case_id, other = first_case(unmarked_db)
    slices = case_slices(unmarked_db, case_id)
    source = pydicom.dcmread(slices[0].source.path)
    write_seg(tmp_path / "noref.dcm", source, box_mask(source.Rows, source.Columns, *BOX))
    without_references(tmp_path / "noref.dcm")
    import_seg(unmarked_db, tmp_path / "noref.dcm", case_id, slices, "Dr Pos")
    marks = marks_on_slices(unmarked_db, case_id, slices)["Dr Pos"]
    assert [(m["kind"], m["points"]) for m in marks] == [
        ("box", [[BOX[0], BOX[1]], [BOX[2], BOX[3]]])
    ]
    # the other patient's slices lie at the same positions, in another frame of reference
    theirs = pydicom.dcmread(case_slices(unmarked_db, other)[0].source.path)
    write_seg(tmp_path / "theirs.dcm", theirs, box_mask(theirs.Rows, theirs.Columns, *BOX))
    without_references(tmp_path / "theirs.dcm")
    with pytest.raises(MaskImportError, match=r"^theirs\.dcm: names no source image"):
        import_seg(unmarked_db, tmp_path / "theirs.dcm", case_id, slices, "Dr Pos")


def test_saving_the_same_marks_again_is_no_new_version(unmarked_db):
    case_id, _ = first_case(unmarked_db)
    marks = [{"slice": 0, "kind": "box", "points": [[3, 3], [20, 20]]}]
    assert save_drawn(unmarked_db, case_id, "Dr A", marks) == 1
    assert save_drawn(unmarked_db, case_id, "Dr A", marks) == 1
    assert save_drawn(unmarked_db, case_id, "Dr A", []) == 2  # removing them is a version
    _, other = first_case(unmarked_db)
    assert save_drawn(unmarked_db, other, "Dr A", []) == 0  # nothing on a never-marked case
    assert db.mark_versions_frame(unmarked_db, other).empty
