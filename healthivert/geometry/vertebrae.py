"""Every vertebra of a study straightened, its body isolated and its column heights taken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from healthivert.geometry.body import isolate_body
from healthivert.geometry.curve import SpineCurve
from healthivert.geometry.straighten import (
    CropSpec,
    StraightGrid,
    fit_body_axis,
    straight_grid,
    straighten_label,
    straighten_labels,
    straighten_volume,
)
from healthivert.io.volume import Volume
from healthivert.labels import VERTEBRA_LABELS, sort_cranial_to_caudal


@dataclass
class StraightVertebra:
    """One vertebra in its straightened frame (axes LR, AP, SI; see :class:`StraightGrid`).

    Attributes:
        label: VerSe label.
        grid: where the crop samples the world.
        soft: the label's interpolated indicator (0..1).
        body: the isolated vertebral body (bool).
        heights_mm: (n_lr, n_ap) body column heights along SI (mm), 0 outside the body.
        ct: straightened CT (HU) or None.
        cut_by_fov: the image faces the label touches, when its body reaches the image's edge
            (empty when the body is wholly in view).
        labels: every VerSe label on the grid (nearest sample, uint8), or None; taken when a CT
            is given, for synthesizers that read the neighbours (``gan``).
    """

    label: int
    grid: StraightGrid
    soft: np.ndarray
    body: np.ndarray
    heights_mm: np.ndarray
    ct: np.ndarray | None
    cut_by_fov: list[str]
    labels: np.ndarray | None = None


def column_heights(soft: np.ndarray, body: np.ndarray, si_step_mm: float) -> np.ndarray:
    """Body column heights (mm) along the last (SI) axis, to sub-voxel precision.

    The soft indicator is summed over the body dilated by two samples along SI, so the
    linear ramp at each endplate counts for its half-way point.
    """
    along_si = np.zeros((1, 1, 5), dtype=bool)
    along_si[0, 0, :] = True
    near_body = ndimage.binary_dilation(body, structure=along_si)
    heights = (soft * near_body).sum(axis=2) * si_step_mm
    heights[~body.any(axis=2)] = 0.0
    return heights.astype(np.float32)


_FACES = ("right", "left", "anterior", "posterior", "superior", "inferior")
#: vertebrae smaller than this fraction of the median (slivers at the edge of the field of
#: view) do not shape the spine curve
MIN_CURVE_VOLUME_FRACTION = 0.25
#: a body closer than this to the edge of the image is taken as cut by the field of view
FOV_MARGIN_MM = 1.5


def fov_faces(mask: Volume, label: int) -> list[str]:
    """Names of the image faces (RAS) that a label touches: it is cut by the field of view."""
    touched = []
    a = mask.array == label
    for axis in range(3):
        lo = np.take(a, 0, axis=axis).any()
        hi = np.take(a, -1, axis=axis).any()
        if hi:
            touched.append(_FACES[2 * axis])
        if lo:
            touched.append(_FACES[2 * axis + 1])
    return touched


def body_outside_fov(mask: Volume, grid: StraightGrid, body: np.ndarray) -> bool:
    """Whether the body reaches within ``FOV_MARGIN_MM`` of the image's edge (or past it)."""
    ijk = mask.world_to_voxel(grid.world_mm.reshape(-1, 3)).reshape(grid.world_mm.shape)
    inside = np.all((ijk >= 0) & (ijk <= np.array(mask.shape) - 1), axis=-1)
    steps = [max(1, int(round(FOV_MARGIN_MM / s))) for s in grid.spacing_mm]
    near_body = ndimage.binary_dilation(body, structure=np.ones([2 * k + 1 for k in steps], bool))
    return bool((near_body & ~inside).any())


def straighten_vertebrae(
    mask: Volume, centroids: dict[int, np.ndarray], ct: Volume | None = None,
    spec: CropSpec = CropSpec(), progress: Callable[[int, int, str], None] | None = None,
) -> tuple[SpineCurve, list[StraightVertebra]]:
    """Straighten every vertebra that has a centroid, cranial to caudal."""
    labels = [lab for lab in sort_cranial_to_caudal(centroids) if lab in VERTEBRA_LABELS]
    counts = np.bincount(mask.array.ravel(), minlength=256)
    typical = float(np.median([counts[lab] for lab in labels])) if labels else 0.0
    shaping = [lab for lab in labels if counts[lab] >= MIN_CURVE_VOLUME_FRACTION * typical]
    curve = fit_body_axis(mask, {lab: centroids[lab] for lab in shaping})
    others = {lab: curve.project(centroids[lab]) for lab in labels if lab not in curve.anchors}
    curve = replace(curve, anchors={**curve.anchors, **others})
    out = []
    for i, label in enumerate(labels):
        grid = straight_grid(curve, label, spec)
        soft = straighten_label(mask, label, grid)
        body = isolate_body(soft >= 0.5, grid.lr_mm, grid.ap_mm)
        heights = column_heights(soft, body, grid.spacing_mm[2])
        ct_crop = straighten_volume(ct, grid) if ct is not None else None
        label_map = straighten_labels(mask, grid) if ct is not None else None
        faces = fov_faces(mask, label)  # cheap; only a label at the edge needs the body check
        cut = faces if faces and body_outside_fov(mask, grid, body) else []
        out.append(StraightVertebra(label, grid, soft, body, heights, ct_crop, cut, label_map))
        if progress:
            progress(i + 1, len(labels), f"straightened label {label}")
    return curve, out
