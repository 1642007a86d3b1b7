"""Files built to hurt: decompression bombs and symbolic links out of the data folder.

Each is refused with one clear report line while the rest of the folder ingests.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import RLELossless, generate_uid

from core.data.dicom_io import DecodeLimits, DicomReadError, read_pixels
from core.data.ingest import ingest_folder

ROOT = Path(__file__).resolve().parents[3]
HEADER = "patient_id,path,label,x0,y0,x1,y1,mask\n"


def rle_bomb(path: Path, side: int) -> Path:
    """An 8-bit RLE file claiming ``side`` x ``side`` zero pixels: ~side**2/64 bytes on disk."""
    runs_per_row = side // 128
    segment = b"\x81\x00" * (runs_per_row * side)  # PackBits: repeat the next byte 128 times
    frame = struct.pack("<16L", 1, 64, *([0] * 14)) + segment
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = pydicom.uid.MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = RLELossless
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = (
        meta.MediaStorageSOPClassUID,
        meta.MediaStorageSOPInstanceUID,
    )
    ds.Modality, ds.PatientID = "MR", "BOMB"
    ds.Rows = ds.Columns = side
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=True)
    return path


@pytest.fixture
def folder(tmp_path):
    data = tmp_path / "data"
    (data / "clean").mkdir(parents=True)
    shutil.copyfile(get_testdata_file("MR_small.dcm", download=False), data / "clean" / "a.dcm")
    return data


def test_a_bomb_is_refused_from_its_header_before_any_pixel_is_decoded(tmp_path):
    bomb = rle_bomb(tmp_path / "bomb.dcm", 16384)
    assert bomb.stat().st_size < 5 * 2**20
    with pytest.raises(DicomReadError, match=r"16384x16384 pixels per frame is over the limit"):
        read_pixels(bomb)
    small = DecodeLimits(max_pixels_per_frame=63 * 64)
    with pytest.raises(DicomReadError, match="over the limit of 4,032"):
        read_pixels(get_testdata_file("MR_small.dcm", download=False), limits=small)


# VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of a large pytest process
# would report the parent's size.
INGEST_AND_MEASURE = """
import json, re, sys
from pathlib import Path
from core.data.ingest import ingest_folder
result = ingest_folder(sys.argv[1], progress=False)
peak = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
print(json.dumps({
    "ingested": sorted({c.removeprefix("internal/") for c in result.crops.case_ids.tolist()}),
    "errors": [[i.path, i.problem] for i in result.errors],
    "peak_kib": int(peak),
}))
"""


def test_a_16384_square_bomb_is_one_error_line_and_the_folder_still_ingests_under_1_gb(folder):
    rle_bomb(folder / "bomb.dcm", 16384)
    (folder / "manifest.csv").write_text(
        HEADER + "P1,clean/a.dcm,SCC,10,10,50,50,\nP2,bomb.dcm,AC,10,10,50,50,\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", INGEST_AND_MEASURE, str(folder)],
        capture_output=True, text=True, cwd=ROOT, timeout=300, check=True,
    )  # fmt: skip
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["ingested"] == ["P1"]
    assert got["errors"] == [
        ["bomb.dcm", "16384x16384 pixels per frame is over the limit of 16,777,216 (refused "
         "before decoding)"],
    ]  # fmt: skip
    assert got["peak_kib"] < 1024 * 1024, f"peak {got['peak_kib'] / 1024:.0f} MiB"


def test_a_link_to_a_file_outside_the_folder_is_reported_and_not_read(folder, tmp_path):
    secret = tmp_path / "outside.dcm"
    shutil.copyfile(folder / "clean" / "a.dcm", secret)
    os.symlink(secret, folder / "innocent.dcm")
    os.symlink("/", folder / "rootlink")
    (folder / "manifest.csv").write_text(
        HEADER
        + "P1,clean/a.dcm,SCC,10,10,50,50,\n"
        + "P2,innocent.dcm,AC,10,10,50,50,\n"
        + "P3,rootlink/etc/passwd,AC,10,10,50,50,\n"
    )
    result = ingest_folder(folder, progress=False, use_cache=False)
    assert sorted(set(result.crops.case_ids)) == ["internal/P1"]
    problems = {i.path: i.problem for i in result.errors}
    assert problems == {
        "innocent.dcm": "innocent.dcm leads outside the data folder through a symbolic link; "
        "not read",
        "rootlink/etc/passwd": "rootlink/etc/passwd leads outside the data folder through a "
        "symbolic link; not read",
    }
    assert all(secret.as_posix() not in str(i.problem) for i in result.issues)


def test_a_linked_folder_inside_the_data_folder_is_fine(folder):
    os.symlink(folder / "clean", folder / "alias")
    (folder / "manifest.csv").write_text(HEADER + "P1,alias/a.dcm,SCC,10,10,50,50,\n")
    assert ingest_folder(folder, progress=False).crops.n_images == 1


def test_a_mask_linked_outside_the_folder_is_reported_and_not_read(folder, tmp_path):
    import numpy as np

    np.save(tmp_path / "mask.npy", np.ones((64, 64), dtype=np.uint8))
    os.symlink(tmp_path / "mask.npy", folder / "mask.npy")
    (folder / "manifest.csv").write_text(HEADER + "P1,clean/a.dcm,SCC,,,,,mask.npy\n")
    result = ingest_folder(folder, progress=False)
    assert result.crops.n_images == 0
    assert [i.problem for i in result.errors] == [
        "lesion mask mask.npy leads outside the data folder through a symbolic link; not read"
    ]


def test_one_image_filed_under_two_patients_is_an_error_naming_both(folder):
    shutil.copyfile(folder / "clean" / "a.dcm", folder / "clean" / "copy.dcm")
    (folder / "manifest.csv").write_text(
        HEADER + "P1,clean/a.dcm,SCC,10,10,50,50,\nP9,clean/copy.dcm,SCC,12,12,40,40,\n"
    )
    result = ingest_folder(folder, progress=False)
    assert sorted(set(result.crops.case_ids)) == ["internal/P1"]
    [error] = result.errors
    assert (error.row, error.path) == (3, "clean/copy.dcm")
    assert "same pixels as clean/a.dcm (row 2) of patient P1" in error.problem
    assert "patients P1 and P9 may be one person filed twice" in error.problem


@pytest.mark.parametrize(
    "row, problem",
    [
        ("P2,clean/b.dcm,SCC,10,10,50,50,", None),
        ("P3,clean/b.dcm,AC,10,10,50,50,\u00b2", "frame '\u00b2' is not a whole number >= 0"),
        ("P4,clean/b.dcm,AC,10,10,50,50,99999999999", "frame '99999999999' is not a whole"),
        ("P" + "9" * 200 + ",clean/b.dcm,AC,10,10,50,50,", "patient_id is 201 characters long"),
        ("P5,clean/" + "b" * 2000 + ".dcm,AC,10,10,50,50,", "path is 2,010 characters long"),
    ],
    ids=["control", "unicode-superscript-frame", "huge-frame", "long-patient", "long-path"],
)
def test_odd_manifest_cells_are_one_line_each_and_never_stop_the_batch(folder, row, problem):
    header = "patient_id,path,label,x0,y0,x1,y1,frame\n"
    shutil.copyfile(folder / "clean" / "a.dcm", folder / "clean" / "b.dcm")
    (folder / "manifest.csv").write_text(header + "P1,clean/a.dcm,SCC,10,10,50,50,0\n" + row + "\n")
    result = ingest_folder(folder, progress=False)
    assert "internal/P1" in set(result.crops.case_ids)
    problems = [i.problem for i in result.errors if i.row == 3]
    if problem is None:  # the control row is the same image under another patient
        assert problems and "same pixels" in problems[0]
    else:
        assert len(problems) == 1 and problems[0].startswith(problem)


@pytest.mark.parametrize("size", [100_000, 7, 12.5])
def test_an_impossible_crop_size_is_one_clear_error(folder, size):
    (folder / "manifest.csv").write_text(HEADER + "P1,clean/a.dcm,SCC,10,10,50,50,\n")
    with pytest.raises(ValueError, match=r"crop_size must be a whole number of pixels from 8 to"):
        ingest_folder(folder, crop_size=size, progress=False)


def test_a_decoder_warning_becomes_a_report_line_not_console_noise(folder, capsys):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(folder / "clean" / "a.dcm")
        ds.SeriesDescription = "T2 SAG " + "x" * 80  # longer than VR LO allows: pydicom warns
        ds.save_as(folder / "clean" / "a.dcm")
    (folder / "manifest.csv").write_text(HEADER + "P1,clean/a.dcm,SCC,10,10,50,50,\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning escaping ingestion would fail the test
        result = ingest_folder(folder, progress=True, use_cache=False)
    assert result.crops.n_images == 1 and result.errors == []
    [warned] = [i for i in result.warnings if i.problem.startswith("pydicom:")]
    assert "exceeds the maximum length of 64 allowed for VR LO" in warned.problem
    assert "exceeds the maximum length" not in capsys.readouterr().err


def test_the_cli_sends_decoder_warnings_to_the_log_not_the_terminal(folder, tmp_path):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(folder / "clean" / "a.dcm")
        ds.SeriesDescription = "T2 SAG " + "x" * 80
        ds.save_as(folder / "clean" / "a.dcm")
    (folder / "manifest.csv").write_text(HEADER + "P1,clean/a.dcm,SCC,10,10,50,50,\n")
    home = tmp_path / "home"
    out = subprocess.run(
        [sys.executable, "-m", "core.cli", "ingest", str(folder), "--home", str(home),
         "--db", str(tmp_path / "x.db")],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "exceeds the maximum length" not in out.stderr
    assert "exceeds the maximum length of 64" in (home / "cervixscope.log").read_text()
