"""Which vertebrae carry ribs: the thoracic ones, so the lowest of them is T12.

A rib is bone the network does not label (ribs are background to it) that starts within
``RIB_CONTACT_MM`` of a vertebra, beside and behind its centre (the costovertebral and
costotransverse joints), and runs at least ``RIB_REACH_MM`` away from every vertebra out to
``RIB_LATERAL_MM`` from the spine's midline. A lumbar transverse process is labelled with its
vertebra; the aorta lies in front of the spine and a kidney does not touch it; the iliac wings
touch the sacrum, and bone that does is never a rib.

A field of view cropped to the spine (the VerSe crops, 100 mm across) cuts the ribs a few
centimetres from their joints: bone that starts at the joints and leaves the image through a
side face (left or right) after running ``RIB_CUT_REACH_MM`` from every vertebra is a rib too
(a lumbar transverse process is labelled with its vertebra, and its tip lies within 10 mm of
the labelled bone). A rib is a thin bar: a piece holding a ball wider than
``RIB_MAX_RADIUS_MM`` is a thick bone (the ilium beside L5 when the sacrum is out of view, a
vertebra the network missed), never a rib.

How it fails: a crop narrower than the transverse processes leaves nothing of a rib to see:
such a vertebra reads rib-free, which is why the anchor needs a rib-bearing vertebra *above* a
rib-free one at the top of the view (:func:`lowest_rib_bearing`) and a crop without ribs gives
no anchor rather than a wrong one. A 12th rib too short to reach
``RIB_REACH_MM`` (about 5 % of people) or lumbar ribs shift the anchor by one.
Hand-written: no library finds ribs by their joints; TotalSegmentator segments them with a
network of its own that this project does not ship.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from healthivert.segmentation.field_of_view import outside_body

# bone after a 3-voxel median (a 3 mm CT's 12th rib: 150-250 HU); enhanced vessels reach it but
# do not start at the joints (below)
RIB_HU = 150.0
RIB_CONTACT_MM = 6.0  # a rib's head or tubercle lies against its vertebra (joint gap 1-3 mm, 2 mm voxels)
# the shortest 12th ribs are ~ 30-60 mm long; a transverse-process tip the network missed is < 20 mm
RIB_REACH_MM = 30.0
# a rib cut by the image's side face: it left the vertebra this far before the face (the
# VerSe crops' 12th ribs run 15-30 mm in view; an unlabelled transverse-process tip < 10 mm)
RIB_CUT_REACH_MM = 12.0
# largest ball inside a rib (the VerSe crops' ribs: 2-4.7 mm after the 150 HU cut; an ilium
# beside L5, or a whole vertebral body the network left unlabelled: 7.8-8.7 mm)
RIB_MAX_RADIUS_MM = 6.5
RIB_LATERAL_MM = 45.0  # out past the widest thoracic transverse processes (T1: ~ 40 mm from the midline)
CONTACT_MIN_LATERAL_MM = 10.0  # the joints sit beside the canal, not on the midline (spinous process)
CONTACT_MAX_ANTERIOR_MM = 5.0  # ... and not in front of the vertebra's centre of mass (the aorta is)
SACRUM_CONTACT_MM = 4.0  # bone this close to the sacrum is pelvis
PELVIS_BELOW_FREE = 3  # rib-free vertebrae (L1-L3 at least) above bone taken for the iliac crest
PELVIS_LEVELS = 2  # ... which lies beside L4-L5 (L5-L6) only


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
    index = np.arange(1, n + 1)
    pelvis = np.zeros(n, bool)  # pieces touching the sacrum
    if sacrum is not None and sacrum.any():
        near_sacrum = ndimage.distance_transform_edt(~sacrum, sampling=spacing) <= SACRUM_CONTACT_MM
        pelvis = np.isin(index, pieces[near_sacrum & free])
    dist = ndimage.distance_transform_edt(~(instances > 0), sampling=spacing)
    centres = dict(zip(ids, np.array(ndimage.center_of_mass(np.ones(instances.shape), instances, ids))
                       @ affine[:3, :3].T + affine[:3, 3]))
    centre_array = np.array([centres[i] for i in ids])
    midline = float(np.median(centre_array[:, 0]))
    reach = np.asarray(ndimage.maximum(dist, pieces, index))
    radius = np.asarray(ndimage.maximum(ndimage.distance_transform_edt(free, sampling=spacing), pieces, index))
    side = _side_pieces(pieces, affine, hu, dist)
    long = (reach >= RIB_REACH_MM) | ((reach >= RIB_CUT_REACH_MM) & np.isin(index, list(side)))
    for k in np.flatnonzero(long & (radius <= RIB_MAX_RADIUS_MM) & ~pelvis) + 1:
        piece = pieces == k
        contact = piece & (dist <= RIB_CONTACT_MM)
        if not contact.any():
            continue
        at = np.argwhere(contact) @ affine[:3, :3].T + affine[:3, 3]
        # the rib's head and tubercle lie level with its own vertebra's body: the vertebra whose
        # centre is nearest (the nearest labelled voxel may be the process of the one above)
        to_centre = np.linalg.norm(at[:, None, :] - centre_array[None], axis=2)
        vertebra = ids[int(np.bincount(to_centre.argmin(axis=1)).argmax())]
        c = centres[vertebra]
        beside = (np.abs(at[:, 0] - c[0]) >= CONTACT_MIN_LATERAL_MM) & (at[:, 1] <= c[1] + CONTACT_MAX_ANTERIOR_MM)
        if not beside.any():
            continue
        world_x = np.argwhere(piece) @ affine[0, :3] + affine[0, 3]
        if k in side or np.abs(world_x - midline).max() >= RIB_LATERAL_MM:
            out[vertebra] = True
    return out


def _side_pieces(pieces: np.ndarray, affine: np.ndarray, hu: np.ndarray, dist: np.ndarray) -> set[int]:
    """Pieces that leave the scan at its left or right: they reach the image's left or right
    face (the voxel axis closest to RAS x), or, ``RIB_CUT_REACH_MM`` from every vertebra
    (``dist``, mm), the padding of a scan whose view the grid does not follow (a turned or
    oblique crop put on another grid: the scan's side edges then lie inside the image, with air
    or padding beyond: :func:`outside_body`). The air the top or bottom slices cut across (bowel
    gas reaching a side face) is no such edge."""
    axis = int(np.argmax(np.abs(affine[0, :3])))
    faces = np.concatenate([np.take(pieces, 0, axis=axis).ravel(), np.take(pieces, -1, axis=axis).ravel()])
    edge = ndimage.binary_dilation(outside_body(hu))
    si = int(np.argmax(np.abs(affine[2, :3])))
    edge[(slice(None),) * si + (slice(0, 2),)] = edge[(slice(None),) * si + (slice(-2, None),)] = False
    beyond = pieces[edge & (dist >= RIB_CUT_REACH_MM)]
    return {int(k) for k in np.unique(np.concatenate([faces, beyond])) if k}


def rib_flags(order: list[int], ribs: dict[int, bool]) -> list[bool]:
    """Whether each instance of ``order`` (cranial first) bears a rib, with bone beside the
    lowest one or two vertebrae in view, below at least ``PELVIS_BELOW_FREE`` rib-free ones,
    taken for the iliac crest beside L4-L5 (the sacrum may lie below the view), not a rib."""
    flags = [ribs.get(i, False) for i in order]
    lowest = len(flags)
    while lowest > 0 and flags[lowest - 1]:
        lowest -= 1
    if (0 < len(flags) - lowest <= PELVIS_LEVELS and lowest >= PELVIS_BELOW_FREE
            and not any(flags[lowest - PELVIS_BELOW_FREE:lowest])):
        flags[lowest:] = [False] * (len(flags) - lowest)
    return flags


def lowest_rib_bearing(order: list[int], ribs: dict[int, bool], top_cut: bool = False) -> int | None:
    """The instance that is T12: the lowest of the rib-bearing run at the top of the view,
    given a rib-free vertebra right below it. ``order`` lists instances cranial first.

    Bone beside the lowest vertebrae that is the iliac crest is no rib (:func:`rib_flags`).
    None when the top vertebra bears no rib (a lumbar view, or ribs cropped away), when every
    vertebra bears one (T12 may lie below the view) or when a rib-bearing vertebra appears
    again further down (something other than ribs was taken for one: no anchor is safer).
    ``top_cut``: the top vertebra is cut by the view's top, which may leave its rib out of view
    (a rib's head lies level with its vertebra's lower half): the run may then start at the
    second (sub-verse007 on 3 or 5 mm slices: T9 cut and rib-free, T10-T12 bearing ribs).
    """
    flags = rib_flags(order, ribs)
    if top_cut and len(flags) > 1 and not flags[0] and flags[1]:
        order, flags = order[1:], flags[1:]
    if not flags or not flags[0] or all(flags):
        return None
    last = flags.index(False) - 1
    if any(flags[last + 1:]):
        return None
    return order[last]
