"""Builders shared by the geometry, synthesis and measurement tests.

* Synthetic straightened vertebrae (:func:`straight_box`) with exact column heights, for the
  prior, the measurements and the graders, with no resampling in the way.
* Box-shaped vertebra masks as :class:`Volume` (:func:`box_mask`), for straightening.
* Phantom studies and their analysis, built once per test session (``functools.cache``) so
  every folder that needs them shares the cost (1-3 s to generate, 3-6 s to analyse).
"""

from __future__ import annotations

from functools import cache

import numpy as np

from healthivert.geometry.straighten import StraightGrid
from healthivert.geometry.vertebrae import StraightVertebra
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.volume import Volume
from healthivert.phantom import FractureSpec, PhantomConfig, PhantomStudy, make_phantom
from healthivert.pipeline import StudyAnalysis, analyse_study

# --- synthetic straightened vertebrae -------------------------------------------------------

LR_MM = np.arange(-20.0, 20.5, 1.0)
AP_MM = np.arange(-20.0, 20.5, 1.0)
SI_MM = np.arange(-20.0, 20.25, 0.5)


def footprint(half_lr_mm: float = 15.0, half_ap_mm: float = 15.0) -> np.ndarray:
    """(n_lr, n_ap) bool: a rectangular body footprint centred in the crop."""
    return (np.abs(LR_MM)[:, None] <= half_lr_mm) & (np.abs(AP_MM)[None, :] <= half_ap_mm)


def straight_box(
    label: int, heights_mm: float | np.ndarray, foot: np.ndarray | None = None, cut_by_fov: tuple[str, ...] = (),
    ct: np.ndarray | None = None,
) -> StraightVertebra:
    """A straightened vertebra whose body columns have exactly ``heights_mm`` (scalar or (n_lr, n_ap)).

    The body is centred on SI 0; the grid's world positions are never read by the code under
    test, so they are a zero-cost broadcast.
    """
    foot = footprint() if foot is None else foot
    heights = np.where(foot, np.broadcast_to(np.asarray(heights_mm, float), foot.shape), 0.0)
    body = (np.abs(SI_MM)[None, None, :] <= heights[..., None] / 2) & (heights > 0)[..., None]
    world = np.broadcast_to(np.zeros(3), (len(LR_MM), len(AP_MM), len(SI_MM), 3))
    grid = StraightGrid(label, LR_MM, AP_MM, SI_MM, world)
    return StraightVertebra(label, grid, body.astype(np.float32), body, heights.astype(np.float32), ct,
                            list(cut_by_fov))


def ap_wedge(anterior_mm: float, posterior_mm: float) -> np.ndarray:
    """(n_lr, n_ap) heights varying linearly from the posterior (AP -15) to the anterior (AP +15) edge."""
    frac = np.clip((AP_MM + 15.0) / 30.0, 0.0, 1.0)
    return np.broadcast_to(posterior_mm + (anterior_mm - posterior_mm) * frac, (len(LR_MM), len(AP_MM))).copy()


# --- box masks ---------------------------------------------------------------------------------

def box_mask(
    boxes: dict[int, tuple[slice, slice, slice]], shape: tuple[int, int, int],
    spacing_mm: tuple[float, float, float] = (1.0, 1.0, 1.0), origin_mm: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Volume:
    """A RAS label Volume holding an axis-aligned box (voxel slices) per VerSe label."""
    array = np.zeros(shape, np.uint8)
    for label, box in boxes.items():
        array[box] = label
    affine = np.diag([*spacing_mm, 1.0])
    affine[:3, 3] = origin_mm
    return Volume(array, affine)


# --- phantom studies -------------------------------------------------------------------------------

#: Two adjacent fractures (L1 severe, L2 moderate crush) on a curved spine; 1 mm slices.
FRACTURED_CFG = PhantomConfig(
    top="T11", bottom="L3", slice_mm=1.0, in_plane_mm=0.8, orientation="LPS", deformity_rate=0.0,
    fractures=(FractureSpec("L1", 3, "crush"), FractureSpec("L2", 2, "crush")),
)
#: The same spine in another orientation and voxel size: only the sampling of one anatomy differs
#: (make_phantom draws anatomy before spacing and orientation, which are given here).
RESAMPLED_CFG = PhantomConfig(
    top="T11", bottom="L3", slice_mm=1.25, in_plane_mm=1.0, orientation="PIR", deformity_rate=0.0,
    fractures=FRACTURED_CFG.fractures,
)
#: No fracture and no sub-threshold deformity anywhere.
HEALTHY_CFG = PhantomConfig(top="T11", bottom="L3", slice_mm=1.0, in_plane_mm=0.8, fractures=(), deformity_rate=0.0)
SEED = 3


@cache
def fractured_study() -> PhantomStudy:
    return make_phantom(FRACTURED_CFG, SEED)


@cache
def fractured_analysis() -> StudyAnalysis:
    """The fractured phantom straightened, synthesised and measured, with its CT."""
    study = fractured_study()
    return analyse_study(study.mask, centroids_from_mask(study.mask), study.ct)


@cache
def healthy_study() -> PhantomStudy:
    return make_phantom(HEALTHY_CFG, SEED)


@cache
def healthy_analysis() -> StudyAnalysis:
    study = healthy_study()
    return analyse_study(study.mask, centroids_from_mask(study.mask))


def truth_by_label(study: PhantomStudy) -> dict[int, dict]:
    return {v["label"]: v for v in study.truth["vertebrae"]}
