"""A synthetic demo cohort: sagittal T2-like pelvis MRI slices with a cervical lesion per patient.

Written as real DICOM MR files plus a ``manifest.csv``, exactly the input a user would bring, so
the demo goes through the same ingestion path. Everything is drawn from one seed: two runs with
the same seed and counts write byte-identical files.

The picture: a sagittal pelvis (anterior on the left, superior on top) with bladder, uterus
(myometrium, junctional zone, endometrium), cervix (dark stroma), vagina, rectum, sacrum,
subcutaneous fat and air, a multiplicative bias field and Rician noise. The lesion sits in the
cervix. Its look depends on the class, with overlap so that a model cannot be perfect:

- SCC: intermediate signal, fine and fairly homogeneous texture, smooth expansive margin.
- AC: brighter, coarser heterogeneous texture, small cystic (very bright) foci, lobulated and
  blurred (infiltrative) margin.
- ASC: a mixture: each feature lies between the two, and the lesion is a patchwork of an
  SCC-like and an AC-like component.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, JPEGLSLossless, MRImageStorage, generate_uid
from scipy.ndimage import gaussian_filter

from core.data.dicom_io import SYNTHETIC_MARK
from core.data.labels import CLASSES

SIZE = 128  # pixels; 1.5625 mm each gives a 200 mm field of view
SPACING_MM = 1.5625
MAX_LEVEL = 4095  # 12 bits stored in 16-bit words
PAPER_COUNTS = (487, 116, 38)
SLICES_P = (0.6, 0.28, 0.12)  # share of patients with 1, 2, 3 slices

# Per-class lesion features: (mean, sd) drawn once per patient. ASC mixes SCC and AC.
FEATURES = {
    #              SCC            AC
    "signal": ((1250.0, 170.0), (1560.0, 190.0)),  # mean lesion intensity
    "hetero": ((0.07, 0.035), (0.15, 0.05)),  # texture amplitude, fraction of the signal
    "grain": ((0.9, 0.25), (1.7, 0.4)),  # texture correlation length, pixels
    "cysts": ((0.3, 0.0), (2.2, 0.0)),  # Poisson mean of cystic foci
    "lobes": ((0.07, 0.035), (0.16, 0.06)),  # radial irregularity of the margin
    "blur": ((0.05, 0.02), (0.10, 0.035)),  # margin softness (relative radius)
}


@dataclass
class _Lesion:
    signal: float
    hetero: float
    grain: float
    cysts: float
    lobes: float
    blur: float
    mix: float  # share of AC-like tissue (0 for SCC, 1 for AC)


def _draw_lesion(rng: np.random.Generator, label: int) -> _Lesion:
    if label == 2:
        mix = float(rng.beta(4, 4))  # ASC: somewhere between, mostly near the middle
    else:
        mix = float(label)  # SCC 0, AC 1
    values = {}
    for name, ((m0, s0), (m1, s1)) in FEATURES.items():
        mean, sd = (1 - mix) * m0 + mix * m1, (1 - mix) * s0 + mix * s1
        values[name] = float(rng.normal(mean, sd)) if sd else mean
    values["hetero"] = max(values["hetero"], 0.01)
    values["grain"] = max(values["grain"], 0.5)
    values["lobes"] = max(values["lobes"], 0.0)
    values["blur"] = max(values["blur"], 0.02)
    return _Lesion(mix=mix, **values)


def _soft_ellipse(u, v, cu, cv, ru, rv, angle=0.0, edge=0.03, lobes=None):
    """Soft mask of a (possibly lobulated) rotated ellipse on normalised coordinates."""
    c, s = math.cos(angle), math.sin(angle)
    du, dv = u - cu, v - cv
    a, b = (c * du + s * dv) / ru, (-s * du + c * dv) / rv
    r = np.sqrt(a * a + b * b)
    if lobes is not None:
        theta = np.arctan2(b, a)
        r = r / (1 + sum(amp * np.cos(k * theta + ph) for k, amp, ph in lobes))
    return 1.0 / (1.0 + np.exp(-np.clip((1 - r) / edge, -50, 50)))


def _paint(img, mask, value):
    img *= 1 - mask
    img += mask * value


def _smooth_noise(rng, shape, sigma):
    field = gaussian_filter(rng.standard_normal(shape), sigma)
    return field / (field.std() + 1e-9)


def _render_slice(rng, anatomy: dict, lesion: _Lesion, offset: float, *, size=SIZE, lesion_on=True):
    """One slice of ``size`` pixels a side: returns (uint16 image, lesion mask bool); without
    ``lesion_on`` (a slice of a series beside the lesion) the mask is empty."""
    n = size
    grid = (np.arange(n) + 0.5) / n * 2 - 1
    v0, u0 = np.meshgrid(grid, grid, indexing="ij")  # v: rows (superior->inferior), u: columns
    # Patient position and size vary: a small rotation, scale and shift of the whole pelvis.
    ang, sc, tu, tv = anatomy["rot"], anatomy["scale"], anatomy["tu"], anatomy["tv"]
    c, s = math.cos(ang), math.sin(ang)
    u = (c * (u0 - tu) + s * (v0 - tv)) / sc
    v = (-s * (u0 - tu) + c * (v0 - tv)) / sc

    img = np.full((n, n), 15.0)
    body = _soft_ellipse(u, v, 0.0, 0.05, 0.95, 1.25, edge=0.02)
    fat = 1650 + 120 * _smooth_noise(rng, (n, n), 3)
    _paint(img, body, fat)
    _paint(img, _soft_ellipse(u, v, 0.05, 0.1, 0.78, 1.1, edge=0.04), 950.0)  # pelvic soft tissue
    _paint(img, _soft_ellipse(u, v, -0.82, -0.1, 0.05, 0.7, edge=0.03), 520.0)  # rectus muscle
    _paint(img, _soft_ellipse(u, v, 0.0, 0.95, 0.6, 0.12, edge=0.05), 560.0)  # pelvic floor
    # Sacrum: marrow with a dark cortex, curved along the back.
    _paint(img, _soft_ellipse(u, v, 0.78, -0.1, 0.14, 0.75, angle=0.15, edge=0.03), 300.0)
    _paint(img, _soft_ellipse(u, v, 0.78, -0.1, 0.1, 0.7, angle=0.15, edge=0.03), 1150.0)
    # Bladder: very bright fluid with a thin dark wall; filling varies.
    fill = anatomy["bladder"] * math.sqrt(max(1 - (offset * 0.5) ** 2, 0.2))
    _paint(img, _soft_ellipse(u, v, -0.42, 0.12, 0.25 * fill + 0.03, 0.2 * fill + 0.03), 450.0)
    _paint(img, _soft_ellipse(u, v, -0.42, 0.12, 0.25 * fill, 0.2 * fill), 3100.0)
    # Uterus, anteverted over the bladder: myometrium, junctional zone, endometrium.
    ua = anatomy["uterus_angle"]
    _paint(img, _soft_ellipse(u, v, -0.12, -0.38, 0.36, 0.17, angle=ua), 1380.0)
    _paint(img, _soft_ellipse(u, v, -0.12, -0.38, 0.24, 0.075, angle=ua), 700.0)
    _paint(img, _soft_ellipse(u, v, -0.12, -0.38, 0.2, 0.035, angle=ua), 2350.0)
    # Cervix: dark fibrous stroma with a bright canal, then the vagina below it.
    cu, cv = anatomy["cervix_u"], anatomy["cervix_v"]
    _paint(img, _soft_ellipse(u, v, cu, cv, 0.13, 0.21, angle=0.35), 480.0)
    _paint(img, _soft_ellipse(u, v, cu, cv, 0.02, 0.15, angle=0.35), 1900.0)
    _paint(img, _soft_ellipse(u, v, cu + 0.1, cv + 0.42, 0.06, 0.24, angle=0.25), 720.0)
    # Rectum: dark muscular wall, lumen with gas (dark) or content (intermediate).
    _paint(img, _soft_ellipse(u, v, 0.4, 0.18, 0.13, 0.32, angle=-0.2), 620.0)
    _paint(img, _soft_ellipse(u, v, 0.4, 0.18, 0.07, 0.24, angle=-0.2), anatomy["rectal_lumen"])

    if not lesion_on:
        return _finish_slice(rng, img, anatomy, u0, v0), np.zeros((n, n), dtype=bool)
    # The lesion: an expansile mass in the cervix, smaller on off-centre slices.
    radius = anatomy["lesion_r"] * math.sqrt(max(1 - offset**2, 0.25))
    lu, lv = cu + anatomy["lesion_du"], cv + anatomy["lesion_dv"]
    shape = _soft_ellipse(
        u,
        v,
        lu,
        lv,
        radius * anatomy["lesion_aspect"],
        radius,
        angle=anatomy["lesion_angle"],
        edge=lesion.blur,
        lobes=[(k, lesion.lobes * w / 2, ph) for k, w, ph in anatomy["lesion_lobes"]],
    )
    pix = radius * n / 2 * sc  # lesion radius in pixels, scales the texture grain
    fine = _smooth_noise(rng, (n, n), lesion.grain * max(pix / 14, 0.6))
    coarse = _smooth_noise(rng, (n, n), 2.0 * lesion.grain * max(pix / 14, 0.6))
    if 0 < lesion.mix < 1:
        # ASC: a patchwork of an SCC-like (dim, fine) and an AC-like (bright, coarse) component.
        patch = _smooth_noise(rng, (n, n), max(pix / 3, 1.5))
        ac_part = patch > np.quantile(patch, 1 - lesion.mix)
        tex = np.where(ac_part, coarse, fine)
        signal = lesion.signal + np.where(ac_part, 140.0, -140.0)
    else:
        tex = coarse if lesion.mix >= 1 else fine
        signal = lesion.signal
    tissue = signal * (1 + lesion.hetero * tex)
    _paint(img, shape, tissue)
    n_cysts = int(rng.poisson(lesion.cysts * (0.5 + lesion.mix * 0.5) if lesion.mix else 0.3))
    for _ in range(n_cysts):
        a, r = rng.uniform(0, 2 * math.pi), radius * math.sqrt(rng.uniform(0, 0.5))
        cr = rng.uniform(0.012, 0.03)
        cyst = _soft_ellipse(u, v, lu + r * math.cos(a), lv + r * math.sin(a), cr, cr, edge=0.15)
        _paint(img, cyst * shape, 2700.0)

    return _finish_slice(rng, img, anatomy, u0, v0), shape > 0.5


def _finish_slice(rng, img, anatomy: dict, u0, v0) -> np.ndarray:
    """Coil sensitivity (smooth multiplicative bias) and Rician noise of a magnitude image."""
    img *= 1 + anatomy["bias"][0] * u0 + anatomy["bias"][1] * v0 + anatomy["bias"][2] * u0 * v0
    sd = anatomy["noise"]
    img = np.sqrt((img + rng.normal(0, sd, img.shape)) ** 2 + rng.normal(0, sd, img.shape) ** 2)
    return np.clip(np.rint(img), 0, MAX_LEVEL).astype(np.uint16)


def _draw_anatomy(rng: np.random.Generator) -> dict:
    # Margin harmonics: relative weights and phases; the class sets the overall amplitude.
    lobes = [(k, rng.uniform(0.3, 1.0), rng.uniform(0, 2 * math.pi)) for k in (3, 4, 5, 7)]
    return {
        "rot": rng.normal(0, 0.08),
        "scale": rng.uniform(0.88, 1.12),
        "tu": rng.normal(0, 0.05),
        "tv": rng.normal(0, 0.05),
        "bladder": rng.uniform(0.45, 1.15),
        "uterus_angle": rng.normal(-0.6, 0.2),
        "cervix_u": rng.normal(0.08, 0.03),
        "cervix_v": rng.normal(0.2, 0.03),
        "rectal_lumen": float(rng.choice([120.0, 900.0, 1300.0])),
        "lesion_r": rng.uniform(0.09, 0.2),
        "lesion_aspect": rng.uniform(0.75, 1.3),
        "lesion_angle": rng.uniform(0, math.pi),
        "lesion_du": rng.normal(0, 0.03),
        "lesion_dv": rng.normal(0, 0.04),
        "lesion_lobes": lobes,
        "bias": rng.normal(0, 0.12, 3),
        "noise": rng.uniform(25, 55),
    }


def _uid(seed: int, *parts) -> str:
    # A deterministic entropy source makes the same seed give the same UIDs on every run.
    return generate_uid(entropy_srcs=["cervixscope-demo", str(seed), *map(str, parts)])


def _write_dicom(
    path: Path, pixels, *, seed, patient_id, index, slice_no, n_slices, offset_mm,
    spacing_mm=SPACING_MM,
):  # fmt: skip
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = _uid(seed, patient_id, "sop", slice_no)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = _uid(seed, patient_id, "study")
    ds.SeriesInstanceUID = _uid(seed, patient_id, "series")
    ds.FrameOfReferenceUID = _uid(seed, patient_id, "frame-of-reference")
    day = 1 + index % 28
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = f"2024{1 + index % 12:02d}{day:02d}"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "090000"
    ds.AccessionNumber = f"DEMO{index + 1:06d}"
    ds.StudyID = "1"
    ds.Modality = "MR"
    ds.Manufacturer = "CervixScope synthetic"
    ds.InstitutionName = "CervixScope demo (synthetic data)"
    ds.StudyDescription = "PELVIS MRI (SYNTHETIC)"
    ds.SeriesDescription = "T2 SAG"
    ds.ProtocolName = "T2 SAG"
    ds.BodyPartExamined = "PELVIS"
    ds.PatientName = f"DEMO^{patient_id[-4:]}"
    ds.PatientID = patient_id
    ds.PatientSex = "F"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = SYNTHETIC_MARK
    ds.ImageComments = f"{SYNTHETIC_MARK}: not a real patient"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "SK"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = "4000"
    ds.EchoTime = "100"
    ds.MagneticFieldStrength = "1.5"
    ds.SliceThickness = "4"
    ds.SeriesNumber = 3
    ds.InstanceNumber = slice_no + 1
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # rows run posterior, columns inferior
    ds.ImagePositionPatient = [f"{offset_mm:.1f}", "-100", "100"]
    ds.SliceLocation = f"{offset_mm:.1f}"
    ds.PixelSpacing = [f"{spacing_mm:g}", f"{spacing_mm:g}"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = "1400", "2800"
    # JPEG-LS lossless halves the size of these noisy 12-bit slices (RLE barely shrinks them).
    ds.compress(JPEGLSLossless, pixels, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


MANIFEST_COLUMNS = ["patient_id", "path", "label", "x0", "y0", "x1", "y1", "frame"]


def _prepared(out_dir, counts) -> Path:
    """The output folder, created, once ``counts`` are checked."""
    if len(counts) != len(CLASSES) or any(int(c) < 0 for c in counts) or sum(counts) == 0:
        raise ValueError(
            f"counts must be {len(CLASSES)} non-negative patient counts, got {counts!r}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _shuffled_labels(counts, rng: np.random.Generator) -> np.ndarray:
    """One label per patient, shuffled: patient numbers must not reveal the class."""
    labels = np.repeat(np.arange(len(CLASSES)), [int(c) for c in counts])
    return labels[rng.permutation(len(labels))]


def _finish(out: Path, columns, rows, seed: int, counts, title: str) -> Path:
    """Write the manifest and the README that says the cohort is synthetic; return the manifest."""
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    (out / "README.txt").write_text(
        f"{title}\n"
        "No real patient data. DICOM tags carry PatientIdentityRemoved=YES and\n"
        f"DeidentificationMethod={SYNTHETIC_MARK!r}. seed={seed} counts={tuple(counts)}\n"
    )
    return manifest


def generate_demo_cohort(
    out_dir: str | Path, *, seed: int = 0, counts: tuple[int, int, int] = PAPER_COUNTS
) -> Path:
    """Write the synthetic demo cohort (DICOM slices and ``manifest.csv``) into ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write; created if missing. Files of an earlier cohort there are overwritten.
    seed : int, default 0
        Everything (classes order, anatomy, lesions, noise, UIDs) follows from it.
    counts : (int, int, int), default (487, 116, 38)
        Patients per class, in ``core.data.labels.CLASSES`` order (the paper's SCC/AC/ASC mix).

    Returns
    -------
    Path
        The manifest (``out_dir/manifest.csv``).
    """
    out = _prepared(out_dir, counts)
    labels = _shuffled_labels(counts, np.random.default_rng([seed, 2024]))
    manifest_rows = []
    for index, label in enumerate(labels.tolist()):
        patient_id = f"DEMO-{index + 1:04d}"
        prng = np.random.default_rng([seed, 7, index])
        lesion = _draw_lesion(prng, label)
        anatomy = _draw_anatomy(prng)
        n_slices = 1 + int(prng.choice(3, p=SLICES_P))
        offsets = [0.0, -0.45, 0.45][:n_slices]
        (out / patient_id).mkdir(exist_ok=True)
        for slice_no, offset in enumerate(offsets):
            pixels, mask = _render_slice(prng, anatomy, lesion, offset)
            rel = f"{patient_id}/IM{slice_no + 1:04d}.dcm"
            offset_mm = offset * anatomy["lesion_r"] * 100
            _write_dicom(
                out / rel,
                pixels,
                seed=seed,
                patient_id=patient_id,
                index=index,
                slice_no=slice_no,
                n_slices=n_slices,
                offset_mm=offset_mm,
            )
            ys, xs = np.nonzero(mask)
            # A reader's box is not pixel-exact: a pixel or two loose on each side.
            jitter = prng.integers(-1, 3, 4)
            x0 = max(int(xs.min()) - int(jitter[0]), 0)
            y0 = max(int(ys.min()) - int(jitter[1]), 0)
            x1 = min(int(xs.max()) + 1 + int(jitter[2]), SIZE)
            y1 = min(int(ys.max()) + 1 + int(jitter[3]), SIZE)
            manifest_rows.append([patient_id, rel, CLASSES[label], x0, y0, x1, y1, 0])
    return _finish(
        out, MANIFEST_COLUMNS, manifest_rows, seed, counts,
        "SYNTHETIC demo cohort generated by CervixScope (cervixscope demo-data).",
    )  # fmt: skip


# --------------------------------------------------------------------------- external cohort
# A second synthetic "scanner" for external validation (issue 19): same anatomy and lesion model,
# but another contrast (a gamma curve on the signal), more noise, another series description, a
# different class mix and two sites. It never touches the RNG streams of the main cohort, whose
# bytes a determinism test pins.
EXTERNAL_COUNTS = (18, 14, 8)  # SCC, AC, ASC: far more AC and ASC than the internal cohort
EXTERNAL_SITES = ("B-north", "B-south")
EXTERNAL_GAMMA = 0.75  # < 1 lifts the dark tissue: another weighting of the same anatomy
EXTERNAL_NOISE = 70.0  # extra Rician noise sd, in stored levels
EXTERNAL_SERIES = "T2 TSE SAG (SCANNER B)"


def _scanner_b(rng: np.random.Generator, pixels: np.ndarray) -> np.ndarray:
    """Scanner B's look: a gamma contrast curve and extra Rician noise, still 12-bit."""
    img = MAX_LEVEL * (pixels.astype(np.float64) / MAX_LEVEL) ** EXTERNAL_GAMMA
    sd = EXTERNAL_NOISE
    img = np.sqrt((img + rng.normal(0, sd, img.shape)) ** 2 + rng.normal(0, sd, img.shape) ** 2)
    return np.clip(np.rint(img), 0, MAX_LEVEL).astype(np.uint16)


def _retag_scanner_b(path: Path) -> None:
    ds = pydicom.dcmread(path)
    ds.SeriesDescription = ds.ProtocolName = EXTERNAL_SERIES
    ds.Manufacturer = "CervixScope synthetic scanner B"
    ds.InstitutionName = "CervixScope external demo (synthetic data)"
    ds.MagneticFieldStrength = "3"
    ds.save_as(path, enforce_file_format=True)


def generate_external_cohort(
    out_dir: str | Path, *, seed: int = 1, counts: tuple[int, int, int] = EXTERNAL_COUNTS
) -> Path:
    """Write a small synthetic external cohort from a second "scanner" into ``out_dir``.

    Patients are ``EXT-0001``..., so they can never collide with the main cohort's ``DEMO-``
    cases; the manifest carries a ``site`` column (patients alternate between
    ``EXTERNAL_SITES``). Labelled synthetic exactly like the main cohort.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write; created if missing.
    seed : int, default 1
    counts : (int, int, int), default EXTERNAL_COUNTS
        Patients per class in ``core.data.labels.CLASSES`` order.

    Returns
    -------
    Path
        The manifest (``out_dir/manifest.csv``).
    """
    out = _prepared(out_dir, counts)
    labels = _shuffled_labels(counts, np.random.default_rng([seed, 4048]))
    rows = []
    for index, label in enumerate(labels.tolist()):
        patient_id = f"EXT-{index + 1:04d}"
        prng = np.random.default_rng([seed, 11, index])
        lesion, anatomy = _draw_lesion(prng, label), _draw_anatomy(prng)
        (out / patient_id).mkdir(exist_ok=True)
        pixels, mask = _render_slice(prng, anatomy, lesion, 0.0)
        rel = f"{patient_id}/IM0001.dcm"
        _write_dicom(
            out / rel, _scanner_b(prng, pixels), seed=seed + 10_000, patient_id=patient_id,
            index=index, slice_no=0, n_slices=1, offset_mm=0.0,
        )  # fmt: skip
        _retag_scanner_b(out / rel)
        ys, xs = np.nonzero(mask)
        box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        site = EXTERNAL_SITES[index % len(EXTERNAL_SITES)]
        rows.append([patient_id, rel, CLASSES[label], *box, 0, site])
    return _finish(
        out, [*MANIFEST_COLUMNS, "site"], rows, seed, counts,
        "SYNTHETIC external demo cohort (second scanner) generated by CervixScope.",
    )  # fmt: skip


# --------------------------------------------------------------------------- whole series
# Real T2 sagittal series are 20-30 slices of 320-512 pixels (issue 24): the reading page must be
# fast at that size. A series cohort writes every slice; the manifest names only the slices
# through the lesion's middle (the model's), so ingestion and training are unchanged.
SERIES_SLICES, SERIES_SIZE = 24, 512
SERIES_GAP_MM = 4.0  # slice spacing = thickness
SERIES_COUNTS = (6, 4, 2)
MODEL_OFFSET = 0.5  # |slice position| / lesion radius up to which a slice is the model's


def generate_series_cohort(
    out_dir: str | Path,
    *,
    seed: int = 0,
    counts: tuple[int, int, int] = SERIES_COUNTS,
    n_slices: int = SERIES_SLICES,
    size: int = SERIES_SIZE,
) -> Path:
    """Write whole synthetic T2 sagittal series (``n_slices`` of ``size`` x ``size``, 16-bit) and
    a manifest that names the slices through the lesion's middle, each with its box.

    Patients are ``SER-0001``...; the lesion shows on the slices within its radius of the
    series' centre, and the ones within half of it are the model's (listed in the manifest).

    Returns
    -------
    Path
        The manifest (``out_dir/manifest.csv``).
    """
    if not 2 <= int(n_slices) <= 200 or not 64 <= int(size) <= 1024:
        raise ValueError(f"a series needs 2-200 slices of 64-1024 pixels, not {n_slices} of {size}")
    out = _prepared(out_dir, counts)
    labels = _shuffled_labels(counts, np.random.default_rng([seed, 6072]))
    rows = []
    for index, label in enumerate(labels.tolist()):
        patient_id = f"SER-{index + 1:04d}"
        prng = np.random.default_rng([seed, 13, index])
        lesion, anatomy = _draw_lesion(prng, label), _draw_anatomy(prng)
        radius_mm = anatomy["lesion_r"] * 100  # the field of view is 2 units = 200 mm
        (out / patient_id).mkdir(exist_ok=True)
        for slice_no in range(int(n_slices)):
            position_mm = (slice_no - (n_slices - 1) / 2) * SERIES_GAP_MM
            offset = position_mm / radius_mm
            pixels, mask = _render_slice(
                prng, anatomy, lesion, offset, size=int(size), lesion_on=abs(offset) < 1
            )
            rel = f"{patient_id}/IM{slice_no + 1:04d}.dcm"
            _write_dicom(
                out / rel, pixels, seed=seed + 20_000, patient_id=patient_id, index=index,
                slice_no=slice_no, n_slices=n_slices, offset_mm=position_mm,
                spacing_mm=200.0 / size,
            )  # fmt: skip
            if abs(offset) <= MODEL_OFFSET and mask.any():
                ys, xs = np.nonzero(mask)
                box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
                rows.append([patient_id, rel, CLASSES[label], *box, 0])
    return _finish(
        out, MANIFEST_COLUMNS, rows, seed, counts,
        f"SYNTHETIC whole-series cohort ({n_slices} x {size}x{size}) generated by CervixScope.",
    )  # fmt: skip
