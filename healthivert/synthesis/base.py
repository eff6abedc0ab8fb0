"""The synthesizer interface and its registry (``--synthesizer prior|gan``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra, column_extent
from healthivert.registry import Registry
from healthivert.sections import full_columns


@dataclass
class PseudoHealthy:
    """A vertebra's pseudo-healthy body in its straightened frame.

    Attributes:
        heights_mm: (n_lr, n_ap) healthy column heights (mm), 0 outside the footprint.
        body: (n_lr, n_ap, n_si) pseudo-healthy body mask.
        method: how it was made ("neighbours", "intra-vertebral ratios", ...).
        neighbours: VerSe labels it was estimated from.
        fallback: why the chosen synthesizer's body was replaced by the prior's (None: it was
            not; see :mod:`healthivert.synthesis.guard`).
    """

    heights_mm: np.ndarray
    body: np.ndarray
    method: str
    neighbours: list[int]
    fallback: str | None = None


Synthesizer = Callable[[list[StraightVertebra]], dict[int, PseudoHealthy]]
SYNTHESIZERS: Registry[Synthesizer] = Registry("synthesizer")
register_synthesizer = SYNTHESIZERS.register


def get_synthesizer(name: str, **kwargs) -> Synthesizer:
    """The synthesizer registered as ``name``; a bad name lists the valid ones."""
    return SYNTHESIZERS.create(name, **kwargs)


#: a reference column at least this fraction of the body's median column height spans the body
#: from endplate to endplate; shorter ones (a rim or an osteophyte past the waist, a sliver at
#: the wall) do not say where the body's middle is
FULL_COLUMN_FRACTION = 0.8


def column_middles(reference_body: np.ndarray, si_mm: np.ndarray) -> np.ndarray:
    """SI position (mm) of each (LR, AP) column's middle: the midpoint of a full column's run;
    for a short column (a rim past the concave wall), the plane fitted through the full
    columns' midpoints, so its pseudo-healthy column stands in line with the body's.

    Args:
        reference_body: (n_lr, n_ap, n_si) bool body.
        si_mm: SI coordinate (mm) of each sample along the last axis.
    """
    present, first, last = column_extent(reference_body)
    mid_mm = np.interp((first + last) / 2.0, np.arange(reference_body.shape[2]), si_mm)
    full = full_columns(np.where(present, last - first + 1, 0), FULL_COLUMN_FRACTION)
    if full.sum() < 3:
        return mid_mm
    # least squares plane mid = c0 + c1 * i + c2 * j through the full columns (a few hundred
    # points; NumPy's lstsq is all it takes)
    i, j = np.nonzero(full)
    design = np.column_stack([np.ones(i.size), i, j])
    coef, *_ = np.linalg.lstsq(design, mid_mm[full], rcond=None)
    ii, jj = np.indices(present.shape)
    plane = coef[0] + coef[1] * ii + coef[2] * jj
    return np.where(full, mid_mm, plane)


def body_from_heights(heights_mm: np.ndarray, reference_body: np.ndarray, si_mm: np.ndarray) -> np.ndarray:
    """A body mask whose columns have ``heights_mm``, centred on the reference body's column
    middles (:func:`column_middles`)."""
    mid_mm = column_middles(reference_body, si_mm)
    lo, hi = mid_mm - heights_mm / 2, mid_mm + heights_mm / 2
    body = (si_mm[None, None, :] >= lo[..., None]) & (si_mm[None, None, :] <= hi[..., None])
    return body & (heights_mm > 0)[..., None]
