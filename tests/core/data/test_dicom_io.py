"""core.data.dicom_io: every transfer syntax decodes to the original pixels; rescale, MONOCHROME1, windows."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from core.data.dicom_io import DicomReadError, apply_window, orientation_label, read_pixels


def _testdata(name: str) -> str:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.fail(f"pydicom test file {name} is not installed with pydicom")
    return path


@pytest.fixture(scope="module")
def original() -> np.ndarray:
    """MR_small.dcm's stored pixels, read straight from the uncompressed bytes (no decoder)."""
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    raw = np.frombuffer(ds.PixelData, dtype="<i2").reshape(ds.Rows, ds.Columns)
    return raw.astype(np.float32)


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_expb.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
    ],
    ids=["explicit-le", "implicit-le", "explicit-be", "explicit-be-2", "rle", "j2k", "jpeg-ls"],
)
def test_pydicom_test_files_decode_to_original_pixels(name, original):
    image = read_pixels(_testdata(name))
    assert image.modality == "MR"
    np.testing.assert_array_equal(image.array, original)


def _mr_small_unsigned(tmp_path):
    """MR_small with its pixels shifted to unsigned 16-bit (the demo cohort's layout)."""
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    pixels = (ds.pixel_array.astype(np.int32) + 1000).astype(np.uint16)
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.tobytes()
    return ds, pixels


@pytest.mark.parametrize(
    "syntax",
    [RLELossless, JPEGLSLossless, JPEG2000Lossless],
    ids=["rle-encoded-here", "jpeg-ls-encoded-here", "j2k-encoded-here"],
)
def test_lossless_files_we_encode_decode_exactly(tmp_path, syntax):
    ds, pixels = _mr_small_unsigned(tmp_path)
    ds.compress(syntax, pixels)
    assert ds.file_meta.TransferSyntaxUID == syntax
    path = tmp_path / "x.dcm"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_array_equal(read_pixels(path).array, pixels.astype(np.float32))


def test_jpeg_baseline_decodes_close_to_original(tmp_path):
    # pydicom has no JPEG baseline encoder: encode 8-bit greyscale with Pillow and encapsulate.
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    arr = ds.pixel_array.astype(np.float64)
    pixels8 = np.rint((arr - arr.min()) / (arr.max() - arr.min()) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels8).save(buf, format="JPEG", quality=95)
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    path = tmp_path / "jpeg.dcm"
    ds.save_as(path, enforce_file_format=True)

    decoded = read_pixels(path).array
    error = np.abs(decoded - pixels8.astype(np.float32))
    assert decoded.shape == pixels8.shape
    assert error.mean() < 2.0 and error.max() < 40  # lossy, but the same picture
    assert np.corrcoef(decoded.ravel(), pixels8.ravel())[0, 1] > 0.99


