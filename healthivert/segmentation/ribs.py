"""Which vertebrae carry ribs: the thoracic ones, so the lowest of them is T12.

A rib is bone the network does not label (ribs are background to it) that starts within
``RIB_CONTACT_MM`` of a vertebra, beside and behind its centre (the costovertebral and
costotransverse joints), and runs at least ``RIB_REACH_MM`` away from every vertebra out to
``RIB_LATERAL_MM`` from the spine's midline. A lumbar transverse process is labelled with its
vertebra; the aorta lies in front of the spine and a kidney does not touch it; the iliac wings
touch the sacrum, and bone that does is never a rib.

How it fails: a field of view cropped to the spine leaves too little of a rib to see (the
VerSe crops of 100 mm across): such a vertebra reads rib-free, which is why the anchor needs a
rib-bearing vertebra *above* a rib-free one at the top of the view (:func:`lowest_rib_bearing`)
and a crop without ribs gives no anchor rather than a wrong one. A 12th rib too short to reach
``RIB_REACH_MM`` (about 5 % of people) or lumbar ribs shift the anchor by one.
Hand-written: no library finds ribs by their joints; TotalSegmentator segments them with a
network of its own that this project does not ship.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# bone after a 3-voxel median (a 3 mm CT's 12th rib: 150-250 HU); enhanced vessels reach it but
# do not start at the joints (below)
RIB_HU = 150.0
RIB_CONTACT_MM = 6.0  # a rib's head or tubercle lies against its vertebra (joint gap 1-3 mm, 2 mm voxels)
# the shortest 12th ribs are ~ 30-60 mm long; a transverse-process tip the network missed is < 20 mm
RIB_REACH_MM = 30.0
RIB_LATERAL_MM = 45.0  # out past the widest thoracic transverse processes (T1: ~ 40 mm from the midline)
CONTACT_MIN_LATERAL_MM = 10.0  # the joints sit beside the canal, not on the midline (spinous process)
CONTACT_MAX_ANTERIOR_MM = 5.0  # ... and not in front of the vertebra's centre of mass (the aorta is)
SACRUM_CONTACT_MM = 4.0  # bone this close to the sacrum is pelvis


def rib_bearing(instances: np.ndarray, hu: np.ndarray, affine: np.ndarray,
                sacrum: np.ndarray | None = None) -> dict[int, bool]:
    """Per vertebra instance (its id in ``instances``): whether a rib starts at it.

    Args:
        instances: vertebra instance ids (0 background) on a grid with ``affine`` (voxel -> RAS mm).
        hu: the CT in HU on the same grid.
        sacrum: the sacrum's mask on the grid (bone touching it is pelvis), or None.
    """
    ids = [int(i) for i in np.unique(instances) if i]
    out = dict.fromkeys(ids, False)
    if not ids:
        return out
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    labelled = instances > 0
    if sacrum is not None:
        labelled = labelled | sacrum
    free = (ndimage.median_filter(hu, size=3) > RIB_HU) & ~ndimage.binary_dilation(labelled)
    pieces, n = ndimage.label(free)
    if n == 0:
        return out
    pelvis: set[int] = set()  # pieces touching the sacrum
    if sacrum is not None and sacrum.any():
        near_sacrum = ndimage.distance_transform_edt(~sacrum, sampling=spacing) <= SACRUM_CONTACT_MM
        pelvis = {int(k) for k in np.unique(pieces[near_sacrum & free])}
    dist, nearest = ndimage.distance_transform_edt(~(instances > 0), sampling=spacing, return_indices=True)
    owner = instances[tuple(nearest)]
    centres = dict(zip(ids, np.array(ndimage.center_of_mass(np.ones(instances.shape), instances, ids))
                       @ affine[:3, :3].T + affine[:3, 3]))
    midline = float(np.median([c[0] for c in centres.values()]))
    reach = ndimage.maximum(dist, pieces, np.arange(1, n + 1))
    for k in np.flatnonzero(np.asarray(reach) >= RIB_REACH_MM) + 1:
        if k in pelvis:
            continue
        piece = pieces == k
        contact = piece & (dist <= RIB_CONTACT_MM)
        if not contact.any():
            continue
        vertebra = int(np.bincount(owner[contact]).argmax())  # the rib's head lies on its own vertebra
        c = centres[vertebra]
        at = np.argwhere(contact & (owner == vertebra)) @ affine[:3, :3].T + affine[:3, 3]
        beside = (np.abs(at[:, 0] - c[0]) >= CONTACT_MIN_LATERAL_MM) & (at[:, 1] <= c[1] + CONTACT_MAX_ANTERIOR_MM)
        if not beside.any():
            continue
        world_x = np.argwhere(piece) @ affine[0, :3] + affine[0, 3]
        if np.abs(world_x - midline).max() >= RIB_LATERAL_MM:
            out[vertebra] = True
    return out


def lowest_rib_bearing(order: list[int], ribs: dict[int, bool]) -> int | None:
    """The instance that is T12: the lowest of the rib-bearing run at the top of the view,
    given a rib-free vertebra right below it. ``order`` lists instances cranial first.

    None when the top vertebra bears no rib (a lumbar view, or ribs cropped away), when every
    vertebra bears one (T12 may lie below the view) or when a rib-bearing vertebra appears
    again further down (something other than ribs was taken for one: no anchor is safer).
    """
    flags = [ribs.get(i, False) for i in order]
    if not flags or not flags[0] or all(flags):
        return None
    last = flags.index(False) - 1
    if any(flags[last + 1:]):
        return None
    return order[last]
