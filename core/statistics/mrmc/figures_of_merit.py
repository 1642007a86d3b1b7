"""Figures of merit (FOMs) per reader x modality, and their leave-one-case-out values.

Each named FOM is an average of parts; a part is a Wilcoxon AUC or a proportion over the
(modality, reader, case) arrays. A callable FOM ``f(truth, score)`` is evaluated reader by reader.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from core.data.labels import CLASSES, parse_label
from core.statistics.stats import delong_placements


@dataclass
class FomPart:
    """One AUC or proportion of a FOM over every reader x modality."""

    kind: str  # "auc": values are scores, mask marks positives; "mean": values are 0/1 hits
    mask: np.ndarray  # (K,) positives for "auc", the denominator subset for "mean"
    values: np.ndarray  # (t, J, K)


@dataclass
class Fom:
    """A figure of merit: the mean of its parts, or a user callable."""

    name: str
    parts: list[FomPart] = field(default_factory=list)
    truth: np.ndarray | None = None  # per case; the bootstrap keeps each truth class's count
    func: Callable | None = None  # a user callable(truth, score) -> float instead of parts
    score: np.ndarray | None = None  # (t, J, K) for the callable

    @property
    def is_single_auc(self) -> bool:
        return self.func is None and len(self.parts) == 1 and self.parts[0].kind == "auc"


def _auc_rows(positive: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mann-Whitney AUC of every row of values (..., K)."""
    m = int(positive.sum())
    n = positive.size - m
    ranks = sps.rankdata(values, axis=-1)
    return (ranks[..., positive].sum(axis=-1) - m * (m + 1) / 2) / (m * n)


def _part_value(part: FomPart, idx: np.ndarray | None = None) -> np.ndarray:
    mask, values = part.mask, part.values
    if idx is not None:
        mask, values = mask[idx], values[..., idx]
    if part.kind == "auc":
        return _auc_rows(mask, values)
    return values[..., mask].mean(axis=-1)


def _part_jackknife(part: FomPart) -> np.ndarray:
    """Leave-one-case-out values (t, J, K) in closed form."""
    t, j, k = part.values.shape
    if part.kind == "auc":
        flat = part.values.reshape(t * j, k)
        aucs, v_pos, v_neg = delong_placements(part.mask.astype(int), flat)
        m, n = v_pos.shape[1], v_neg.shape[1]
        out = np.empty((t * j, k))
        out[:, part.mask] = (m * aucs[:, None] - v_pos) / (m - 1)
        out[:, ~part.mask] = (n * aucs[:, None] - v_neg) / (n - 1)
        return out.reshape(t, j, k)
    size = part.mask.sum()
    full = part.values[..., part.mask].mean(axis=-1, keepdims=True)
    left_out = (size * full - part.values) / (size - 1)
    return np.where(part.mask, left_out, full)


def fom_values(fom: Fom, idx: np.ndarray | None = None) -> np.ndarray:
    """FOM of every reader x modality, shape (t, J), on all cases or the cases ``idx``."""
    if fom.func is not None:
        truth = fom.truth if idx is None else fom.truth[idx]
        score = fom.score if idx is None else fom.score[..., idx]
        t, j = score.shape[:2]
        return np.array([[fom.func(truth, score[a, b]) for b in range(j)] for a in range(t)])
    return np.mean([_part_value(p, idx) for p in fom.parts], axis=0)


def fom_jackknife(fom: Fom) -> np.ndarray:
    """Leave-one-case-out FOMs, shape (t, J, K): closed form for named FOMs, a loop otherwise."""
    if fom.func is not None:
        k = fom.truth.size
        keep = ~np.eye(k, dtype=bool)
        return np.stack([fom_values(fom, np.flatnonzero(keep[c])) for c in range(k)], axis=-1)
    return np.mean([_part_jackknife(p) for p in fom.parts], axis=0)


def class_of(text) -> int:
    """Class index of a class name or index text, with an error naming the allowed classes."""
    text = str(text)
    if text.isdigit() and int(text) < len(CLASSES):
        return int(text)
    try:
        return parse_label(text)
    except ValueError as err:
        raise ValueError(
            f"class {text!r} is not allowed: use one of {', '.join(CLASSES)} or 0..{len(CLASSES) - 1}"
        ) from err


