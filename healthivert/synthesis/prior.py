"""The ``prior`` synthesizer: a vertebra's healthy body estimated from its neighbours.

No training. Each neighbour's body column-height map (up to two levels above and below) is
mapped onto the target's footprint in normalised AP / LR coordinates (so it takes the
target's own size), scaled by the population ratio of vertebral body heights between
the two levels, and re-wedged from the neighbour's level to the target's (the published
normative sagittal wedge of each level, :mod:`healthivert.normative`: an L2 neighbour
does not give L1 its square shape, nor L4 give L5 its). Neighbours are weighted 1 (adjacent)
and 0.5 (next but one). A vertebra with no neighbour in view takes its posterior wall's
height and its level's normative wedge. Cervical vertebrae are neither estimated nor anyone's
neighbour (:func:`healthivert.normative.graded_level`).

A body far taller than its level allows next to the others is no neighbour's reference
(:func:`healthivert.measurement.plausibility.merged_suspects` at ``NO_REFERENCE_RATIO``): two
vertebrae in one label, or a label holding a piece of the next bone. Restoring it afterwards
is too late: a 1.45-times body in mid-column lifts both neighbours' estimates past
``RESTORE_ABOVE``, and they, restored to those, then vouch for it.

Like HealthiVert-GAN's iterative synthesis, neighbours come first: a neighbour whose own
height loss exceeds ``RESTORE_ABOVE`` is replaced by its restored (pseudo-healthy) version
before it informs the target, repeated until nothing changes, so a run of fractures does not
drag the estimates down.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from healthivert.geometry.vertebrae import StraightVertebra
from healthivert.labels import T13, level_gap
from healthivert.measurement.plausibility import NO_REFERENCE_RATIO, merged_suspects
from healthivert.normative import REFERENCE_HEIGHT_MM, graded_level, wedge_drop_mm
from healthivert.sections import (
    MIN_COLUMN_FRACTION,
    SECTIONS,
    body_extent,
    full_columns,
    relative_height_loss,
    section_heights,
)
from healthivert.synthesis.base import PseudoHealthy, body_from_heights, register_synthesizer

RESTORE_ABOVE = 0.15
RATIO_METHOD = "intra-vertebral ratios"  # a body estimated with no neighbour in view
NEIGHBOURS_METHOD = "neighbours"  # a body estimated from the neighbours in view
NEIGHBOUR_WEIGHTS = {1: 1.0, 2: 0.5}
MAX_ROUNDS = 5
#: a neighbour's mapped column counts when at least this fraction of its median column: its
#: outline in the middle sagittal planes need not fill its bounding box (an L5 is shallower at
#: its midline than at its lateral lips), so laid onto the target's footprint by normalised
#: coordinates its wall can fall inside the target's anterior third, and the interpolated ramp
#: and the rim there (a few mm) must not count as the healthy height
NEIGHBOUR_FULL_FRACTION = 0.6


#: the extents the normalised mapping aligns: the target's as its sections take it (a crushed
#: front is the target's own), a neighbour's over its full-height columns only, so short bone a
#: mask holds in front of a body (an osteophyte, a calcified ligament: 5-6 mm columns over 7 mm
#: in front of sub-verse007's T10) does not lay the neighbour's anterior rim onto the target's
#: anterior third (sub-verse007's T9 then read 20-32 % taller in front than its pseudo-healthy
#: body and was not graded)
TARGET_FRACTION, SOURCE_FRACTION = MIN_COLUMN_FRACTION, NEIGHBOUR_FULL_FRACTION


def map_onto(source: StraightVertebra, source_heights: np.ndarray, target: StraightVertebra) -> np.ndarray:
    """A neighbour's column heights resampled onto the target's footprint (normalised coords)."""
    g_s, g_t = source.grid, target.grid
    lr0_s, lr1_s = body_extent(source_heights, g_s.lr_mm, 0, SOURCE_FRACTION)
    ap0_s, ap1_s = body_extent(source_heights, g_s.ap_mm, 1, SOURCE_FRACTION)
    lr0_t, lr1_t = body_extent(target.heights_mm, g_t.lr_mm, 0, TARGET_FRACTION)
    ap0_t, ap1_t = body_extent(target.heights_mm, g_t.ap_mm, 1, TARGET_FRACTION)
    lam = (g_t.lr_mm - lr0_t) / max(lr1_t - lr0_t, 1e-6)
    alp = (g_t.ap_mm - ap0_t) / max(ap1_t - ap0_t, 1e-6)
    lr_src = lr0_s + lam * (lr1_s - lr0_s)
    ap_src = ap0_s + alp * (ap1_s - ap0_s)
    i = (lr_src - g_s.lr_mm[0]) / g_s.spacing_mm[0]
    j = (ap_src - g_s.ap_mm[0]) / g_s.spacing_mm[1]
    ii, jj = np.meshgrid(i, j, indexing="ij")
    mapped = ndimage.map_coordinates(source_heights, [ii, jj], order=1, mode="constant", cval=0.0)
    return np.where(target.heights_mm > 0, mapped, 0.0)


def _ap_position(v: StraightVertebra, fraction: float = TARGET_FRACTION) -> tuple[np.ndarray, float]:
    """(n_lr, n_ap) position of each column along the body's AP extent (0 posterior wall,
    1 anterior wall) and that extent (mm)."""
    ap0, ap1 = body_extent(v.heights_mm, v.grid.ap_mm, 1, fraction)
    depth = max(ap1 - ap0, 1e-6)
    alpha = (v.grid.ap_mm - ap0) / depth
    return np.broadcast_to(alpha, v.heights_mm.shape), depth


def rewedge(target: StraightVertebra, source: StraightVertebra, mapped: np.ndarray, ratio: float) -> np.ndarray:
    """A neighbour's heights laid on the target's footprint (``mapped``), scaled by the level
    height ``ratio`` and moved from the neighbour level's normative wedge to the target's:
    un-wedged by the source's anterior-posterior drop (its own depth), scaled, then wedged by
    the target's (mean height kept; exact for bodies of their levels' normative shape)."""
    alpha, depth = _ap_position(target)
    _, source_depth = _ap_position(source, SOURCE_FRACTION)
    flat = mapped + (alpha - 0.5) * wedge_drop_mm(source.label, source_depth)
    return np.where(mapped > 0, flat * ratio - (alpha - 0.5) * wedge_drop_mm(target.label, depth), 0.0)


def estimate_from_neighbours(
    target: StraightVertebra, neighbours: list[tuple[StraightVertebra, np.ndarray]], with_t13: bool = False,
) -> np.ndarray | None:
    """Weighted mean of the neighbours' height maps on the target footprint, level-scaled."""
    total = np.zeros_like(target.heights_mm, dtype=float)
    weight = np.zeros_like(total)
    for nb, heights in neighbours:
        w = NEIGHBOUR_WEIGHTS[level_gap(nb.label, target.label, with_t13)]
        mapped = map_onto(nb, heights, target)
        ratio = REFERENCE_HEIGHT_MM[target.label] / REFERENCE_HEIGHT_MM[nb.label]
        valid = full_columns(mapped, NEIGHBOUR_FULL_FRACTION)
        total += w * np.where(valid, rewedge(target, nb, mapped, ratio), 0.0)
        weight += w * valid
    footprint = target.heights_mm > 0
    if not (weight > 0).any():
        return None
    est = np.divide(total, weight, out=np.zeros_like(total), where=weight > 0)
    holes = footprint & (weight == 0)
    if holes.any():  # footprint columns no neighbour's body covers: the nearest covered column's
        nearest = ndimage.distance_transform_edt(weight == 0, return_distances=False, return_indices=True)
        est[holes] = est[tuple(idx[holes] for idx in nearest)]
    return np.where(footprint, est, 0.0)


