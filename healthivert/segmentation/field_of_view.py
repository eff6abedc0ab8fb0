"""Air and padding far from the body, filled with soft tissue before the network sees the CT.

A reconstruction's field of view often cuts the body (a spine CT reconstructed over 150-250
mm, centred on the spine), and outside it the scanner writes a constant (-1024 HU or lower);
crops and re-shared studies do the same with a box. In training the network saw such an edge
only with a band of padding behind it (a VerSe crop narrower than the 160 mm patch, padded at
the window's floor, ~30 mm at most), never a window mostly of padding, and there it fires: the
TotalSegmentator example cut by a 180 mm circle fell from mean Dice 0.871 to 0.672 on T12-L5,
the real VerSe crops padded to a 360 mm view lost their anchors (sub-verse008, held out:
per-vertebra Dice 0.719). Padding and air farther than ``KEEP_MM`` from the body or the view's
edge are therefore filled with the scan's own soft tissue (0.865 and 0.814; the scans without
far padding unchanged: ``benchmarks/README.md``). The fill is for the network only: the
outline is still drawn on the CT.

Only air connected to the scan's side faces is filled (axes 0 and 1 of a RAS array: left,
right, anterior, posterior), so lungs and bowel gas inside the body stay, and so do lungs
the top or bottom of a thoracic scan cuts across. (Hand-written: a connected-component flood
over a threshold and a distance transform; no imaging library has a "field of view" fill.)
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: HU at or below which a voxel is air or padding (fat reads about -100, lung -850, air -1000)
AIR_HU = -250.0
#: soft tissue, whose median HU fills the outside (muscle, organs, blood: about 0-60 HU)
TISSUE_HU = (-150.0, 150.0)
#: the fill when a scan holds no soft tissue at all (HU)
DEFAULT_TISSUE_HU = 40.0
#: air or padding within this distance (mm) of the body or the view's edge is kept: the
#: network saw such a band in training (a VerSe crop narrower than its 160 mm patch is padded
#: at the window's floor, up to ~30 mm each side), and filling it too lost sub-verse014's
#: anchor, whose crop has 17 mm bands of padding in front and behind
KEEP_MM = 20.0


def outside_body(hu: np.ndarray, air_hu: float = AIR_HU) -> np.ndarray:
    """(bool, like ``hu``) Air and padding connected to the side faces of a RAS array: the
    world around the body and outside the reconstructed field of view."""
    air = hu <= air_hu
    labels, n = ndimage.label(air)
    if n == 0:
        return air
    faces = np.concatenate([labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(), labels[:, -1].ravel()])
    touching = np.unique(faces[faces > 0])
    return np.isin(labels, touching)


def tissue_hu(hu: np.ndarray, inside: np.ndarray) -> float:
    """Median HU of the soft tissue (``TISSUE_HU``) in ``inside``; ``DEFAULT_TISSUE_HU`` without any."""
    values = hu[inside & (hu > TISSUE_HU[0]) & (hu < TISSUE_HU[1])]
    return float(np.median(values)) if values.size else DEFAULT_TISSUE_HU


def fill_outside_body(hu: np.ndarray, spacing_mm: float | np.ndarray, air_hu: float = AIR_HU) -> np.ndarray:
    """``hu`` with the outside filled by the scan's soft tissue beyond ``KEEP_MM`` of the body or
    the view's edge; ``hu`` itself when there is nothing that far. ``spacing_mm``: the grid's
    voxel size; ``air_hu``: see :func:`outside_body` (a CT windowed above ``AIR_HU`` is air at
    its floor)."""
    outside = outside_body(hu, air_hu)
    if not outside.any():
        return hu
    far = outside & (ndimage.distance_transform_edt(outside, sampling=spacing_mm) > KEEP_MM)
    if not far.any():
        return hu
    out = hu.copy()
    out[far] = tissue_hu(hu, ~outside)
    return out
