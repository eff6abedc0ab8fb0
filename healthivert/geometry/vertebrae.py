"""Every vertebra of a study straightened, its body isolated and its column heights taken."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from healthivert.geometry.align import MAX_TILT_DEG, TOLERANCE_DEG, body_normal, tilt_deg, tilted_grid
from healthivert.geometry.body import IsolatedBody, isolated_body
from healthivert.geometry.curve import SpineCurve
from healthivert.geometry.straighten import (
    CropSpec,
    StraightGrid,
    core_centres,
    fit_body_axis,
    straight_grid,
    straighten_label,
    straighten_labels,
    straighten_volume,
)
from healthivert.io.volume import Volume
from healthivert.labels import VERTEBRA_LABELS, sort_cranial_to_caudal
from healthivert.sections import SECTIONS, section_columns


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
        cut_by_fov: the image faces that cut the body (empty when every section is whole;
            a body that only touches an edge is whole).
        labels: every VerSe label on the grid (nearest sample, uint8), or None; taken when a CT
            is given, for synthesizers that read the neighbours (``gan``).
        cut_sections: the sections (``anterior``, ``middle``, ``posterior``) whose columns the
            field of view cuts; all three when the cut is across the body.
        touches_fov: the image faces the body touches without cutting a section.
        tilt_deg: how far (degrees) the crop was turned from the spine curve's frame to the
            body's own (0 when the curve's frame already follows the body).
        heights_bounded: the cut sections' measured heights are lower bounds of the real ones:
            no image face cuts the label across (it only touches them) and the cut sections'
            columns run into the image's edge along SI, so the edge can only have shortened
            them (the footprint is whole).
        beyond_disc_mm: SI extent (mm) of bone the label holds beyond a disc, left out of the
            body as a piece of a neighbour (:mod:`healthivert.geometry.body`); 0 for none.
    """

    label: int
    grid: StraightGrid
    soft: np.ndarray
    body: np.ndarray
    heights_mm: np.ndarray
    ct: np.ndarray | None
    cut_by_fov: list[str]
    labels: np.ndarray | None = None
    cut_sections: list[str] = field(default_factory=list)
    touches_fov: list[str] = field(default_factory=list)
    tilt_deg: float = 0.0
    heights_bounded: bool = False
    beyond_disc_mm: float = 0.0


