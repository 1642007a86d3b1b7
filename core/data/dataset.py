"""The in-memory dataset every model and fold works on: lesion crops with their patient and label."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.labels import CLASSES


@dataclass(frozen=True)
class CropSet:
    """Lesion crops, one row per image; several images may belong to one case (patient).

    Attributes
    ----------
    crops : (n_images, size, size) float32 array, intensities normalised to [0, 1].
    image_ids : (n_images,) str array, unique per image.
    case_ids : (n_images,) str array, the patient pseudonym each image belongs to.
    labels : (n_images,) int64 array of class indices into ``core.data.labels.CLASSES``.
    mark_versions : (n_images,) int64 array, optional: the stored lesion-mark version each crop
        was cut from (0 where the manifest gave the box); part of :meth:`data_hash`.
    """

    crops: np.ndarray
    image_ids: np.ndarray
    case_ids: np.ndarray
    labels: np.ndarray
    mark_versions: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.crops)
        if self.crops.ndim != 3 or self.crops.shape[1] != self.crops.shape[2]:
            raise ValueError(f"crops must be (n, size, size), got shape {self.crops.shape}")
        for name in ("image_ids", "case_ids", "labels", "mark_versions"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} entries for {n} crops")
        if n and (self.labels.min() < 0 or self.labels.max() >= len(CLASSES)):
            raise ValueError(f"labels must lie in 0..{len(CLASSES) - 1}")
        if len(set(self.image_ids.tolist())) != n:
            raise ValueError("image_ids must be unique")
        per_case = {}
        for case, label in zip(self.case_ids.tolist(), self.labels.tolist(), strict=True):
            if per_case.setdefault(case, label) != label:
                raise ValueError(f"case {case} has images with different labels")

    @property
    def n_images(self) -> int:
        return len(self.crops)

    @property
    def crop_size(self) -> int:
        return int(self.crops.shape[1])

    def data_hash(self) -> str:
        """Content hash of crops, ids and labels: two runs with equal hashes saw the same data."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.crops, dtype=np.float32).tobytes())
        for arr in (self.image_ids, self.case_ids):
            h.update("\x1f".join(arr.tolist()).encode())
        h.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        if self.mark_versions is not None and np.any(self.mark_versions):
            # only then, so the hash of crops cut from manifest boxes stays what it was
            h.update(b"marks" + np.asarray(self.mark_versions, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]

    def cases(self) -> tuple[np.ndarray, np.ndarray]:
        """Unique case ids (sorted) and the label of each."""
        case_ids, first = np.unique(self.case_ids, return_index=True)
        return case_ids, self.labels[first]

    def subset(self, mask: np.ndarray) -> CropSet:
        """The images selected by a boolean mask or index array."""
        return CropSet(
            crops=self.crops[mask],
            image_ids=self.image_ids[mask],
            case_ids=self.case_ids[mask],
            labels=self.labels[mask],
            mark_versions=None if self.mark_versions is None else self.mark_versions[mask],
        )

    def save(self, path: str | Path) -> None:
        extra = {} if self.mark_versions is None else {"mark_versions": self.mark_versions}
        np.savez_compressed(
            path,
            crops=self.crops,
            image_ids=self.image_ids.astype(str),
            case_ids=self.case_ids.astype(str),
            labels=self.labels,
            **extra,
        )

    @classmethod
    def load(cls, path: str | Path) -> CropSet:
        with np.load(path, allow_pickle=False) as z:
            return cls(
                crops=z["crops"].astype(np.float32, copy=False),
                image_ids=z["image_ids"],
                case_ids=z["case_ids"],
                labels=z["labels"].astype(np.int64, copy=False),
                mark_versions=z["mark_versions"] if "mark_versions" in z.files else None,
            )


def mean_by_case(case_ids: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate per-image class probabilities to per-case means.

    Returns the sorted unique case ids and a (n_cases, n_classes) array.
    """
    unique, inverse = np.unique(case_ids, return_inverse=True)
    sums = np.zeros((len(unique), probs.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, probs)
    counts = np.bincount(inverse, minlength=len(unique))[:, None]
    return unique, sums / counts
