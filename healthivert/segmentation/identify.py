"""From a vertebra / sacrum class map to one VerSe label per vertebra.

Design: the network only says "vertebra" or "sacrum"; which vertebra is which is decided
here, anatomically. Vertebrae are separated as connected components after a small erosion
(discs part them), every voxel then goes to its nearest piece, and pieces too small to be a
vertebra are dropped. The pieces are ordered along the body axis and counted upwards from
the sacrum: the piece resting on it is L5.

How it fails: a lumbosacral transitional vertebra (L6, or a sacralised L5) shifts every
label by one; without the sacrum in view the lowest vertebra is *assumed* to be L5 and the
result says so; bridging osteophytes or a fused segment can merge two vertebrae into one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from healthivert.labels import sort_cranial_to_caudal

MIN_VERTEBRA_ML = 4.0
MIN_SACRUM_ML = 5.0
SACRUM_LABEL = 26


@dataclass
class Identification:
    """Instance labels (VerSe) and how they were anchored."""

    labels: np.ndarray
    anchored_on_sacrum: bool
    notes: list[str] = field(default_factory=list)


def _separate(vertebra: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Instances of a binary vertebra map: eroded components grown back over the map."""
    core = ndimage.binary_erosion(vertebra, iterations=1)
    seeds, n = ndimage.label(core)
    if n == 0:
        return np.zeros(vertebra.shape, np.int32)
    sizes = ndimage.sum_labels(core, seeds, index=np.arange(1, n + 1)) * voxel_ml
    keep = np.zeros(n + 1, bool)
    keep[1:] = sizes >= MIN_VERTEBRA_ML / 2
    seeds = np.where(keep[seeds], seeds, 0)
    # every vertebra voxel joins its nearest seed
    _, (ii, jj, kk) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    grown = np.where(vertebra, seeds[ii, jj, kk], 0)
    ids, counts = np.unique(grown[grown > 0], return_counts=True)
    big = ids[counts * voxel_ml >= MIN_VERTEBRA_ML]
    return np.where(np.isin(grown, big), grown, 0).astype(np.int32)


def identify(classes: np.ndarray, affine: np.ndarray, vertebra_class: int = 1, sacrum_class: int = 2) -> Identification:
    """VerSe labels for a class map in RAS+ (``affine`` voxel -> RAS mm).

    Returns labels on the same grid: vertebrae 1-25, sacrum 26, background 0.
    """
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    instances = _separate(classes == vertebra_class, voxel_ml)
    sacrum_lab, n_sac = ndimage.label(classes == sacrum_class)
    sacrum = np.zeros(classes.shape, bool)
    if n_sac:
        sizes = ndimage.sum_labels(np.ones_like(sacrum_lab), sacrum_lab, index=np.arange(1, n_sac + 1))
        if sizes.max() * voxel_ml >= MIN_SACRUM_ML:
            sacrum = sacrum_lab == (1 + int(np.argmax(sizes)))
    ids = [int(i) for i in np.unique(instances) if i]
    out = np.zeros(classes.shape, np.uint8)
    notes: list[str] = []
    if not ids:
        return Identification(out, False, ["no vertebra found"])
    coms = ndimage.center_of_mass(np.ones(classes.shape), instances, ids)
    z = {i: float((affine[:3, :3] @ np.array(c) + affine[:3, 3])[2]) for i, c in zip(ids, coms)}
    order = sorted(ids, key=lambda i: -z[i])  # cranial first
    anchored = bool(sacrum.any())
    if anchored:
        sac_z = float((affine[:3, :3] @ np.array(ndimage.center_of_mass(sacrum)) + affine[:3, 3])[2])
        order = [i for i in order if z[i] > sac_z]  # nothing below the sacrum is lumbar
        out[sacrum] = SACRUM_LABEL
    else:
        notes.append("no sacrum in view: the lowest vertebra is assumed to be L5")
    lumbar_down = list(range(24, 7, -1)) + list(range(7, 0, -1))  # L5, L4 ... T1, C7 ... C1
    for i, label in zip(order[::-1], lumbar_down):
        out[instances == i] = label
    if len(order) > len(lumbar_down):
        notes.append("more vertebrae than labels: the topmost were left unlabelled")
    return Identification(out, anchored, notes)


def labels_present(labels: np.ndarray) -> list[int]:
    """VerSe labels in a map, cranial to caudal."""
    return sort_cranial_to_caudal(int(x) for x in np.unique(labels) if x)
