"""A reader's answer in two keystrokes: a type, and a certainty that turns it into per-class scores.

Picking a type sets the default certainty ("probable"); the reader may change it. The chosen type
gets the certainty as its confidence and the other two share the rest equally, so the three
always sum to 100 and are stored exactly as shown (no renormalisation on the way back). Three
certainty levels give each class's one-vs-rest score four values across a reader's cases (the
three levels, and the share of a type not chosen), so every reader has an ROC curve with
operating points, not a single one.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.data.labels import CLASSES

CERTAINTY_LEVELS: dict[str, int] = {"unsure": 40, "probable": 70, "certain": 90}  # percent
DEFAULT_CERTAINTY = "probable"
TYPE_KEYS = {name: str(i) for i, name in enumerate(CLASSES, start=1)}  # 1 SCC, 2 AC, 3 ASC
CERTAINTY_KEYS = {name: str(i) for i, name in enumerate(CERTAINTY_LEVELS, start=4)}  # 4, 5, 6


def confidences_for(label: str, certainty: str = DEFAULT_CERTAINTY) -> dict[str, float]:
    """Per-class confidences in percent for a type and a certainty level (they sum to 100).

    Raises
    ------
    ValueError
        On an unknown type or certainty level.
    """
    if label not in CLASSES:
        raise ValueError(f"type {label!r} is not one of {', '.join(CLASSES)}")
    if certainty not in CERTAINTY_LEVELS:
        raise ValueError(f"certainty {certainty!r} is not one of {', '.join(CERTAINTY_LEVELS)}")
    chosen = float(CERTAINTY_LEVELS[certainty])
    rest = (100.0 - chosen) / (len(CLASSES) - 1)
    return {name: chosen if name == label else rest for name in CLASSES}


def as_percent(confidences: Mapping[str, float]) -> dict[str, float]:
    """Stored confidences (fractions summing to 1) as the percentages the reader entered."""
    return {name: round(100.0 * float(confidences[name]), 6) for name in CLASSES}


def certainty_of(label: str, percent: Mapping[str, float]) -> str | None:
    """The certainty level an answer was entered with, or None when it matches no level
    (e.g. a read imported from a CSV with free confidences)."""
    for name in CERTAINTY_LEVELS:
        if dict(confidences_for(label, name)) == {k: float(v) for k, v in percent.items()}:
            return name
    return None


def format_answer(label: str, percent: Mapping[str, float]) -> str:
    """``SCC 70% · AC 15% · ASC 15%`` (up to one decimal where a value has one)."""
    return " · ".join(f"{name} {float(percent[name]):g}%" for name in CLASSES)
