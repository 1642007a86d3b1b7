"""Dataset-shift checks: does an external cohort look acquired like the one a model learned from?

Before trusting external-validation numbers, compare the two cohorts' pixel spacing, slice
orientation, series description, the intensity distribution of their lesion crops and their class
mix, and name what differs. A difference is flagged only when it is both clear (a two-sample test
at ``alpha``) and large enough to matter (an effect size over a fixed threshold), so a random
resample of the same cohort stays quiet while a different scanner does not.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from core.data.labels import CLASSES

SPACING_TOLERANCE = 0.10  # relative difference of the median in-plane pixel spacing
SHARE_TOLERANCE = 0.10  # absolute difference of a category's share (orientation, series, class)
KS_EFFECT = 0.20  # Kolmogorov-Smirnov distance between crop-statistic distributions
ALPHA = 0.05  # two-sided test level; a flag needs this AND the effect size
CROP_STATISTICS = ("mean", "contrast (std)", "noise (neighbour difference)")


@dataclass(frozen=True)
class CohortProfile:
    """What the shift checks compare, one entry per image (crops) or per case (the rest)."""

    name: str
    spacing_mm: np.ndarray  # (n_images,) in-plane pixel spacing; NaN where the file had none
    orientation: tuple[str, ...]  # per case
    series: tuple[str, ...]  # per case, upper-cased and stripped
    crop_stats: np.ndarray  # (n_images, 3): see CROP_STATISTICS
    labels: np.ndarray  # (n_cases,) class index


@dataclass(frozen=True)
class ShiftCheck:
    """One comparison: ``flagged`` when it differs in a way that matters, said in ``detail``."""

    check: str
    flagged: bool
    detail: str


def crop_statistics(crops: np.ndarray) -> np.ndarray:
    """Per crop: mean intensity, its standard deviation, and the mean absolute neighbour
    difference (high for noisy images). Crops are (n, h, w) in [0, 1]."""
    crops = np.asarray(crops, dtype=np.float64)
    if crops.ndim != 3 or len(crops) == 0:
        raise ValueError(f"crops must be a non-empty (n, h, w) array, got shape {crops.shape}")
    noise = np.abs(np.diff(crops, axis=2)).mean(axis=(1, 2))
    return np.column_stack([crops.mean(axis=(1, 2)), crops.std(axis=(1, 2)), noise])


def pixel_spacing(path: str | Path) -> float:
    """Mean in-plane PixelSpacing (mm) of a DICOM file, read from its header only; NaN if none."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["PixelSpacing"])
        return float(np.mean([float(v) for v in ds.PixelSpacing]))
    except (AttributeError, OSError, ValueError, TypeError):
        return float("nan")


def profile_ingestion(result, name: str) -> CohortProfile:
    """The profile of an ingested cohort (``core.data.ingest.IngestResult``).

    Pixel spacing is read from each image's DICOM header (``images[i]["source_path"]``);
    orientation and series description come from the case records; crop statistics from the
    crops.
    """
    spacing = np.array([pixel_spacing(image["source_path"]) for image in result.images])
    _, labels = result.crops.cases()
    return CohortProfile(
        name=name,
        spacing_mm=spacing,
        orientation=tuple(str(c.get("orientation") or "unknown") for c in result.cases),
        series=tuple(str(c.get("series_description") or "").strip().upper() for c in result.cases),
        crop_stats=crop_statistics(result.crops.crops),
        labels=np.asarray(labels, dtype=np.int64),
    )


def compare_cohorts(reference: CohortProfile, other: CohortProfile) -> list[ShiftCheck]:
    """Every shift check of ``other`` against ``reference``, flagged or not, in a fixed order.

    Returns
    -------
    list of ShiftCheck
        ``pixel spacing``, ``orientation``, ``series description``, one per crop statistic
        (``intensity: ...``), and ``class mix``.
    """
    checks = [_spacing(reference, other)]
    checks.append(_shares("orientation", reference.orientation, other.orientation, reference.name))
    checks.append(_shares("series description", reference.series, other.series, reference.name))
    for j, what in enumerate(CROP_STATISTICS):
        checks.append(_distribution(f"intensity: {what}", reference, other, j))
    names = [CLASSES[i] for i in reference.labels], [CLASSES[i] for i in other.labels]
    checks.append(_shares("class mix", *names, reference.name))
    return checks


def shift_flags(reference: CohortProfile, other: CohortProfile) -> list[ShiftCheck]:
    """Only the checks that differ in a way that matters (empty when the cohorts look alike)."""
    return [check for check in compare_cohorts(reference, other) if check.flagged]


def _spacing(reference: CohortProfile, other: CohortProfile) -> ShiftCheck:
    ref, oth = np.nanmedian(reference.spacing_mm), np.nanmedian(other.spacing_mm)
    if np.isnan(ref) or np.isnan(oth):
        return ShiftCheck("pixel spacing", False, "not compared: a cohort has no PixelSpacing")
    change = abs(oth - ref) / ref
    flagged = bool(change > SPACING_TOLERANCE)
    return ShiftCheck(
        "pixel spacing",
        flagged,
        f"median {oth:.3g} mm vs {ref:.3g} mm in {reference.name} ({change:.0%} apart)",
    )


def _shares(check: str, ref: tuple | list, oth: tuple | list, ref_name: str) -> ShiftCheck:
    """Category shares: flagged when one differs by more than SHARE_TOLERANCE and a
    chi-square test of the two count tables rejects equality at ALPHA."""
    ref_counts, oth_counts = Counter(ref), Counter(oth)
    categories = sorted(set(ref_counts) | set(oth_counts))
    table = np.array([[ref_counts[c] for c in categories], [oth_counts[c] for c in categories]])
    share = table / table.sum(axis=1, keepdims=True)
    gap = np.abs(share[0] - share[1])
    worst = int(gap.argmax())
    significant = len(categories) > 1 and stats.chi2_contingency(table)[1] < ALPHA
    flagged = bool(gap[worst] > SHARE_TOLERANCE and significant)
    text = ", ".join(f"{c} {s:.0%}" for c, s in zip(categories, share[1], strict=True))
    ref_text = ", ".join(f"{c} {s:.0%}" for c, s in zip(categories, share[0], strict=True))
    return ShiftCheck(check, flagged, f"{text} vs {ref_text} in {ref_name}")


def _distribution(check: str, reference: CohortProfile, other: CohortProfile, j: int):
    ref, oth = reference.crop_stats[:, j], other.crop_stats[:, j]
    result = stats.ks_2samp(ref, oth)
    flagged = bool(result.statistic > KS_EFFECT and result.pvalue < ALPHA)
    return ShiftCheck(
        check,
        flagged,
        f"median {np.median(oth):.3f} vs {np.median(ref):.3f} in {reference.name} "
        f"(KS distance {result.statistic:.2f}, p = {result.pvalue:.2g})",
    )
