"""A reader's reading order in one arm: the worklist with each repeat read slotted in just after
the worklist position it is due at, numbered 1, 2, ... as *steps*.

The reading service addresses cases by step, so a repeat is one more case in the reader's list
(same look, its own display ID), and the reader cannot tell it from a first showing. A study
without repeats has step = worklist position. Pure functions: the service fetches the plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """What a step shows: a worklist position (a first read) or a repeat (by display ID)."""

    step: int
    position: int | None = None
    repeat_id: str | None = None


def locate(step: int, afters: Sequence[int], repeat_ids: Sequence[str]) -> Slot:
    """The slot of ``step``, given the repeats' due positions ``afters`` (sorted ascending) and
    their display IDs in the same order. A step beyond the list gives a position beyond the
    worklist, which the caller refuses."""
    for index, repeat_id in enumerate(repeat_ids):
        at = repeat_step(index, afters)
        if step == at:
            return Slot(step, repeat_id=str(repeat_id))
        if step < at:
            return Slot(step, position=step - index)
    return Slot(step, position=step - len(afters))


def repeat_step(index: int, afters: Sequence[int]) -> int:
    """The step of the ``index``-th repeat (0-based, in ``afters`` order)."""
    return int(afters[index]) + index + 1


def position_step(position: int, afters: Sequence[int]) -> int:
    """The step of worklist ``position``: it follows every repeat due before it."""
    return int(position) + sum(int(a) < position for a in afters)