def truth_indices(truth: pd.Series) -> np.ndarray:
    """Class indices of per-case truth given as class names or indices."""
    if truth.dtype == object or pd.api.types.is_string_dtype(truth):
        return np.array([parse_label(v) for v in truth], dtype=np.int64)
    return truth.to_numpy().astype(np.int64)


def _labels(values: np.ndarray) -> np.ndarray:
    if values.dtype == object or values.dtype.kind in "US":
        return np.vectorize(parse_label, otypes=[np.int64])(values)
    return values.astype(np.int64)


def _binary_auc(fom: str, cube: Callable[[str], np.ndarray], truth_raw: pd.Series) -> Fom:
    truth = truth_raw.to_numpy()
    if not set(np.unique(truth).tolist()) <= {0, 1}:
        raise ValueError(
            f"fom='auc' needs binary truth 0/1, found {sorted(set(truth.tolist()))[:5]}; "
            "for 3-class reads use 'auc:SCC', 'auc:AC', 'auc:ASC' or 'auc_macro'"
        )
    return Fom(fom, [FomPart("auc", truth.astype(bool), cube("score"))], truth)


def _label_fom(fom: str, base: str, cls: str, cube, truth: np.ndarray) -> Fom | None:
    """Accuracy, or sensitivity / specificity of one class, from the readers' labels."""
    labels = _labels(cube("label"))
    if base == "accuracy" and not cls:
        return Fom(fom, [FomPart("mean", np.ones(truth.size, bool), labels == truth)], truth)
    if not cls:
        return None
    c = class_of(cls)
    if base == "sensitivity":
        return Fom(fom, [FomPart("mean", truth == c, (labels == c).astype(float))], truth)
    return Fom(fom, [FomPart("mean", truth != c, (labels != c).astype(float))], truth)


def build_fom(fom, cube: Callable[[str], np.ndarray], truth_raw: pd.Series) -> Fom:
    """Turn a FOM name (or callable) into parts over the (t, J, K) arrays given by ``cube``.

    Parameters
    ----------
    fom : str or callable
        ``"auc"``, ``"auc:<class>"``, ``"auc_macro"``, ``"accuracy"``, ``"sensitivity:<class>"``,
        ``"specificity:<class>"`` or ``callable(truth, score) -> float``.
    cube : callable
        ``cube(column)`` gives that column of the reads as a (modality, reader, case) array.
    truth_raw : Series
        Truth per case, in case order.

    Returns
    -------
    Fom
    """
    if callable(fom):
        name = getattr(fom, "__name__", "custom")
        return Fom(name, func=fom, truth=truth_raw.to_numpy(), score=cube("score"))
    if not isinstance(fom, str):
        raise ValueError(f"fom={fom!r} is not allowed: give a name or a callable(truth, score)")
    base, _, cls = fom.partition(":")
    if base == "auc" and not cls:
        return _binary_auc(fom, cube, truth_raw)
    truth = truth_indices(truth_raw)
    built = None
    if base == "auc" and cls:
        c = class_of(cls)
        built = Fom(fom, [FomPart("auc", truth == c, cube(f"c_{CLASSES[c]}"))], truth)
    elif base == "auc_macro" and not cls:
        parts = [FomPart("auc", truth == c, cube(f"c_{name}")) for c, name in enumerate(CLASSES)]
        built = Fom(fom, parts, truth)
    elif base in ("accuracy", "sensitivity", "specificity"):
        built = _label_fom(fom, base, cls, cube, truth)
    if built is None:
        raise ValueError(
            f"fom={fom!r} is not allowed: use 'auc', 'auc:<class>', 'auc_macro', 'accuracy', "
            "'sensitivity:<class>', 'specificity:<class>' or a callable(truth, score)"
        )
    return built


def check_fom_defined(fom: Fom) -> None:
    """Raise a ValueError when a part of the FOM has too few cases for the jackknife."""
    # the jackknife divides by (positives - 1) and (negatives - 1): each needs at least 2 cases
    for part in fom.parts:
        if part.kind == "auc" and (part.mask.sum() < 2 or (~part.mask).sum() < 2):
            raise ValueError(
                f"FOM {fom.name!r} is undefined: needs at least 2 positive and 2 negative cases, "
                f"got {int(part.mask.sum())} positive of {part.mask.size}"
            )
        if part.kind == "mean" and part.mask.sum() < 2:
            raise ValueError(
                f"FOM {fom.name!r} is undefined: needs at least 2 cases in its denominator, "
                f"got {int(part.mask.sum())}"
            )