def test_modality_rescale_is_applied(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = "2", "-100"
    path = tmp_path / "rescaled.dcm"
    ds.save_as(path)
    raw = ds.pixel_array.astype(np.float32)
    np.testing.assert_allclose(read_pixels(path).array, raw * 2 - 100)


def test_monochrome1_is_inverted_and_its_window_mirrored(tmp_path):
    ds, pixels = _mr_small_unsigned(tmp_path)
    ds.BitsStored, ds.HighBit = 12, 11
    pixels = np.minimum(pixels, 4095)
    ds.PixelData = pixels.tobytes()
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.WindowCenter, ds.WindowWidth = "1000", "400"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    image = read_pixels(path)
    # Mirrored within the 12-bit range 0..4095: brightest stored value becomes darkest.
    np.testing.assert_array_equal(image.array, 4095 - pixels.astype(np.float32))
    assert image.window_center == 4095 - 1000 and image.window_width == 400
    assert image.photometric == "MONOCHROME1"


def test_header_fields(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    ds.SeriesDescription = "T2 SAG"
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
    ds.PixelSpacing = [0.5, 0.75]
    ds.WindowCenter, ds.WindowWidth = ["600", "300"], ["1200", "400"]  # multi-valued: first wins
    path = tmp_path / "hdr.dcm"
    ds.save_as(path)
    image = read_pixels(path)
    assert (image.rows, image.cols, image.n_frames) == (64, 64, 1)
    assert image.series_description == "T2 SAG"
    assert image.orientation_label == "sagittal"
    assert image.pixel_spacing == (0.5, 0.75)
    assert (image.window_center, image.window_width) == (600.0, 1200.0)
    assert not image.synthetic


def test_voi_option_applies_the_window(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    ds.WindowCenter, ds.WindowWidth = "1000", "500"
    path = tmp_path / "voi.dcm"
    ds.save_as(path)
    out = read_pixels(path, voi=True).array
    raw = ds.pixel_array.astype(np.float64)
    # Linear VOI maps to the 16-bit signed output range; ordering is kept, extremes saturate.
    below, above = raw <= 1000 - 0.5 - 249.5, raw > 1000 - 0.5 + 249.5
    assert out[below].max() == out.min() and out[above].min() == out.max()
    assert np.all(np.diff(out.ravel()[np.argsort(raw.ravel(), kind="stable")]) >= 0)


@pytest.mark.parametrize(
    "iop, expected",
    [
        ([0, 1, 0, 0, 0, -1], "sagittal"),
        ([1, 0, 0, 0, 1, 0], "axial"),
        ([1, 0, 0, 0, 0, -1], "coronal"),
        ([0, 0.7071, 0.7071, 0.7071, 0, -0.7071], "oblique"),
        (None, "unknown"),
        ([0, 0, 0, 0, 0, 0], "unknown"),
    ],
    ids=["sagittal", "axial", "coronal", "oblique", "missing", "degenerate"],
)
def test_orientation_label(iop, expected):
    assert orientation_label(iop) == expected


def test_apply_window_hand_computed():
    # center 100, width 201: y = ((x - 99.5) / 200 + 0.5) * 255
    # x = -0.5 is the window floor (0); x = 0 gives 0.6375 -> 1; x = 99.5 gives 127.5 -> 128
    # (round half to even); x = 199.5 is the ceiling (255); beyond it saturates.
    x = np.array([-5.0, -0.5, 0.0, 99.5, 100.0, 199.5, 200.0, 1e6])
    expected = [0, 0, 1, 128, 128, 255, 255, 255]
    assert apply_window(x, 100, 201).tolist() == expected
    assert apply_window(np.array([50.0]), 100, 201)[0] == round((50 - 99.5) / 200 * 255 + 127.5)
    assert apply_window(x, 100, 201).dtype == np.uint8


def test_apply_window_rejects_bad_width():
    with pytest.raises(ValueError, match=r"width must be .* >= 1.*width=0"):
        apply_window(np.zeros(3), 10, 0)


def test_not_dicom(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("this is not DICOM")
    with pytest.raises(DicomReadError, match=r"notes\.dcm: not a DICOM file"):
        read_pixels(path)


def test_truncated_pixel_data(tmp_path):
    path = tmp_path / "cut.dcm"
    data = open(_testdata("MR_small.dcm"), "rb").read()
    path.write_bytes(data[: len(data) - 3000])
    with pytest.raises(DicomReadError, match=r"cut\.dcm: (pixel data could not be decoded|unread)"):
        read_pixels(path)


def test_pydicom_truncated_file():
    with pytest.raises(DicomReadError, match=r"MR_truncated\.dcm: "):
        read_pixels(_testdata("MR_truncated.dcm"))


def test_no_pixel_data(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    del ds.PixelData
    path = tmp_path / "header.dcm"
    ds.save_as(path)
    with pytest.raises(DicomReadError, match=r"header\.dcm: no pixel data"):
        read_pixels(path)


def test_frame_out_of_range():
    with pytest.raises(DicomReadError, match=r"frame 1 out of range; the file has 1 frame"):
        read_pixels(_testdata("MR_small.dcm"), frame=1)


@pytest.mark.filterwarnings("ignore:Expected explicit VR")  # pydicom's note on this test file
def test_colour_image_is_refused():
    with pytest.raises(DicomReadError, match=r"PhotometricInterpretation 'RGB'.*MONOCHROME"):
        read_pixels(_testdata("SC_rgb_jpeg.dcm"))


def test_missing_file(tmp_path):
    with pytest.raises(DicomReadError, match=r"nope\.dcm: file not found"):
        read_pixels(tmp_path / "nope.dcm")


def test_multi_frame_reads_the_requested_frame(tmp_path):
    ds = pydicom.dcmread(_testdata("MR_small.dcm"))
    frames = np.stack([ds.pixel_array + 100 * k for k in range(3)]).astype(np.int16)
    ds.NumberOfFrames = 3
    ds.PixelData = frames.tobytes()
    path = tmp_path / "multi.dcm"
    ds.save_as(path)
    for k in range(3):
        image = read_pixels(path, frame=k)
        assert image.n_frames == 3
        np.testing.assert_array_equal(image.array, frames[k].astype(np.float32))
    with pytest.raises(DicomReadError, match=r"frame 3 out of range; the file has 3 frame"):
        read_pixels(path, frame=3)
