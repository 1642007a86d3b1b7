"""Tiny synthetic CropSets and databases for the CV engine's tests (fast on 2 CPU cores)."""

from __future__ import annotations

import numpy as np

from core.data.dataset import CropSet
from core.data.labels import CLASSES


def synthetic_crops(
    counts=(12, 8, 6), *, images_per_case=2, size=32, seed=0, signal=1.0, jitter=0.05
) -> CropSet:
    """Cases with ``images_per_case`` near-duplicate slices each; class shows as a pattern.

    Every case has its own random texture (a patient fingerprint) shared by its slices; with
    ``signal=0`` labels carry no information at all, so any skill is leakage.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    patterns = [
        np.exp(-((xx - 0.5) ** 2 + (yy - 0.5) ** 2) / 0.02),  # blob
        np.sin(8 * np.pi * xx) * 0.5 + 0.5,  # vertical stripes
        np.sin(8 * np.pi * yy) * 0.5 + 0.5,  # horizontal stripes
    ]
    crops, image_ids, case_ids, labels = [], [], [], []
    for label, n in enumerate(counts):
        for i in range(n):
            case = f"internal/{CLASSES[label]}{i:03d}"  # a case key: cohort/patient
            base = rng.random((size, size))
            for j in range(images_per_case):
                img = 0.5 * base + 0.5 * signal * patterns[label]
                img = img + jitter * rng.standard_normal((size, size))
                crops.append(np.clip(img, 0, 1).astype(np.float32))
                image_ids.append(f"{case}:s{j}.dcm#0")
                case_ids.append(case)
                labels.append(label)
    return CropSet(
        np.stack(crops), np.array(image_ids), np.array(case_ids), np.array(labels, np.int64)
    )


def database_with_cases(path, crops: CropSet):
    """A real SQLite file through ``db.connect`` holding the cases of ``crops``."""
    import db

    conn = db.connect(path)
    cases, labels = crops.cases()
    db.upsert_cases(
        conn,
        [{"case_id": str(c), "label": CLASSES[int(y)]} for c, y in zip(cases, labels, strict=True)],
    )
    return conn
