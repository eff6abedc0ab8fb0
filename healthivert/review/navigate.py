"""Next / previous unreviewed vertebra or study: the reading order a reviewer steps through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def step_to(order: Sequence[T], todo: set[T] | frozenset[T], current: T | None, step: int = 1) -> T | None:
    """The next (``step`` 1) or previous (-1) item of ``order`` after ``current`` that is in ``todo``,
    wrapping around; ``current`` itself only when it is the one left. None when ``todo`` holds none
    of ``order``.
    """
    if step not in (1, -1):
        raise ValueError(f"step is 1 (next) or -1 (previous); got {step!r}")
    if not order:
        return None
    start = order.index(current) if current in order else (-1 if step == 1 else len(order))
    n = len(order)
    for k in range(1, n + 1):
        item = order[(start + step * k) % n]
        if item in todo:
            return item
    return None


def pick_from_table(rows: Sequence[int], labels: Sequence[int]) -> int | None:
    """The label of the row a reviewer selected in the vertebra table (None: no valid selection)."""
    if len(rows) != 1 or not 0 <= int(rows[0]) < len(labels):
        return None
    return labels[int(rows[0])]
