"""The arches of neighbouring vertebrae parted at the CT's own joint spaces.

Identification (:mod:`healthivert.segmentation.identify`) works on the network's 2 mm grid and
shares the arches between vertebrae by geodesic distance from their bodies. Where the network
fills a facet joint (a voxel wide at 2 mm), that distance decides, and the inferior articular
and spinous processes of a vertebra, which reach down beside the next one, often go to the
vertebra below (real VerSe CTs: 5-13 % of the correctly outlined bone at a neighbour's label).
On the CT's own grid the joint spaces are darker than the bone either side of them. So each
vertebra keeps its body as identified, with a rim as wide as the CT grid's outline reaches
past the network's (the disc cuts, which the grading measures), and what lies farther than
``BAND_MM`` from any other vertebra's label; the rest of the bone is flooded from those
markers over the inverted CT (a marker-controlled watershed: SimpleITK's
``MorphologicalWatershedFromMarkers``), so that neighbouring arches meet where the CT is
darkest. The outline of the bone is not changed, only which label each voxel takes.

Why the bodies are kept: over the CT an osteoporotic body's dim core parts as readily as a
thin disc, and a flooded rim moves an endplate (docs/experiments.md). Not kept are the bodies
beside a cut that no disc showed (identification split a merged segment at the expected
length there): that cut is a guess, and the CT places the disc better (``infer.part_arches``).
The watershed is SimpleITK's; only the markers are chosen here.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

#: labels farther than this from another vertebra's are kept as they are. Chosen on the three
#: real VerSe subjects at hand, each segmented by the weights that never saw it (mean Dice per
#: vertebra 0.788 without flooding; 0.793 / 0.802 / 0.799 / 0.796 at 6 / 8 / 10 / 12 mm):
#: benchmarks/README.md.
BAND_MM = 8.0
#: Gaussian smoothing of the CT before the flooding (noise of a few HU from voxel to voxel)
SMOOTH_MM = 0.5
_HU_RANGE = (-500.0, 1500.0)  # the flooding height: inverted HU, clipped


def confident_markers(labels: np.ndarray, bodies: np.ndarray, spacing_mm, band_mm: float = BAND_MM) -> np.ndarray:
    """Each label where it lies at least ``band_mm`` from any other label, and on its body.

    Args:
        labels: VerSe labels on a grid of ``spacing_mm`` (one value, or one per axis).
        bodies: the same labels on the vertebral bodies alone
            (:attr:`~healthivert.segmentation.identify.Identification.bodies`).
    A label left without a marker (thin, and near a neighbour everywhere) keeps all its voxels.
    """
    spacing = np.broadcast_to(np.asarray(spacing_mm, float), (3,))
    pad = np.ceil(band_mm / spacing).astype(int) + 1
    markers = np.where(bodies > 0, bodies, 0).astype(np.uint8)
    for label in np.unique(labels[labels > 0]):
        own = np.argwhere(labels == label)
        lo, hi = np.maximum(own.min(axis=0) - pad, 0), np.minimum(own.max(axis=0) + pad + 1, labels.shape)
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        other = (labels[box] > 0) & (labels[box] != label)
        far = ndimage.distance_transform_edt(~other, sampling=spacing) >= band_mm if other.any() else True
        keep = (labels[box] == label) & far
        markers[box][keep & (markers[box] == 0)] = label
        if not (markers == label).any():
            markers[labels == label] = label
    return markers


def body_zone(bodies: np.ndarray, spacing_mm, rim_mm: float) -> np.ndarray:
    """The bodies and a rim of ``rim_mm`` around them (bool, on the bodies' grid): where the
    labels stay as identified. The rim covers the outline that the CT's finer grid adds past
    the network's (``infer.labels_on_grid`` reaches that far), so no body voxel is flooded."""
    spacing = np.broadcast_to(np.asarray(spacing_mm, float), (3,))
    r = np.ceil(rim_mm / spacing).astype(int)
    grid = np.mgrid[tuple(slice(-k, k + 1) for k in r)]
    ball = sum((g * s) ** 2 for g, s in zip(grid, spacing)) <= rim_mm ** 2
    return ndimage.binary_dilation(bodies > 0, ball)


def flood_from_markers(labels: np.ndarray, markers: np.ndarray, hu: np.ndarray, spacing_mm,
                       smooth_mm: float = SMOOTH_MM) -> np.ndarray:
    """``labels``' voxels relabelled by a watershed from ``markers`` over the inverted ``hu``.

    All three arrays share one grid (``spacing_mm`` per axis); only the bounding box of the
    labels is worked on. Markers outside the labels are ignored; the labelled outline is kept.
    """
    found = np.argwhere(labels > 0)
    if not len(found):
        return labels
    box = tuple(slice(a, b) for a, b in zip(found.min(axis=0), found.max(axis=0) + 1))
    sub, mark = labels[box], np.where(labels[box] > 0, markers[box], 0)
    if not (mark > 0).any():
        return labels
    sigma = smooth_mm / np.broadcast_to(np.asarray(spacing_mm, float), (3,))
    ct = ndimage.gaussian_filter(np.clip(hu[box].astype(np.float32), *_HU_RANGE), sigma)
    # outside the bone the height is above any bone's, so labels cross soft tissue last
    height = np.where(sub > 0, -ct, -_HU_RANGE[0] + 1.0).astype(np.float32)
    flooded = sitk.MorphologicalWatershedFromMarkers(sitk.GetImageFromArray(height),
                                                     sitk.GetImageFromArray(mark.astype(np.uint16)),
                                                     markWatershedLine=False, fullyConnected=True)
    out = labels.copy()
    out[box] = np.where(sub > 0, sitk.GetArrayFromImage(flooded), 0).astype(labels.dtype)
    return out
