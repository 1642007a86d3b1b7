"""core.data.ingest on real DICOM files: the demo cohort round trip, every bad input, the cache, the CLI."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from core.cli import main
from core.project import home
from core.data.ingest import ingest_folder
from core.data.labels import CLASSES

HEADER = ["patient_id", "path", "label", "x0", "y0", "x1", "y1", "frame"]


def _manifest(path: Path) -> list[dict]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def _write_manifest(path: Path, rows: list[list]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(HEADER)
        writer.writerows(rows)


def _copy_subset(src: Path, dst: Path, n_rows: int) -> list[dict]:
    """Copy the first ``n_rows`` manifest rows of a cohort and their files into ``dst``."""
    rows = _manifest(src / "manifest.csv")[:n_rows]
    for row in rows:
        (dst / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / row["path"], dst / row["path"])
    _write_manifest(dst / "manifest.csv", [[r[c] for c in HEADER] for r in rows])
    return rows


# --- the demo cohort through ingestion ---------------------------------------------------------


@pytest.fixture(scope="module")
def cohort_result(small_cohort_dir):
    return ingest_folder(small_cohort_dir, progress=False)


def test_round_trip_keeps_every_image_case_and_label(small_cohort_dir, cohort_result):
    rows = _manifest(small_cohort_dir / "manifest.csv")
    result = cohort_result
    assert result.issues == []
    crops = result.crops
    assert crops.crops.shape == (len(rows), 100, 100)
    assert crops.crops.dtype == np.float32 and crops.crops.min() >= 0 and crops.crops.max() <= 1
    expected_ids = [f"internal/{r['patient_id']}:{r['path']}#0" for r in rows]
    assert crops.image_ids.tolist() == expected_ids
    truth = {f"internal/{r['patient_id']}": r["label"] for r in rows}
    case_ids, labels = crops.cases()
    assert {c: CLASSES[i] for c, i in zip(case_ids.tolist(), labels.tolist(), strict=True)} == truth
    assert np.bincount(labels, minlength=3).tolist() == [24, 10, 6]


def test_round_trip_case_and_image_records(small_cohort_dir, cohort_result):
    rows = _manifest(small_cohort_dir / "manifest.csv")
    cases = {c["case_id"]: c for c in cohort_result.cases}
    assert len(cases) == len({r["patient_id"] for r in rows})
    for case in cases.values():
        assert case["synthetic"] is True
        assert case["series_description"] == "T2 SAG"
        assert case["orientation"] == "sagittal"
    images = cohort_result.images
    assert len(images) == len(rows)
    for image, row in zip(images, rows, strict=True):
        assert Path(image["source_path"]) == (small_cohort_dir / row["path"]).resolve()
        assert Path(image["source_path"]).is_absolute()
        box = [image[k] for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1")]
        assert box == [float(row[k]) for k in ("x0", "y0", "x1", "y1")]
        assert (image["rows"], image["cols"]) == (128, 128)
        assert Path(image["crop_cache"]) == cohort_result.crop_cache
    assert [i["crop_index"] for i in images] == list(range(len(rows)))


def test_crop_matches_an_independent_computation(small_cohort_dir, cohort_result):
    """Recompute one crop with pydicom, numpy and Pillow only."""
    row = _manifest(small_cohort_dir / "manifest.csv")[3]
    pixels = pydicom.dcmread(small_cohort_dir / row["path"]).pixel_array.astype(np.float64)
    lo, hi = np.percentile(pixels, [1, 99])
    norm = np.clip((pixels - lo) / (hi - lo), 0, 1).astype(np.float32)
    x0, y0, x1, y1 = (float(row[k]) for k in ("x0", "y0", "x1", "y1"))
    side = int(round(max(x1 - x0, y1 - y0) * 1.2))  # margin 0.1 on each side
    left, top = int(round((x0 + x1) / 2 - side / 2)), int(round((y0 + y1) / 2 - side / 2))
    padded = np.pad(norm, side)  # zeros outside the image
    window = padded[top + side : top + 2 * side, left + side : left + 2 * side]
    expected = np.asarray(Image.fromarray(window, mode="F").resize((100, 100), Image.BILINEAR))
    np.testing.assert_allclose(cohort_result.crops.crops[3], expected, atol=0.01)


def test_small_crops_fixture_is_the_ingested_cohort(small_crops, cohort_result):
    assert small_crops.data_hash() == cohort_result.crops.data_hash()


# --- the cache -----------------------------------------------------------------------------------


def test_reingest_uses_the_cache_until_a_file_or_parameter_changes(small_cohort_dir, tmp_path):
    rows = _copy_subset(small_cohort_dir, tmp_path, 4)
    first = ingest_folder(tmp_path, progress=False)
    assert not first.from_cache and first.crop_cache.parent == home.cache_dir("crops")
    again = ingest_folder(tmp_path, progress=False)
    assert again.from_cache and again.cache_key == first.cache_key
    np.testing.assert_array_equal(again.crops.crops, first.crops.crops)
    assert again.images == first.images and again.cases == first.cases

    assert ingest_folder(tmp_path, margin=0.2, progress=False).cache_key != first.cache_key
    assert ingest_folder(tmp_path, crop_size=64, progress=False).crops.crop_size == 64

    # Same file name, different bytes: a brighter slice must be re-read, not served from cache.
    path = tmp_path / rows[0]["path"]
    ds = pydicom.dcmread(path)
    ds.decompress()
    ds.PixelData = (ds.pixel_array // 2).astype(np.uint16).tobytes()
    ds.save_as(path)
    changed = ingest_folder(tmp_path, progress=False)
    assert not changed.from_cache and changed.cache_key != first.cache_key


def test_ingestion_writes_nothing_into_a_read_only_data_folder(small_cohort_dir, tmp_path):
    data = tmp_path / "data"
    _copy_subset(small_cohort_dir, data, 4)
    before = sorted(p.relative_to(data) for p in data.rglob("*"))
    for path in [data, *data.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        result = ingest_folder(data, progress=False, cache_dir=tmp_path / "elsewhere")
    finally:
        for path in [data, *data.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert result.errors == [] and result.crops.n_images == 4
    assert result.crop_cache.parent == tmp_path / "elsewhere"
    assert sorted(p.relative_to(data) for p in data.rglob("*")) == before


# --- bad input: one clear line each, the rest ingested -------------------------------------------


def _other_patient(src: Path, n: int) -> pydicom.Dataset:
    """The image of ``src`` with one pixel changed, so another patient does not share its pixels
    (ingestion refuses one image filed under two patients)."""
    ds = pydicom.dcmread(src)
    ds.decompress()
    pixels = ds.pixel_array.copy()
    pixels[0, 0] += n
    ds.PixelData = pixels.tobytes()
    return ds


@pytest.fixture(scope="module")
def bad_folder(small_cohort_dir, tmp_path_factory):
    """Five good rows plus one row per kind of bad input."""
    root = tmp_path_factory.mktemp("bad_input")
    good = _copy_subset(small_cohort_dir, root, 5)
    src = root / good[0]["path"]
    data = src.read_bytes()

    (root / "bad").mkdir()
    (root / "bad/notes.dcm").write_text("not an image")
    (root / "bad/truncated.dcm").write_bytes(data[: len(data) // 2])
    ds = pydicom.dcmread(src)
    del ds.PixelData
    ds.save_as(root / "bad/header_only.dcm")
    ds = pydicom.dcmread(src)
    ds.Modality = "CT"
    ds.save_as(root / "bad/ct.dcm")
    ds = _other_patient(src, 1)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.SeriesDescription = "T1 AX"
    ds.save_as(root / "bad/axial_t1.dcm")
    for name in ("lsil", "roi", "conflict", "empty_box", "frame"):
        shutil.copyfile(src, root / f"bad/{name}.dcm")
    _other_patient(src, 2).save_as(root / "bad/masked.dcm")
    # Two frames, the second the mirror image in intensity of the first.
    ds = _other_patient(src, 3)
    first = ds.pixel_array.astype(np.uint16)
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([first, 4095 - first]).astype(np.uint16).tobytes()
    ds.save_as(root / "bad/multi.dcm")
    mask = np.zeros((128, 128), np.uint8)
    mask[50:70, 40:66] = 1
    np.save(root / "bad/mask.npy", mask)

    g = [[r[c] for c in HEADER] for r in good]
    box = ["40", "40", "70", "70", "0"]
    rows = (
        g
        + [
            ["BAD-01", "bad/notes.dcm", "SCC", *box],  # line 7
            ["BAD-02", "bad/truncated.dcm", "SCC", *box],  # 8
            ["BAD-03", "bad/header_only.dcm", "AC", *box],  # 9
            ["BAD-04", "bad/ct.dcm", "AC", *box],  # 10
            ["BAD-05", "bad/gone.dcm", "SCC", *box],  # 11
            ["BAD-06", "bad/lsil.dcm", "LSIL", *box],  # 12
            g[2],  # 13: duplicate of line 4
            ["BAD-08", "bad/roi.dcm", "SCC", "100", "100", "140", "140", "0"],  # 14
            [g[0][0], "bad/conflict.dcm", "ASC" if g[0][2] != "ASC" else "AC", *box],  # 15
            ["BAD-10", "bad/empty_box.dcm", "SCC", "50", "50", "50", "60", "0"],  # 16
            ["BAD-11", "bad/frame.dcm", "SCC", *box[:4], "2"],  # 17
            ["WARN-12", "bad/axial_t1.dcm", "ASC", *box],  # 18: ingested with a warning
            ["MASK-13", "bad/masked.dcm", "AC", "", "", "", "", "0"],  # 19: mask column below
        ]
    )
    _write_manifest(root / "manifest.csv", rows)
    # Row 19 gives its lesion as a mask instead of a box: add a mask column.
    lines = (root / "manifest.csv").read_text().splitlines()
    lines = [line + (",mask" if i == 0 else ",") for i, line in enumerate(lines)]
    lines[-1] += "bad/mask.npy"
    lines += [
        "MULTI-14,bad/multi.dcm,SCC,40,40,70,70,1,",
        "MULTI-14,bad/multi.dcm,SCC,40,40,70,70,0,",
    ]
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root, good


@pytest.fixture(scope="module")
def bad_result(bad_folder):
    return ingest_folder(bad_folder[0], progress=False)


BAD_CASES = [
    (7, "error", r"^not a DICOM file"),
    (8, "error", r"^truncated file"),
    (9, "error", r"^no pixel data"),
    (10, "error", r"^Modality is 'CT', expected MR"),
    (11, "error", r"^file not found: .*bad/gone\.dcm$"),
    (12, "error", r"^unknown label 'LSIL': expected one of SCC, AC, ASC$"),
    (13, "error", r"^duplicate row: DEMO-\d+/IM\d+\.dcm frame 0 is already listed in row 4$"),
    (14, "error", r"^ROI 100,100,140,140 lies outside the 128x128 image$"),
    (15, "error", r"^patient DEMO-0001 is labelled (ASC|AC) here but \w+ in row 2"),
    (16, "error", r"^lesion box 50,50,50,60 is empty"),
    (17, "error", r"^frame 2 out of range; the file has 1 frame"),
    (18, "warning", r"orientation is axial, not sagittal; SeriesDescription 'T1 AX' does not"),
]


@pytest.mark.parametrize(
    "row, level, pattern",
    BAD_CASES,
    ids=[
        "not-dicom",
        "truncated",
        "no-pixel-data",
        "wrong-modality",
        "missing-file",
        "unknown-label",
        "duplicate-row",
        "roi-outside",
        "conflicting-label",
        "empty-box",
        "frame-out-of-range",
        "not-t2-sagittal",
    ],
)
def test_each_bad_row_has_one_clear_issue(bad_result, row, level, pattern):
    found = [i for i in bad_result.issues if i.row == row]
    assert len(found) == 1, found
    assert found[0].level == level
    assert found[0].path != ""

    assert re.search(pattern, found[0].problem), found[0].problem


def test_the_rest_is_ingested(bad_folder, bad_result):
    root, good = bad_folder
    ingested = {i.split(":")[0].removeprefix("internal/") for i in bad_result.crops.image_ids}
    assert ingested == {r["patient_id"] for r in good} | {"WARN-12", "MASK-13", "MULTI-14"}
    assert bad_result.crops.n_images == len(good) + 4
    assert len(bad_result.errors) == 11 and len(bad_result.warnings) == 1
    assert not [i for i in bad_result.issues if i.row in (2, 3, 4, 5, 6, 19, 20, 21)]


def test_frame_column_selects_the_frame(bad_result):
    ids = bad_result.crops.image_ids.tolist()
    frame1 = bad_result.crops.crops[ids.index("internal/MULTI-14:bad/multi.dcm#1")]
    frame0 = bad_result.crops.crops[ids.index("internal/MULTI-14:bad/multi.dcm#0")]
    # Inverting intensities mirrors the percentiles too, so the normalised crops sum to one.
    np.testing.assert_allclose(frame1, 1 - frame0, atol=0.02)
    assert frame0.std() > 0.05


def test_mask_gives_the_box(bad_result):
    image = next(i for i in bad_result.images if i["case_id"] == "internal/MASK-13")
    assert [image[k] for k in ("roi_x0", "roi_y0", "roi_x1", "roi_y1")] == [40, 50, 66, 70]


def test_report_csv_lists_every_issue(bad_result):
    with bad_result.report_csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(int(r["row"]), r["level"], r["problem"]) for r in rows] == [
        (i.row, i.level, i.problem) for i in bad_result.issues
    ]
    assert len(rows) == 12
    summary = bad_result.summary()
    assert "11 errors (rows skipped), 1 warnings" in summary
    assert "row 14 (" in summary and str(bad_result.report_csv) in summary


def test_manifest_without_required_columns(tmp_path):
    (tmp_path / "manifest.csv").write_text("patient,file\nP1,a.dcm\n")
    with pytest.raises(ValueError, match=r"has columns patient, file; it needs patient_id, path"):
        ingest_folder(tmp_path, progress=False)


def test_missing_manifest_or_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"manifest not found: .*manifest\.csv"):
        ingest_folder(tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match=r"data folder not found: .*nowhere"):
        ingest_folder(tmp_path / "nowhere", progress=False)


# --- the database and the CLI --------------------------------------------------------------------


def test_records_cases_images_and_issues_in_the_database(bad_folder, tmp_path):
    db = pytest.importorskip("db")
    if not hasattr(db, "connect"):
        pytest.skip("db layer not present")
    path = tmp_path / "ingest.db"
    conn = db.connect(path)
    result = ingest_folder(bad_folder[0], conn=conn, progress=False)
    conn.close()

    conn = db.connect(path)  # reopened: the writes were committed
    cases = db.cases_frame(conn)
    assert set(cases["case_id"]) == set(result.crops.case_ids.tolist())
    assert len(db.images_frame(conn)) == result.crops.n_images
    latest = db.latest_ingestion(conn)
    assert latest["ingestion_id"] == result.ingestion_id
    assert len(db.ingestion_issues_frame(conn, result.ingestion_id)) == len(result.issues)
    conn.close()


def test_cli_ingest_exit_codes(bad_folder, tmp_path, capsys):
    root, _ = bad_folder
    report = tmp_path / "report.csv"
    assert main(["ingest", str(root), "--no-db", "--quiet", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "ingested 9 images" in out and "11 errors" in out
    assert report.is_file() and len(_manifest(report)) == 12

    only_bad = tmp_path / "only_bad.csv"
    only_bad.write_text("patient_id,path,label,x0,y0,x1,y1\nP1,gone.dcm,SCC,1,1,5,5\n")
    rc = main(["ingest", str(root), "--manifest", str(only_bad), "--no-db", "--quiet"])
    assert rc == 1
    assert "nothing usable was ingested" in capsys.readouterr().out


def test_paths_outside_the_data_folder_are_refused(small_cohort_dir, tmp_path):
    """A manifest may only point inside its folder, even at a readable DICOM next door."""
    data = tmp_path / "data"
    good = _copy_subset(small_cohort_dir, data, 2)
    outside = tmp_path / "outside.dcm"
    shutil.copyfile(small_cohort_dir / good[0]["path"], outside)
    box = ["40", "40", "70", "70", "0"]
    rows = [[r[c] for c in HEADER] for r in good] + [
        ["OUT-1", "../outside.dcm", "SCC", *box],  # line 4
        ["OUT-2", str(outside), "SCC", *box],  # 5
        ["OUT-3", "DEMO-0001/../../outside.dcm", "SCC", *box],  # 6
        ["OUT-4", "C:\\scans\\outside.dcm", "SCC", *box],  # 7
    ]
    _write_manifest(data / "manifest.csv", rows)

    result = ingest_folder(data, progress=False)

    assert result.crops.n_images == 2
    assert sorted(i.row for i in result.errors) == [4, 5, 6, 7]
    for issue in result.errors:
        assert re.search(r"^path .+ must lie inside the data folder", issue.problem), issue
