"""Shift checks (issue 19): a cohort whose intensity or pixel spacing differs is flagged; a
random resample of the same cohort is not. Every cohort goes through real DICOM ingestion."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian

from core.data.ingest import ingest_folder
from core.data.shift import compare_cohorts, profile_ingestion, shift_flags


@pytest.fixture(scope="module")
def reference(small_cohort_dir, tmp_path_factory):
    cache = tmp_path_factory.mktemp("shift-cache")
    result = ingest_folder(small_cohort_dir, progress=False, cache_dir=cache)
    return result, profile_ingestion(result, "internal")


def _edited_copy(src, dst, edit):
    """A copy of the cohort folder with ``edit(dataset)`` applied to every DICOM file."""
    shutil.copytree(src, dst)
    for path in dst.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        edit(ds)
        ds.save_as(path, enforce_file_format=True)
    return dst


def _resampled(profile, seed):
    """The same cohort, its cases drawn again with replacement (images kept with their case)."""
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(profile.labels), len(profile.labels))
    images = rng.integers(0, len(profile.crop_stats), len(profile.crop_stats))
    return replace(
        profile,
        name="resampled",
        spacing_mm=profile.spacing_mm[images],
        crop_stats=profile.crop_stats[images],
        orientation=tuple(profile.orientation[i] for i in pick),
        series=tuple(profile.series[i] for i in pick),
        labels=profile.labels[pick],
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_resampled_copy_of_the_same_cohort_is_not_flagged(reference, seed):
    _, profile = reference
    assert shift_flags(profile, _resampled(profile, seed)) == []
    assert len(compare_cohorts(profile, _resampled(profile, seed))) == 7  # every check ran


def test_a_cohort_with_other_pixel_spacing_is_flagged(reference, small_cohort_dir, tmp_path):
    def coarser(ds):
        ds.PixelSpacing = ["0.9", "0.9"]

    folder = _edited_copy(small_cohort_dir, tmp_path / "spacing", coarser)
    other = profile_ingestion(ingest_folder(folder, progress=False, cache_dir=tmp_path), "b")
    flagged = {check.check for check in shift_flags(reference[1], other)}
    assert flagged == {"pixel spacing"}  # the pixels are untouched


def test_a_cohort_with_other_intensities_is_flagged(reference, small_cohort_dir, tmp_path):
    rng = np.random.default_rng(0)

    def brighter_and_noisier(ds):
        pixels = ds.pixel_array.astype(float)
        pixels = 4095 * (pixels / 4095) ** 0.6 + rng.normal(0, 90, pixels.shape)
        ds.PixelData = np.clip(pixels, 0, 4095).astype(np.uint16).tobytes()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian

    folder = _edited_copy(small_cohort_dir, tmp_path / "intensity", brighter_and_noisier)
    other = profile_ingestion(ingest_folder(folder, progress=False, cache_dir=tmp_path), "b")
    flagged = {check.check for check in shift_flags(reference[1], other)}
    assert any(name.startswith("intensity") for name in flagged)
    assert "pixel spacing" not in flagged and "class mix" not in flagged
