"""Read one DICOM slice into a float array, whatever its transfer syntax, and window it for display.

Decoding goes through pydicom's pixel backends: native for uncompressed (little/big endian,
implicit VR) and RLE, ``pylibjpeg`` (libjpeg, openjpeg, rle) for JPEG baseline/lossless and
JPEG 2000, and ``pyjpegls`` for JPEG-LS. A file that cannot be read raises `DicomReadError`
whose message names the file and what was wrong, so ingestion can report it and move on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_modality_lut, apply_voi_lut, pixel_array

MONOCHROME = ("MONOCHROME1", "MONOCHROME2")


@dataclass(frozen=True)
class DecodeLimits:
    """What a file may ask the decoder for, checked from its header before any pixel is decoded.

    The defaults fit clinical MRI (at most 1024x1024 per slice, a few hundred frames) with a wide
    margin, and refuse decompression bombs: a 4 MB RLE file can claim 16384x16384 pixels.
    """

    max_pixels_per_frame: int = 4096 * 4096
    max_frames: int = 2048
    max_decoded_bytes: int = 1 << 30  # one frame as float32, with the decoder's own copy

    def problem(self, rows: int, cols: int, frames: int, bits: int) -> str | None:
        """Why a frame of this size is refused, or None (a missing size is the decoder's to report)."""
        if rows * cols > self.max_pixels_per_frame:
            return (
                f"{cols}x{rows} pixels per frame is over the limit of "
                f"{self.max_pixels_per_frame:,} (refused before decoding)"
            )
        if frames > self.max_frames:
            return (
                f"{frames} frames is over the limit of {self.max_frames} (refused before decoding)"
            )
        needed = rows * cols * max(bits // 8, 1) + rows * cols * 4
        if needed > self.max_decoded_bytes:
            return (
                f"decoding one {cols}x{rows} frame needs {needed / 2**20:,.0f} MiB, over the limit "
                f"of {self.max_decoded_bytes / 2**20:,.0f} MiB (refused before decoding)"
            )
        return None


DEFAULT_LIMITS = DecodeLimits()
SYNTHETIC_MARK = "SYNTHETIC - CervixScope demo"


class DicomReadError(Exception):
    """A DICOM file could not be read or decoded; the message says which file and why.

    ``path`` is the file and ``reason`` the problem alone, for reports that show the path apart.
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass(frozen=True)
class DicomImage:
    """One decoded slice.

    ``array`` holds float32 values after the modality LUT / rescale, with MONOCHROME1 already
    inverted so that higher always means brighter. ``window_center``/``window_width`` are the
    file's first VOI window (mirrored for MONOCHROME1), or ``None`` when the file has none.
    """

    array: np.ndarray
    rows: int
    cols: int
    modality: str
    series_description: str
    orientation: tuple[float, ...] | None
    orientation_label: str
    window_center: float | None
    window_width: float | None
    pixel_spacing: tuple[float, float] | None
    photometric: str
    n_frames: int
    patient_id: str
    synthetic: bool
    sop_instance_uid: str = ""  # names the slice a lesion mark belongs to


def orientation_label(iop: tuple[float, ...] | None) -> str:
    """Name the plane of an ImageOrientationPatient: sagittal, coronal, axial, oblique or unknown.

    The slice normal is the cross product of the row and column direction cosines; a sagittal
    slice has its normal along the patient x axis (rows and columns lie in the y/z plane).
    A plane is named when the normal is within ~37 degrees of an axis, otherwise "oblique".
    """
    if iop is None or len(iop) != 6:
        return "unknown"
    normal = np.cross(np.asarray(iop[:3], float), np.asarray(iop[3:], float))
    norm = np.linalg.norm(normal)
    if not np.isfinite(norm) or norm < 1e-6:
        return "unknown"
    normal = np.abs(normal / norm)
    axis = int(np.argmax(normal))
    if normal[axis] < 0.8:
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


def _first(value) -> float | None:
    """First number of a possibly multi-valued DICOM element, or None."""
    if value is None or value == "":
        return None
    if isinstance(value, pydicom.multival.MultiValue | list | tuple):
        value = value[0] if len(value) else None
    return None if value is None else float(value)


def _stored_range(ds: pydicom.Dataset) -> tuple[float, float]:
    """Smallest and largest values the stored pixels can take, after the modality rescale."""
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    else:
        lo, hi = 0, 2**bits - 1
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    a, b = lo * slope + intercept, hi * slope + intercept
    return min(a, b), max(a, b)


def read_pixels(
    path: str | Path, frame: int = 0, *, voi: bool = False, limits: DecodeLimits = DEFAULT_LIMITS
) -> DicomImage:
    """Read and decode one frame of a DICOM file.

    Parameters
    ----------
    path : str or Path
        The DICOM file.
    frame : int, default 0
        Frame index for multi-frame files (0 for single-frame files).
    voi : bool, default False
        Also apply the file's VOI LUT or window (pydicom's ``apply_voi_lut``). Off by default:
        ingestion normalises intensities by percentiles, which does not depend on how a scanner
        chose its display window.
    limits : DecodeLimits, optional
        Largest frame (pixels, bytes) and number of frames the header may ask for.

    Returns
    -------
    DicomImage
        The float32 pixel array (modality-rescaled, MONOCHROME1 inverted) and the header fields
        CervixScope needs.

    Raises
    ------
    DicomReadError
        If the file is missing, not DICOM, truncated, has no pixel data, has a photometric
        interpretation other than MONOCHROME1/2, if ``frame`` is out of range, if the header asks
        for more than ``limits`` allow, or if no installed decoder handles its transfer syntax.
    """
    path = Path(path)
    if not path.is_file():
        raise DicomReadError(path, "file not found")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        # pydicom's text ends with advice on force=True, which is not for our users.
        raise DicomReadError(
            path, "not a DICOM file (no 'DICM' prefix or file meta header)"
        ) from exc
    except Exception as exc:  # pydicom raises many types on a damaged header
        raise DicomReadError(
            path, f"unreadable DICOM header ({type(exc).__name__}: {exc})"
        ) from exc
    for warning in caught:
        # pydicom reads past a cut-off file with only a warning and drops the last element.
        if "end of file" in str(warning.message).lower():
            raise DicomReadError(path, f"truncated file ({warning.message})")
    try:
        return _decode(ds, path, frame, voi, limits)
    except DicomReadError:
        raise
    except Exception as exc:  # pydicom parses elements lazily: a damaged one fails on first use
        raise DicomReadError(path, f"damaged DICOM header ({type(exc).__name__}: {exc})") from exc


def _decode(
    ds: pydicom.Dataset, path: Path, frame: int, voi: bool, limits: DecodeLimits
) -> DicomImage:
    """The body of `read_pixels` once the file is open; any exception means a damaged file."""
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DicomReadError(path, "no pixel data (the file holds only a header)")
    photometric = str(ds.get("PhotometricInterpretation", "")).strip()
    if photometric not in MONOCHROME:
        raise DicomReadError(
            path,
            f"PhotometricInterpretation {photometric or 'missing'!r} is not supported; "
            "expected MONOCHROME1 or MONOCHROME2 (greyscale MRI)",
        )
    n_frames = int(ds.get("NumberOfFrames", 1) or 1)
    if not 0 <= frame < n_frames:
        raise DicomReadError(path, f"frame {frame} out of range; the file has {n_frames} frame(s)")
    size = (int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0))
    too_big = limits.problem(*size, n_frames, int(ds.get("BitsAllocated", 16) or 16))
    if too_big:
        raise DicomReadError(path, too_big)
    try:
        raw = pixel_array(ds, index=frame if n_frames > 1 else None)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:
        # Decoders raise ValueError/RuntimeError/EOFError on bad data; pylibjpeg-rle, written in
        # Rust, panics on some damaged RLE frames, and pyo3's PanicException is a BaseException.
        syntax = ds.file_meta.get("TransferSyntaxUID", "unknown transfer syntax")
        name = getattr(syntax, "name", str(syntax))
        raise DicomReadError(path, f"pixel data could not be decoded ({name}): {exc}") from exc
    if raw.ndim != 2:
        raise DicomReadError(path, f"expected one greyscale frame, got array shape {raw.shape}")

    array = np.asarray(apply_modality_lut(raw, ds), dtype=np.float32)
    center = _first(ds.get("WindowCenter"))
    width = _first(ds.get("WindowWidth"))
    if voi:
        array = np.asarray(apply_voi_lut(array, ds, index=0), dtype=np.float32)
    if photometric == "MONOCHROME1":
        # Mirror within the representable range so that the window can be mirrored the same way.
        lo, hi = _stored_range(ds)
        array = np.float32(lo + hi) - array
        if center is not None:
            center = lo + hi - center

    iop = ds.get("ImageOrientationPatient")
    orientation = tuple(float(v) for v in iop) if iop is not None and len(iop) == 6 else None
    spacing = ds.get("PixelSpacing")
    pixel_spacing = (
        (float(spacing[0]), float(spacing[1])) if spacing and len(spacing) == 2 else None
    )
    method = str(ds.get("DeidentificationMethod", "")) + " " + str(ds.get("ImageComments", ""))
    return DicomImage(
        array=array,
        rows=int(array.shape[0]),
        cols=int(array.shape[1]),
        modality=str(ds.get("Modality", "")).strip(),
        series_description=str(ds.get("SeriesDescription", "")).strip(),
        orientation=orientation,
        orientation_label=orientation_label(orientation),
        window_center=center,
        window_width=width,
        pixel_spacing=pixel_spacing,
        photometric=photometric,
        n_frames=n_frames,
        patient_id=str(ds.get("PatientID", "")).strip(),
        synthetic="SYNTHETIC" in method.upper(),
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")).strip(),
    )


def apply_window(array: np.ndarray, center: float, width: float) -> np.ndarray:
    """Map intensities to 8-bit grey levels with a linear VOI window (DICOM PS3.3 C.11.2.1.2).

    Parameters
    ----------
    array : ndarray
        Intensities, e.g. ``DicomImage.array``.
    center, width : float
        Window centre and width; ``width`` must be at least 1.

    Returns
    -------
    ndarray of uint8
        0 at and below ``center - width/2``, 255 at and above ``center + width/2``.
    """
    if not np.isfinite(center) or not np.isfinite(width) or width < 1:
        raise ValueError(
            f"window width must be a finite number >= 1, got center={center}, width={width}"
        )
    # float32 in place: a float64 copy of a large slice costs twice the memory for no visible gain.
    x = np.array(array, dtype=np.float32)
    x -= np.float32(center - 0.5)
    x *= np.float32(255.0 / max(width - 1, 1e-6))
    x += np.float32(127.5)
    np.rint(x, out=x)
    return np.clip(x, 0, 255, out=x).astype(np.uint8)


def default_window(image: DicomImage) -> tuple[float, float]:
    """The file's window, or one spanning the 1st-99th percentile when the file has none."""
    if (
        image.window_center is not None
        and image.window_width is not None
        and image.window_width >= 1
    ):
        return image.window_center, image.window_width
    lo, hi = np.percentile(image.array, [1, 99])
    return float((lo + hi) / 2), float(max(hi - lo, 1.0))


# Type 2 attributes (present, may be empty) a SEG copies from its source images; files from some
# exporters leave them out, and highdicom then refuses the source.
TYPE2_ATTRIBUTES = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
          "ReferringPhysicianName", "StudyID", "AccessionNumber")  # fmt: skip


def with_type2_attributes(ds):
    """``ds`` with every Type 2 attribute a derived object copies present (empty when missing)."""
    for keyword in TYPE2_ATTRIBUTES:
        if keyword not in ds:
            setattr(ds, keyword, "")
    return ds


def person_name(author: str) -> str:
    """A DICOM PN from a display name: the whole name as the family name (a trailing '^' says
    so), with PN's own delimiters taken out."""
    text = "".join(ch for ch in author if ch not in "^=\\") or "Annotator"
    return text[:63] + "^"
