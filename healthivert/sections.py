"""The one definition of a vertebral body's section heights, shared by phantom truth and
measurement.

A body is seen as columns along its local superior-inferior axis, one per (AP, LR) position.
Its antero-posterior extent is split into thirds (anterior, middle, posterior); a section's
height is the mean column height (mm) over the columns of that third that lie in the central
``CENTRAL_LR_FRACTION`` of the body's left-right extent (as the HealthiVert-GAN paper measures
in its central sagittal planes) and at least ``EDGE_MARGIN_MM`` inside its outline.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SECTIONS: tuple[str, str, str] = ("anterior", "middle", "posterior")
CENTRAL_LR_FRACTION = 0.4
#: Columns shorter than this fraction of the body's median column are partial-volume slivers
#: at its walls (a resampled mask grazes them), not body; they are left out.
MIN_COLUMN_FRACTION = 0.25
#: Columns closer than this to the body's outline are left out: a voxel mask only
#: approximates the walls, so the columns grazing them have partial heights.
EDGE_MARGIN_MM = 1.5


def full_columns(lengths: np.ndarray, fraction: float) -> np.ndarray:
    """Columns whose length (mm, or samples) is at least ``fraction`` of the median of the
    present (> 0) ones: the body's full columns, not the slivers, rims or ramps at its walls."""
    lengths = np.asarray(lengths, dtype=float)
    present = lengths > 0
    if not present.any():
        return present
    return present & (lengths >= fraction * np.median(lengths[present]))


def body_extent(heights_mm: np.ndarray, coords: np.ndarray, axis: int,
                fraction: float = MIN_COLUMN_FRACTION) -> tuple[float, float]:
    """Coordinates (mm) of the first and last grid line along ``axis`` of ``heights_mm`` that
    hold a column of at least ``fraction`` of the median one (:func:`full_columns`: the body's
    extent as its thirds are cut); NaN for an empty body."""
    return _extent(full_columns(heights_mm, fraction), coords, axis)


def _extent(present: np.ndarray, coords: np.ndarray, axis: int) -> tuple[float, float]:
    """First and last coordinate along ``axis`` of the lines of ``present`` holding a column."""
    lines = np.flatnonzero(present.any(axis=1 - axis))
    if not lines.size:
        return float("nan"), float("nan")
    return float(coords[lines[0]]), float(coords[lines[-1]])


def section_columns(
    heights_mm: np.ndarray, ap_mm: np.ndarray, lr_mm: np.ndarray
) -> dict[str, np.ndarray]:
    """The columns each section's height is averaged over.

    Args:
        heights_mm: column heights, shape (n_ap, n_lr); 0 where there is no body. Columns
            below ``MIN_COLUMN_FRACTION`` of the median are ignored.
        ap_mm: AP coordinate of each row (mm, larger = more anterior), shape (n_ap,).
        lr_mm: LR coordinate of each column (mm), shape (n_lr,).

    Returns:
        ``{"anterior", "middle", "posterior"}`` -> bool (n_ap, n_lr) (all False for an empty body).
    """
    heights_mm = np.asarray(heights_mm, dtype=float)
    present = full_columns(heights_mm, MIN_COLUMN_FRACTION)
    if not present.any():
        return {name: np.zeros(heights_mm.shape, bool) for name in SECTIONS}
    ap_lo, ap_hi = sorted(_extent(present, ap_mm, 0))
    lr_lo, lr_hi = sorted(_extent(present, lr_mm, 1))
    lr_mid, half_band = (lr_lo + lr_hi) / 2, CENTRAL_LR_FRACTION * (lr_hi - lr_lo) / 2
    in_band = np.abs(np.asarray(lr_mm) - lr_mid) <= half_band
    step = (abs(float(ap_mm[1] - ap_mm[0])) if len(ap_mm) > 1 else 1.0,
            abs(float(lr_mm[1] - lr_mm[0])) if len(lr_mm) > 1 else 1.0)
    padded = np.pad(present, 1)
    interior = ndimage.distance_transform_edt(padded, sampling=step)[1:-1, 1:-1] > EDGE_MARGIN_MM
    # thirds of the AP extent; the posterior third is the lowest AP coordinate
    edges = ap_lo + (ap_hi - ap_lo) * np.array([0, 1 / 3, 2 / 3, 1])
    ap = np.asarray(ap_mm)
    out = {}
    for name, (lo, hi) in zip(("posterior", "middle", "anterior"), zip(edges[:-1], edges[1:])):
        in_third = (ap >= lo) & (ap <= hi) if name == "anterior" else (ap >= lo) & (ap < hi)
        out[name] = interior & in_third[:, None] & in_band[None, :]
    return {name: out[name] for name in SECTIONS}


def section_heights(
    heights_mm: np.ndarray, ap_mm: np.ndarray, lr_mm: np.ndarray
) -> dict[str, float]:
    """Mean column height (mm) of each AP third of a body (see :func:`section_columns` for the
    arguments and which columns count); NaN for an empty section."""
    heights_mm = np.asarray(heights_mm, dtype=float)
    return {name: float(heights_mm[sel].mean()) if sel.any() else float("nan")
            for name, sel in section_columns(heights_mm, ap_mm, lr_mm).items()}


def relative_height_loss(healthy: dict[str, float], actual: dict[str, float]) -> dict[str, float]:
    """RHLV per section: (H_healthy - H_actual) / H_healthy, plus ``whole`` over the three."""
    rhlv = {s: (healthy[s] - actual[s]) / healthy[s] for s in SECTIONS}
    total_h = sum(healthy[s] for s in SECTIONS)
    rhlv["whole"] = (total_h - sum(actual[s] for s in SECTIONS)) / total_h
    return rhlv


def genant_grade_from_loss(max_loss: float) -> int:
    """Genant semi-quantitative grade of a height-loss fraction (0-1): thresholds 20/25/40 %."""
    if max_loss < 0.20:
        return 0
    if max_loss < 0.25:
        return 1
    if max_loss <= 0.40:
        return 2
    return 3
