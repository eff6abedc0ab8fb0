"""A vertebra's own frame: the straightened crop turned by the tilt that both of the body's
endplates show in it.

The spine curve's frame at a vertebra follows the line through the neighbouring centroids.
Where the spine bends sharply (the lumbosacral lordosis) and at the ends of the curve, where
the spline is extrapolated, that frame can stand tens of degrees off the body, and vertical
columns then cross its endplates obliquely (a normal L5 read as a wedge). Planes fitted to the
superior and inferior endplates (the ends of the body's full columns; columns cut short by
the anterior or posterior wall of a tilted body are left out) give the body's own axis where
both agree (:func:`body_normal`); the fit is repeated on the re-sampled crop until the tilt
is below ``TOLERANCE_DEG``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from healthivert.geometry.straighten import StraightGrid

#: a residual tilt below this is left alone (heights change by 1 - cos: under 0.1 %)
TOLERANCE_DEG = 2.0
#: a fitted tilt beyond this is not trusted (the body was not isolated cleanly): keep the curve's frame
MAX_TILT_DEG = 40.0
#: columns kept for the fit: at least this fraction of the tall columns' height (90th percentile)
FULL_COLUMN_FRACTION = 0.7
#: columns this close to the footprint's outline are left out (walls, partial volume)
INTERIOR_MM = 2.0
MIN_COLUMNS = 30


def _endplate_slopes(body: np.ndarray, grid: StraightGrid) -> tuple[np.ndarray, np.ndarray] | None:
    """(superior, inferior) endplate slopes (dSI/dLR, dSI/dAP) fitted on the body's full
    columns, or None when too few support a fit."""
    present = body.any(axis=2)
    if present.sum() < MIN_COLUMNS:
        return None
    n_si = body.shape[2]
    first = body.argmax(axis=2)
    last = n_si - 1 - body[:, :, ::-1].argmax(axis=2)
    height = np.where(present, last - first + 1, 0)
    interior = ndimage.distance_transform_edt(np.pad(present, 1), sampling=grid.spacing_mm[:2])[1:-1, 1:-1]
    keep = present & (interior > INTERIOR_MM)
    if keep.sum() < MIN_COLUMNS:
        return None
    keep &= height >= FULL_COLUMN_FRACTION * np.percentile(height[keep], 90)
    if keep.sum() < MIN_COLUMNS:
        return None
    lr, ap = np.meshgrid(grid.lr_mm, grid.ap_mm, indexing="ij")
    design = np.column_stack([np.ones(keep.sum()), lr[keep], ap[keep]])
    slopes = []
    for surface in (last, first):
        target = np.interp(surface[keep].astype(float), np.arange(n_si), grid.si_mm)
        coef = np.linalg.lstsq(design, target, rcond=None)[0]
        residual = np.abs(target - design @ coef)
        inliers = residual <= max(3.0 * np.median(residual), grid.spacing_mm[2])  # one robust pass
        if inliers.sum() >= MIN_COLUMNS:
            coef = np.linalg.lstsq(design[inliers], target[inliers], rcond=None)[0]
        slopes.append(coef[1:])
    return slopes[0], slopes[1]


def body_normal(body: np.ndarray, grid: StraightGrid) -> np.ndarray | None:
    """Unit normal (LR, AP, SI crop coordinates, SI > 0) of the body's own frame, or None when
    too few full columns support a fit.

    Three estimates of the vertebra's axis vote: the crop's (the spine curve's), the superior
    endplate's and the inferior endplate's; each slope component is their median. A body
    tilted as a whole (both endplates agree) is turned upright by the smaller of the two
    tilts; a fracture that tilts one endplate only (a wedge) leaves the frame to the spine,
    as the healthy body it is compared with stood.

    Args:
        body: (n_lr, n_ap, n_si) bool body mask on ``grid``.
    """
    slopes = _endplate_slopes(body, grid)
    if slopes is None:
        return None
    consensus = np.median(np.stack([slopes[0], slopes[1], np.zeros(2)]), axis=0)
    normal = np.array([-consensus[0], -consensus[1], 1.0])
    return normal / np.linalg.norm(normal)


def tilt_deg(normal: np.ndarray) -> float:
    """Angle (degrees) between a crop-frame normal and the crop's SI axis."""
    return float(np.degrees(np.arccos(np.clip(normal[2], -1.0, 1.0))))


def _rotation_from_si(normal: np.ndarray) -> np.ndarray:
    """The smallest rotation taking (0, 0, 1) to ``normal`` (Rodrigues' formula)."""
    v = np.cross([0.0, 0.0, 1.0], normal)
    s, c = np.linalg.norm(v), float(normal[2])
    if s < 1e-12:
        return np.eye(3)
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * ((1 - c) / s**2)


def tilted_grid(grid: StraightGrid, normal: np.ndarray) -> StraightGrid:
    """The same crop (axes, spacing, centre) turned about its centre so SI runs along ``normal``.

    ``grid`` must be rigid (one frame for the whole crop, as :func:`straight_grid` makes by
    default); its frame is read back from its world positions.
    """
    w = grid.world_mm
    axes = np.stack([
        (w[-1, 0, 0] - w[0, 0, 0]) / (grid.lr_mm[-1] - grid.lr_mm[0]),
        (w[0, -1, 0] - w[0, 0, 0]) / (grid.ap_mm[-1] - grid.ap_mm[0]),
        (w[0, 0, -1] - w[0, 0, 0]) / (grid.si_mm[-1] - grid.si_mm[0]),
    ], axis=1)  # columns: LR, AP, SI unit vectors in RAS
    centre = w[0, 0, 0] - axes @ np.array([grid.lr_mm[0], grid.ap_mm[0], grid.si_mm[0]])
    new_axes = axes @ _rotation_from_si(np.asarray(normal, float))
    local = np.stack(np.meshgrid(grid.lr_mm, grid.ap_mm, grid.si_mm, indexing="ij"), axis=-1)
    return StraightGrid(grid.label, grid.lr_mm, grid.ap_mm, grid.si_mm, local @ new_axes.T + centre)