def _sections(v: StraightVertebra, heights: np.ndarray) -> dict[str, float]:
    return section_heights(heights.T, v.grid.ap_mm, v.grid.lr_mm)


def _ratio_estimate(v: StraightVertebra) -> np.ndarray:
    """No neighbours: the posterior third's height, wedged as the level's normative body
    (intra-vertebral ratios)."""
    posterior = _sections(v, v.heights_mm)["posterior"]
    alpha, depth = _ap_position(v)
    # the posterior third's mean sits at 1/6 of the depth
    est = posterior - (alpha - 1 / 6) * wedge_drop_mm(v.label, depth)
    return np.where(v.heights_mm > 0, np.maximum(est, 0.0), 0.0)


@register_synthesizer("prior")
def prior_synthesizer():
    """Factory for the neighbour-based pseudo-healthy prior."""
    return synthesize_prior


def synthesize_prior(vertebrae: list[StraightVertebra]) -> dict[int, PseudoHealthy]:
    """Pseudo-healthy bodies of all vertebrae (ordered cranial to caudal)."""
    usable = [v for v in vertebrae if v.body.any() and graded_level(v.label)]  # no cervical body
    healthy = {v.label: v.heights_mm.astype(float) for v in usable}
    with_t13 = any(v.label == T13 for v in vertebrae)
    too_tall = merged_suspects(usable, NO_REFERENCE_RATIO)
    near = {
        v.label: [n for n in usable if n.label != v.label and n.label not in too_tall
                  and level_gap(n.label, v.label, with_t13) in NEIGHBOUR_WEIGHTS and not n.cut_by_fov]
        for v in usable
    }
    estimates: dict[int, np.ndarray | None] = {}
    for _ in range(MAX_ROUNDS):
        estimates = {v.label: estimate_from_neighbours(v, [(n, healthy[n.label]) for n in near[v.label]], with_t13)
                     for v in usable}
        changed = False
        for v in usable:
            est = estimates[v.label]
            if est is None:
                continue
            loss = relative_height_loss(_sections(v, est), _sections(v, v.heights_mm))
            restored = max(loss[s] for s in SECTIONS) > RESTORE_ABOVE
            new = est if restored else v.heights_mm.astype(float)
            if not np.array_equal(new, healthy[v.label]):
                healthy[v.label], changed = new, True
        if not changed:
            break
    out = {}
    for v in usable:
        est = estimates.get(v.label)
        if est is None:
            est, method, used = _ratio_estimate(v), RATIO_METHOD, []
        else:
            method, used = NEIGHBOURS_METHOD, [n.label for n in near[v.label]]
        out[v.label] = PseudoHealthy(est.astype(np.float32), body_from_heights(est, v.body, v.grid.si_mm),
                                     method, used)
    return out
