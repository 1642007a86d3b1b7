"""core.data.demo_data: class counts, real DICOM tags, determinism, class signal with overlap."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pydicom
import pytest

from core.data.demo_data import generate_demo_cohort
from core.data.dicom_io import SYNTHETIC_MARK, orientation_label


def _rows(folder: Path) -> list[dict]:
    with (folder / "manifest.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_class_counts_per_patient(small_cohort_dir):
    labels = {r["patient_id"]: r["label"] for r in _rows(small_cohort_dir)}
    assert Counter(labels.values()) == {"SCC": 24, "AC": 10, "ASC": 6}
    assert sorted(labels) == [f"DEMO-{i:04d}" for i in range(1, 41)]


def test_some_patients_have_two_or_three_slices(small_cohort_dir):
    per_patient = Counter(r["patient_id"] for r in _rows(small_cohort_dir))
    assert set(per_patient.values()) <= {1, 2, 3}
    assert any(n >= 2 for n in per_patient.values())
    assert 1 in per_patient.values()


def test_manifest_has_the_user_format_and_boxes_inside(small_cohort_dir):
    rows = _rows(small_cohort_dir)
    assert list(rows[0]) == ["patient_id", "path", "label", "x0", "y0", "x1", "y1", "frame"]
    for row in rows:
        x0, y0, x1, y1 = (int(row[k]) for k in ("x0", "y0", "x1", "y1"))
        assert 0 <= x0 < x1 <= 128 and 0 <= y0 < y1 <= 128
        assert 8 <= x1 - x0 <= 80 and 8 <= y1 - y0 <= 80  # a lesion, not the whole pelvis


def test_files_are_real_synthetic_t2_sagittal_mr(small_cohort_dir):
    rows = _rows(small_cohort_dir)
    uids = set()
    for row in rows:
        ds = pydicom.dcmread(small_cohort_dir / row["path"])
        assert ds.Modality == "MR" and ds.SOPClassUID == pydicom.uid.MRImageStorage
        assert ds.PatientID == row["patient_id"] and re.fullmatch(r"DEMO-\d{4}", ds.PatientID)
        assert ds.SeriesDescription == "T2 SAG"
        assert orientation_label(list(ds.ImageOrientationPatient)) == "sagittal"
        assert ds.BitsAllocated == 16 and ds.Rows == ds.Columns == 128
        assert [float(v) for v in ds.PixelSpacing] == [1.5625, 1.5625]
        assert ds.PatientIdentityRemoved == "YES"
        assert ds.DeidentificationMethod == SYNTHETIC_MARK
        assert "SYNTHETIC" in ds.ImageComments
        for uid in (ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID):
            assert pydicom.uid.UID(uid).is_valid
        assert ds.SOPInstanceUID == ds.file_meta.MediaStorageSOPInstanceUID
        uids.add(ds.SOPInstanceUID)
        assert ds.pixel_array.dtype == np.uint16 and ds.pixel_array.max() <= 4095
    assert len(uids) == len(rows)  # one SOP instance per slice


def _digests(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_cohort(tmp_path):
    a = generate_demo_cohort(tmp_path / "a", seed=3, counts=(3, 2, 1)).parent
    b = generate_demo_cohort(tmp_path / "b", seed=3, counts=(3, 2, 1)).parent
    c = generate_demo_cohort(tmp_path / "c", seed=4, counts=(3, 2, 1)).parent
    files_a, files_b, files_c = _digests(a), _digests(b), _digests(c)
    assert files_a == files_b
    assert Counter(r["label"] for r in _rows(a) if r["path"].endswith("IM0001.dcm")) == {
        "SCC": 3,
        "AC": 2,
        "ASC": 1,
    }
    shared = set(files_a) & set(files_c) - {"README.txt"}
    assert shared and all(files_a[k] != files_c[k] for k in shared)


@pytest.mark.parametrize(
    "counts",
    [(1, 2), (0, 0, 0), (5, -1, 2)],
    ids=["two-classes", "empty", "negative"],
)
def test_bad_counts(tmp_path, counts):
    with pytest.raises(ValueError, match=r"counts must be 3 non-negative patient counts"):
        generate_demo_cohort(tmp_path, counts=counts)


def test_lesion_signal_differs_by_class_with_overlap(small_crops):
    """AC lesions are brighter and more heterogeneous than SCC ones on average, not always."""
    centre = small_crops.crops[:, 35:65, 35:65]
    bright = centre.mean(axis=(1, 2))
    labels = small_crops.labels
    scc, ac = bright[labels == 0], bright[labels == 1]
    assert ac.mean() > scc.mean()
    assert scc.max() > ac.min()  # the classes overlap
    asc = bright[labels == 2].mean()
    assert min(scc.mean(), ac.mean()) - 0.05 < asc < max(scc.mean(), ac.mean()) + 0.05


@pytest.mark.slow
def test_full_cohort_size_and_baseline_difficulty(tmp_path):
    """The paper-sized cohort fits ~25 MB and a simple model lands in the target AUC band.

    Baseline: logistic regression on crop intensity/texture statistics, patient-grouped 5-fold
    CV, slice probabilities averaged per patient, macro one-vs-rest AUC.
    """
    from scipy.ndimage import gaussian_filter, sobel
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from core.data.dataset import mean_by_case
    from core.data.ingest import ingest_folder

    out = tmp_path / "demo"
    generate_demo_cohort(out, seed=0)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < 25e6, f"demo cohort is {size / 1e6:.1f} MB"
    result = ingest_folder(out, progress=False)
    assert result.issues == []
    crops = result.crops
    case_ids, case_labels = crops.cases()
    assert len(case_ids) == 641
    assert np.bincount(case_labels).tolist() == [487, 116, 38]
    assert crops.n_images > 641  # some patients have several slices

    def features(x):
        centre = x[30:70, 30:70]
        grad = np.hypot(sobel(x, 0), sobel(x, 1))[30:70, 30:70]
        fine = (x - gaussian_filter(x, 1.5))[30:70, 30:70]
        hist, _ = np.histogram(centre, bins=10, range=(0, 1))
        return [centre.mean(), centre.std(), *np.percentile(centre, [5, 50, 95]), grad.mean()] + [
            fine.std(),
            *(hist / hist.sum()),
        ]

    X = np.array([features(x) for x in crops.crops])
    y, groups = crops.labels, crops.case_ids
    probs = np.zeros((len(y), 3))
    for train, test in StratifiedGroupKFold(5, shuffle=True, random_state=0).split(X, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        probs[test] = model.fit(X[train], y[train]).predict_proba(X[test])
    _, case_probs = mean_by_case(groups, probs)
    auc = roc_auc_score(case_labels, case_probs, multi_class="ovr", average="macro")
    assert 0.8 <= auc <= 0.97, f"baseline macro AUC {auc:.3f} is outside the target band"