def column_extent(body: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per column along the last (SI) axis of a bool mask: whether it holds any of the mask,
    and the index of its first and last sample (0 where it holds none)."""
    present = body.any(axis=-1)
    first = np.where(present, np.argmax(body, axis=-1), 0)
    last = np.where(present, body.shape[-1] - 1 - np.argmax(body[..., ::-1], axis=-1), 0)
    return present, first, last


def column_heights(soft: np.ndarray, body: np.ndarray, si_step_mm: float) -> np.ndarray:
    """Body column heights (mm) along the last (SI) axis, to sub-voxel precision.

    The soft indicator is summed over the body dilated by two samples along SI, so the
    linear ramp at each endplate counts for its half-way point. A column's samples between its
    first and last body sample count in full: a real body's wall is concave (its waist), so a
    column near the wall runs through the rims of both endplates but not the waist; its height
    is the distance between the endplates, as a reader measures it (Genant's anterior height
    runs from corner to corner), not the bone it crosses. Counting only the bone read the
    anterior third of real normal bodies 1-5 mm short (sub-verse014 L1: 18.7 mm against
    23.3 mm corner to corner).
    """
    has_body, first, last = column_extent(body)
    along = np.arange(body.shape[2])
    run = (along >= first[..., None]) & (along <= last[..., None]) & has_body[..., None]
    along_si = np.zeros((1, 1, 5), dtype=bool)
    along_si[0, 0, :] = True
    near_body = ndimage.binary_dilation(run, structure=along_si)
    filled = np.where(run & ~body, 1.0, soft)
    heights = (filled * near_body).sum(axis=2) * si_step_mm
    heights[~has_body] = 0.0
    return heights.astype(np.float32)


_FACES = ("right", "left", "anterior", "posterior", "superior", "inferior")
#: vertebrae smaller than this fraction of the median (slivers at the edge of the field of
#: view) do not shape the spine curve
MIN_CURVE_VOLUME_FRACTION = 0.25
#: a body closer than this to the edge of the image is taken as reaching it
FOV_MARGIN_MM = 1.5
#: a label whose cross-section on an image face is at least this fraction of its largest
#: cross-section parallel to it is cut across by that face; below it, the label only touches
#: the face. A crop ending at the mask's own bounding box leaves the tip of a convex wall on
#: the face: 0.00-0.10 for the whole vertebrae of the real VerSe crops, about 0.2 for a bare
#: 20 mm-radius body at 1 mm voxels. A cut across the body leaves the body's whole section
#: (0.93 for the real T10 cut at mid-height). A shallower cut is left to the column check.
CUT_CONTACT_FRACTION = 0.35


def fov_contact(mask: Volume, label: int) -> dict[str, float]:
    """Image faces (RAS names) the label reaches -> its cross-section nearest that face as a
    fraction of its largest cross-section parallel to the face (0..1). Within ``FOV_MARGIN_MM``
    of the face counts as reaching it: a label segmented from the CT may stop a voxel short of
    the face that cuts its vertebra (the network's outline runs inside the cortex), and
    measured as whole it reads the cut as a fracture."""
    touched = {}
    a = mask.array == label
    for axis in range(3):
        area = a.sum(axis=tuple(k for k in range(3) if k != axis))
        top = float(area.max()) if area.size else 0.0
        k = min(int(FOV_MARGIN_MM / float(mask.spacing_mm[axis]) + 1e-6), len(area) - 1)
        for near, face in ((area[len(area) - 1 - k:][::-1], _FACES[2 * axis]), (area[:k + 1], _FACES[2 * axis + 1])):
            if near.any():  # the label's plane nearest the face
                touched[face] = float(near[np.flatnonzero(near)[0]]) / top
    return touched


def _outside_fov(mask: Volume, grid: StraightGrid) -> np.ndarray:
    """(n_lr, n_ap, n_si) bool: samples of the grid that lie outside the image."""
    ijk = mask.world_to_voxel(grid.world_mm.reshape(-1, 3)).reshape(grid.world_mm.shape)
    return ~np.all((ijk >= 0) & (ijk <= np.array(mask.shape) - 1), axis=-1)


def _margin_steps(grid: StraightGrid) -> list[int]:
    return [max(1, int(round(FOV_MARGIN_MM / s))) for s in grid.spacing_mm]


def body_outside_fov(outside: np.ndarray, grid: StraightGrid, body: np.ndarray) -> bool:
    """Whether the body reaches within ``FOV_MARGIN_MM`` of the image's edge (or past it);
    ``outside`` marks the grid's samples outside the image."""
    near_body = ndimage.binary_dilation(body, structure=np.ones([2 * k + 1 for k in _margin_steps(grid)], bool))
    return bool((near_body & outside).any())


def cut_columns(outside: np.ndarray, grid: StraightGrid, body: np.ndarray) -> np.ndarray:
    """(n_lr, n_ap) bool: body columns whose run along SI ends within ``FOV_MARGIN_MM`` of the
    image's edge, so their measured height may be short of the real one."""
    k = _margin_steps(grid)[2]
    along_si = np.zeros((1, 1, 2 * k + 1), dtype=bool)
    along_si[0, 0, :] = True
    reach = ndimage.binary_dilation(body, structure=along_si)
    return (reach & outside).any(axis=2) & body.any(axis=2)


def _cut_across(contact: dict[str, float]) -> bool:
    """Whether some image face cuts the label across (see :data:`CUT_CONTACT_FRACTION`)."""
    return any(frac >= CUT_CONTACT_FRACTION for frac in contact.values())


class FovStatus(NamedTuple):
    """How the field of view meets a body (see :class:`StraightVertebra`'s fields of the same names)."""

    cut_by_fov: list[str]
    cut_sections: list[str]
    touches_fov: list[str]
    heights_bounded: bool = False


def fov_status(mask: Volume, grid: StraightGrid, body: np.ndarray, heights_mm: np.ndarray,
               contact: dict[str, float]) -> FovStatus:
    """Faces that cut the body, sections cut, faces the body only touches, and whether the cut
    sections' heights are lower bounds, from the label's ``contact`` with the image faces
    (:func:`fov_contact`).

    A face across which the label is cut (:data:`CUT_CONTACT_FRACTION`) while its body reaches
    it cuts every section. A face the label only touches cuts just the sections whose measured
    columns (:func:`~healthivert.sections.section_columns`) run into the image's edge; their
    heights are then lower bounds (a tight crop ending at a body's endplate, or just inside it).
    """
    if not contact:  # only a label at the edge needs the body check
        return FovStatus([], [], [])
    outside = _outside_fov(mask, grid)
    if not body_outside_fov(outside, grid, body):
        return FovStatus([], [], [])
    if _cut_across(contact):
        return FovStatus(list(contact), list(SECTIONS), [])
    columns = cut_columns(outside, grid, body)
    by_section = section_columns(heights_mm.T, grid.ap_mm, grid.lr_mm)
    cut = [s for s in SECTIONS if (by_section[s] & columns.T).any()]
    return FovStatus(list(contact), cut, [], True) if cut else FovStatus([], [], list(contact))


def body_aligned(
    mask: Volume, label: int, grid: StraightGrid, rounds: int = 3, contact: dict[str, float] | None = None,
) -> tuple[StraightGrid, np.ndarray, IsolatedBody, float]:
    """(grid, soft indicator, body, tilt in degrees) of a vertebra in its body's own frame.

    Starting from the curve's frame, the crop is turned until the tilt both endplates share is
    below ``TOLERANCE_DEG`` (see :mod:`healthivert.geometry.align`); a total turn beyond
    ``MAX_TILT_DEG`` is not trusted and the curve's frame is kept. So is the curve's frame of
    a body that an image face cuts across (``contact``: :func:`fov_contact`): the cut face
    passes for an endplate, and a frame turned to it can leave a fragment that no longer
    reaches the edge (sub-verse014's T12, cut by the top of its CT and segmented ragged, was
    turned 31 degrees, measured 11 mm tall and graded 3).
    """
    start = grid
    soft = straighten_label(mask, label, grid)
    found = isolated_body(soft >= 0.5, grid.lr_mm, grid.ap_mm, grid.spacing_mm[2])
    if contact and _cut_across(contact) and body_outside_fov(_outside_fov(mask, grid), grid, found.body):
        return grid, soft, found, 0.0
    unturned = soft, found
    total = 0.0
    for _ in range(rounds):
        normal = body_normal(found.body, grid)
        if normal is None or tilt_deg(normal) < TOLERANCE_DEG:
            break
        turned = tilted_grid(grid, normal)
        total = _angle_between(start, turned)
        if total > MAX_TILT_DEG:
            break
        grid = turned
        soft = straighten_label(mask, label, grid)
        found = isolated_body(soft >= 0.5, grid.lr_mm, grid.ap_mm, grid.spacing_mm[2])
    if total > MAX_TILT_DEG:
        (soft, found), grid, total = unturned, start, 0.0
    return grid, soft, found, round(total, 1)


def _si_axis(grid: StraightGrid) -> np.ndarray:
    axis = grid.world_mm[0, 0, -1] - grid.world_mm[0, 0, 0]
    return axis / np.linalg.norm(axis)


def _angle_between(a: StraightGrid, b: StraightGrid) -> float:
    return float(np.degrees(np.arccos(np.clip(_si_axis(a) @ _si_axis(b), -1.0, 1.0))))


def straighten_vertebrae(
    mask: Volume, centroids: dict[int, np.ndarray], ct: Volume | None = None,
    spec: CropSpec = CropSpec(), progress: Callable[[int, int, str], None] | None = None,
) -> tuple[SpineCurve, list[StraightVertebra]]:
    """Straighten every vertebra that has a centroid, cranial to caudal."""
    labels = [lab for lab in sort_cranial_to_caudal(centroids) if lab in VERTEBRA_LABELS]
    counts = np.bincount(mask.array.ravel(), minlength=256)
    typical = float(np.median([counts[lab] for lab in labels])) if labels else 0.0
    shaping = [lab for lab in labels if counts[lab] >= MIN_CURVE_VOLUME_FRACTION * typical]
    cores = core_centres(mask, shaping)
    curve = fit_body_axis(mask, {lab: cores.get(lab, centroids[lab]) for lab in shaping})
    others = {lab: curve.project(centroids[lab]) for lab in labels if lab not in curve.anchors}
    curve = replace(curve, anchors={**curve.anchors, **others})
    out = []
    for i, label in enumerate(labels):
        contact = fov_contact(mask, label)
        grid, soft, found, tilt = body_aligned(mask, label, straight_grid(curve, label, spec), contact=contact)
        body = found.body
        heights = column_heights(soft, body, grid.spacing_mm[2])
        ct_crop = straighten_volume(ct, grid) if ct is not None else None
        label_map = straighten_labels(mask, grid) if ct is not None else None
        fov = fov_status(mask, grid, body, heights, contact)
        out.append(StraightVertebra(label, grid, soft, body, heights, ct_crop, fov.cut_by_fov, label_map,
                                    fov.cut_sections, fov.touches_fov, tilt, fov.heights_bounded,
                                    found.beyond_disc * float(grid.spacing_mm[2])))
        if progress:
            progress(i + 1, len(labels), f"straightened label {label}")
    return curve, out
