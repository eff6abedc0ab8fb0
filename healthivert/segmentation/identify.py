"""From a vertebra / sacrum class map to one VerSe label per vertebra.

Design: the network only says "vertebra" or "sacrum"; which vertebra is which is decided
here, anatomically. The vertebral bodies that line up into one column give the spine axis
(bone elsewhere, pelvis, ribs or bowel contrast, is dropped unless it lies on the column).
Along the axis the bodies' cross-section shrinks at every disc; the column is cut at those
minima where the bone fraction across the axis dips too, and where that fraction alone dips
deeply between two whole bodies (a disc tilted to the axial slices: :func:`profile_discs`).
The core of each body (its voxels well clear of the cuts) takes the segment of its nearest
axis point; the rest of the body and the arches are grown from the cores through the bone, so
a disc tilted to the cut is followed. With the CT given, the vertebrae below the ribs are then
grown again with their pedicle roots seeded too (:func:`_with_pedicle_roots`): a lumbar arch
otherwise often went to the vertebra below, through a facet joint the network fills. A disc the network filled with
bone leaves no minimum: a segment about twice its expected length (from its body's width) is
split where the bone fraction across the axis is lowest.
The segments are then counted from an anchor (:func:`anchor_labels`): the sacrum
(below the lowest vertebra, on its midline: the one resting on it is L5) and the lowest
rib-bearing vertebra (T12, :mod:`healthivert.segmentation.ribs`, when the CT is given); both
are checked against each other when both are in view. With no sacrum found, bone under the
lowest body past its inferior endplate is left unlabelled (:func:`below_lowest_body`): in a
crop too narrow to show the ala or ilium the network takes the top of S1 for vertebra. A user
who knows better relabels the result (``--first-label``: :func:`healthivert.labels.relabel_from_top`).

How it fails: a lumbosacral transitional vertebra (L6, or a sacralised L5) or a missing 12th
rib shifts every label by one (when both anchors are in view the disagreement is reported);
with neither anchor in view the lowest vertebra is *guessed* to be L5 and the result says
the labels are unanchored (a piece of S1 cut off below L5 then makes every label one level
high: sub-verse014 without its ribs); bridging osteophytes or a fused segment can merge two vertebrae
into one, and so can a disc the network fills at the top of the view (split only when the
merged piece is 1.5 expected lengths long). An inner segment 1.3 expected lengths long or more
may hold two: labels counted past it from a single anchor are flagged (``ANCHOR_DOUBT``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from scipy import ndimage
from scipy.signal import find_peaks

from healthivert.labels import (
    ANCHOR_BOTH,
    ANCHOR_CONFLICT,
    ANCHOR_DOUBT,
    ANCHOR_NONE,
    ANCHOR_RIB,
    ANCHOR_SACRUM,
    SPINE_ORDER,
    UNANCHORED_NOTE,
    VERSE_NAMES,
    is_anchored,
)
from healthivert.segmentation.ribs import lowest_rib_bearing, rib_bearing, rib_flags

MIN_BODY_ML = 3.0  # a vertebral body near the axis: T1 is ~ 5 ml, L5 ~ 35 ml
MIN_SACRUM_ML = 2.0  # the network may call only the top of S1 sacrum (3 ml on the real evaluation CT)
SACRUM_GAP_MM = 8.0  # sacrum pieces this close are one (four voxels at the network's 2 mm)
SACRUM_BELOW_MM = 15.0  # the sacrum's centre lies at least this far below L5's
SACRUM_MIDLINE_MM = 20.0  # ... and within this of L5's centre left to right
SACRUM_LABEL = 26


@dataclass
class Identification:
    """Instance labels (VerSe) and how they were anchored (one of the ``ANCHOR_*`` texts).

    ``bodies``: the same labels on the vertebral bodies alone (the column's large pieces, cut
    where the labels are), 0 on the arches and elsewhere. ``guessed_disc``: the labels of the
    vertebrae on either side of a cut that no disc showed (a merged segment split at the
    expected length: :func:`split_long_segments`). ``doubtful``: the labels of vertebrae long
    enough to hold two (:func:`doubtful_segments`), unless two agreeing anchors counted them."""

    labels: np.ndarray
    anchor: str
    notes: list[str] = field(default_factory=list)
    bodies: np.ndarray | None = None  # None: no body known (all 0)
    guessed_disc: tuple[int, ...] = ()
    doubtful: tuple[int, ...] = ()  # labels long enough to hold two vertebrae, not counted by two anchors

    def __post_init__(self) -> None:
        if self.bodies is None:
            self.bodies = np.zeros_like(self.labels)

    @property
    def anchored(self) -> bool:
        """Whether the labels rest on an anchor that was seen (or given) and not contradicted."""
        return is_anchored(self.anchor)


AXIS_SMOOTH_MM = 10.0
BODY_OPENING_MM = 12.0  # thicker than laminae and processes, thinner than a body
MIN_SPACING_MM = 14.0  # bodies are at least this far apart (C3 and below; a T12 crushed by 55 % too)


# spinous-process tips lie up to ~60 mm from the body centre (45 mm dropped them: ~5 % of each
# vertebra); bone that far out but not connected to a body (pelvis, ribs) is not grown into
COLUMN_RADIUS_MM = 60.0
MIDLINE_MM = 25.0
TOP_CUT_VOXELS = 2  # a vertebra this close to the grid's top face is cut by the view
TOP_EDGE_MM = 20.0  # below one thoracic pitch (~24 mm at T8): no room for a whole extra body
PROFILE_RADIUS_MM = 10.0  # the body core around the axis: inside the smallest (T1) body
MERGE_RATIO = 1.5  # a segment this many expected lengths long holds two vertebrae
# ... and the lowest segment (L5, tilted by the lordosis) this many. A single L5 spans up to
# ~1.3-1.5 (30-45 degrees of tilt; sub-verse008's 1.06-1.12, phantoms' <= 1.0); L4 and L5 with
# their disc filled, over the top of S1, spanned 1.84 (sub-verse014, the shipped weights: left
# whole at 2.0, every label one level off) and 2.26 (its fold's weights). On that subject L5 and
# the top of S1 alone span ~0.9-1.3 of the same, so an L5 with a partly seen S1 stays whole.
CAUDAL_MERGE_RATIO = 1.7
# a body's centre lies within this of the column next to it in the axial plane, plus half its
# distance along SI from there (the spine's curve): adjacent bodies are offset by < 10 mm
COLUMN_OFFSET_MM = 15.0
# a disc lowers the bone fraction across the axis below the bodies either side of it by 0.29-1.0
# on phantoms (median 0.83; the network's output on seeds 8100-8105) and by 0.22-0.97 on the real
# CTs at hand (a real disc the network half fills: sub-verse014's T12/L1, 0.22-0.33 as the windows
# fall); the narrowings of the opened bodies that were no disc (a waist, the top of S1, a body
# cut by the view) lowered it by 0.01-0.09 there and none showed on phantoms seeds 6000-6011
DISC_MIN_DIP = 0.15
DIP_REACH_MM = 16.0  # the bodies either side: within one thoracic body height of the cut
#: a dip of the bone fraction across the axis this deep (prominence) is a disc even where the
#: bodies' axial cross-section shows none (:func:`profile_discs`)
PROFILE_DISC_DIP = 0.25
#: a vertebra's pitch along the axis over the square root of its body's cross-section, at most
#: (single vertebrae on the real CTs at hand, on every grid of acquisition_ct.py: 0.67-1.14,
#: median 0.9; two merged: 1.46-2.46)
PITCH_PER_WIDTH = 1.0
#: an inner segment this many expected lengths long may hold two vertebrae (single ones on the
#: real CTs at hand: at most 1.2 on their own grids, 1.64 on a grid turned 25 degrees; two
#: merged: 1.46-1.57): the labels counted past it are flagged (:func:`doubtful_segments`)
DOUBT_RATIO = 1.3
SHORTEST_BODY = 0.6  # of that: a piece shorter than this beside a dip holds no whole body
# body voxels this close to a cut are not seeded but grown into (a disc tilted 15 degrees to the
# plane across the axis strays ~5 mm from it at the front or back of a 40 mm deep body)
CORE_MARGIN_MM = 6.0
# bone this far behind a lumbar body's core, on the core's axial slices and levels along the
# axis and within its left-right extent (the pedicles' roots), is seeded with the body's label:
# grown from the cores alone, a lumbar arch often went to the vertebra below, reached through a
# facet joint the network fills at 2 mm. Thoracic spinous processes reach down behind the
# vertebra below, and seeded there too they went to it (see _with_pedicle_roots). The three
# real VerSe subjects, each segmented by weights that never saw it: mean Dice per vertebra
# 0.806 without, 0.814 with (seeded at every level: 0.807 / 0.814 / 0.815 at 6 / 10 / 14 mm)
PEDICLE_SEED_MM = 10.0


def _axial_disc(radius_vox: int) -> np.ndarray:
    r = np.arange(-radius_vox, radius_vox + 1)
    return ((r[:, None] ** 2 + r[None, :] ** 2) <= radius_vox ** 2)[:, :, None]


def _ball(radius_vox: int) -> np.ndarray:
    r = np.arange(-radius_vox, radius_vox + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius_vox ** 2


def _midline_pieces(opened: np.ndarray, vertebra: np.ndarray, affine: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Pieces of an opened mask big enough for a body and near the LR midline: first of all the
    bone (the bilateral pelvis and ribs sit off it), then of the line through the pieces kept
    so far, at each piece's own level, until no piece is added.

    The second test follows a spine tilted sideways to the grid (a patient lying obliquely):
    the TotalSegmentator example turned 12 degrees about AP left T12 and L1 27-30 mm off the
    whole scan's midline, and T12-L2 came out as one vertebra. Hand-written: a line fitted
    (least squares, weighted by volume) to a handful of centres."""
    lab, n = ndimage.label(opened)
    if n == 0:
        return opened
    sizes = ndimage.sum_labels(opened, lab, index=np.arange(1, n + 1)) * voxel_ml
    coms = np.array(ndimage.center_of_mass(opened, lab, np.arange(1, n + 1)))
    to_mm = float(np.linalg.norm(affine[:3, 0]))
    big = sizes >= MIN_BODY_ML
    keep = big & (np.abs(coms[:, 0] - np.median(np.argwhere(vertebra)[:, 0])) * to_mm <= MIDLINE_MM)
    while keep.any():
        z, x = coms[keep, 2], coms[keep, 0]
        line = np.polyfit(z, x, 1, w=np.sqrt(sizes[keep])) if np.ptp(z) > 0 else np.array([0.0, np.mean(x)])
        more = keep | (big & (np.abs(coms[:, 0] - np.polyval(line, coms[:, 2])) * to_mm <= MIDLINE_MM))
        if (more == keep).all():
            break
        keep = more
    return np.concatenate([[False], keep])[lab]


def _bodies(vertebra: np.ndarray, affine: np.ndarray, voxel_ml: float) -> np.ndarray:
    """Vertebral bodies near the left-right midline of all the bone found (the bilateral
    pelvis and ribs sit off it).

    A ``BODY_OPENING_MM`` ball keeps bodies and drops laminae, processes, ribs and iliac
    wings, but also a body crushed to less than its diameter; an axial disc of that diameter,
    one slice thick, keeps crushed bodies too but also slivers of the sacrum, so its pieces are
    added only between the top and bottom of what the ball kept.
    """
    step = float(np.mean(np.linalg.norm(affine[:3, :3], axis=0)))
    radius = max(1, int(round(BODY_OPENING_MM / 2 / step)))
    ball = _midline_pieces(ndimage.binary_opening(vertebra, structure=_ball(radius)), vertebra, affine, voxel_ml)
    if not ball.any():
        return ball
    flat = _midline_pieces(ndimage.binary_opening(vertebra, structure=_axial_disc(radius)), vertebra, affine,
                           voxel_ml)
    z = np.argwhere(ball)[:, 2]
    lab, n = ndimage.label(flat)
    coms = ndimage.center_of_mass(flat, lab, np.arange(1, n + 1)) if n else []
    top = z.max() + TOP_EDGE_MM / step  # a top vertebra cut by the field of view is too thin for the ball
    between = np.concatenate([[False], [z.min() <= c[2] <= top for c in coms]]).astype(bool)
    return _front_of_column(_one_column(ball | between[lab], affine), affine)


#: what lies farther behind the front of an axial slice of the column is no body: deeper than a
#: lumbar body with its osteophytes (sub-verse007's T10: 44 mm), shallower than a body and its
#: arch. The opening keeps thick posterior elements joined to the bodies at the lumbosacral
#: junction, and the axis through the slices' centres ran behind them: on sub-verse014 from its
#: CT no axis point lay on L4's body, and its disc with L5 showed only as a guess. The three
#: real subjects, each segmented by weights that never saw it: mean Dice per vertebra 0.814
#: without; 0.832 / 0.830 / 0.821 / 0.807 at 40 / 45 / 50 / 55 mm
BODY_DEPTH_MM = 45.0


def _front_of_column(bodies: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """``bodies`` with, on each axial slice, what lies more than ``BODY_DEPTH_MM`` behind the
    slice's front left out (L4-L5's pedicles and articular masses, as thick as the opening's
    ball at 2 mm). Hand-written: a per-slice crop no library offers."""
    step = float(np.linalg.norm(affine[:3, 1]))
    reach = int(round(BODY_DEPTH_MM / step))
    out = np.zeros_like(bodies)
    for k in np.flatnonzero(bodies.any(axis=(0, 1))):
        plane = bodies[:, :, k]
        front = np.flatnonzero(plane.any(axis=0)).max()  # RAS: the second axis runs to the front
        out[:, max(front - reach, 0):front + 1, k] = plane[:, max(front - reach, 0):front + 1]
    return out


def _one_column(bodies: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The pieces of ``bodies`` that line up into one spine column.

    A column is grown from a seed piece: a piece joins when its centre lies within
    ``COLUMN_OFFSET_MM`` (plus half the SI gap) of the column's centre on the column's slice
    nearest to it, or of the centre of the column's body nearest to it along SI. The second
    test keeps a body whose centre lies level with the end of a neighbour the lordosis tilts:
    that end is a corner, off the neighbour's centre (sub-verse008's L4 and L5, 12 mm apart
    centre to centre, were not joined and L4 merged into L5). Every piece is tried as the
    seed and the column with the most bone wins.
    Bone on the midline but in front of the spine (contrast in the bowel, the sternum, a
    calcified aorta) is left out: taken as a body, it bent the axis and took a label.
    Hand-written: a chain rule over a handful of pieces, which no library has.
    """
    lab, n = ndimage.label(bodies)
    if n <= 1:
        return bodies
    idx = np.argwhere(bodies)
    piece = lab[tuple(idx.T)] - 1
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    # slices are the grid's planes across its axis closest to S-I: an oblique CT (gantry tilt,
    # the VerSe crops: 4-8 degrees) spreads one plane over several mm of world z, and binning by
    # rounded world z left a few voxels per 'slice', whose centre is no column's centre
    _, z_of = np.unique(idx[:, int(np.argmax(np.abs(affine[2, :3])))], return_inverse=True)
    zs = np.bincount(z_of, weights=world[:, 2]) / np.bincount(z_of)  # each plane's mean world z (mm)
    # per piece and slice: voxel count and in-plane coordinate sums (mm)
    count = np.zeros((n, len(zs)))
    np.add.at(count, (piece, z_of), 1.0)
    sums = np.zeros((n, len(zs), 2))
    np.add.at(sums, (piece, z_of), world[:, :2])
    sizes = count.sum(axis=1)
    centres = np.stack([np.bincount(piece, weights=world[:, k], minlength=n) for k in range(3)], 1) / sizes[:, None]

    def grow(seed: int) -> list[int]:
        accepted = [seed]
        while True:
            c_count, c_sums = count[accepted].sum(axis=0), sums[accepted].sum(axis=0)
            on = np.flatnonzero(c_count > 0)
            for i in (j for j in range(n) if j not in accepted):
                k = on[np.argmin(np.abs(zs[on] - centres[i, 2]))]
                offset = np.linalg.norm(c_sums[k] / c_count[k] - centres[i, :2])
                near = min(accepted, key=lambda j: abs(centres[j, 2] - centres[i, 2]))
                to_body = np.linalg.norm(centres[near, :2] - centres[i, :2])
                if (offset <= COLUMN_OFFSET_MM + abs(zs[k] - centres[i, 2]) / 2
                        or to_body <= COLUMN_OFFSET_MM + abs(centres[near, 2] - centres[i, 2]) / 2):
                    accepted.append(i)
                    break  # the column changed: measure the rest against it
            else:
                return accepted

    best = max((grow(seed) for seed in range(n)), key=lambda col: sizes[col].sum())
    return np.isin(lab, [i + 1 for i in best])


def _spine_axis(bodies: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spine axis through the bodies' slice centres: (slice indices, axis points in voxels,
    body cross-section in voxels per slice, 0 on slices without body)."""
    body_idx = np.argwhere(bodies)
    zs, inverse = np.unique(body_idx[:, 2], return_inverse=True)
    counts = np.bincount(inverse).astype(float)
    centres = np.stack([np.bincount(inverse, weights=body_idx[:, k]) for k in range(3)], axis=1) / counts[:, None]
    # the axis runs through every slice between the top and bottom body (discs included)
    all_z = np.arange(zs.min(), zs.max() + 1)
    axis = np.stack([np.interp(all_z, zs, centres[:, k]) for k in range(3)], axis=1)
    area = np.interp(all_z, zs, counts) * np.isin(all_z, zs)
    axis = ndimage.uniform_filter1d(axis, max(1, int(round(AXIS_SMOOTH_MM / step))), axis=0, mode="nearest")
    return all_z, axis, area


def _axis_profile(values: np.ndarray, axis: np.ndarray, step: float,
                  radius_mm: float = PROFILE_RADIUS_MM) -> np.ndarray:
    """Mean of ``values`` (the vertebra mask: a bone fraction) over the voxels within
    ``radius_mm`` of the axis (points in voxels of an isotropic ``step`` mm grid), binned by
    their nearest axis point: a profile across planes perpendicular to the axis, so a tilted
    disc shows as one dip rather than smeared over axial slices."""
    from scipy.spatial import cKDTree

    r = int(np.ceil(radius_mm / step)) + 1
    lo = np.maximum(np.floor(axis.min(axis=0)).astype(int) - r, 0)
    hi = np.minimum(np.ceil(axis.max(axis=0)).astype(int) + r + 1, values.shape)
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    dist, nearest = cKDTree(axis).query(grid, distance_upper_bound=radius_mm / step)
    near = np.isfinite(dist)
    grid, nearest = grid[near], nearest[near]
    total = np.bincount(nearest, weights=values[tuple(grid.T)].astype(float), minlength=len(axis))
    count = np.bincount(nearest, minlength=len(axis))
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def _segment_edges(cuts: np.ndarray, n: int) -> np.ndarray:
    """The segments' ends along an axis of ``n`` points: 0, the sorted ``cuts``, n - 1."""
    return np.concatenate([[0], np.sort(np.asarray(cuts, int)), [n - 1]]).astype(int)


def _segment_widths(edges: np.ndarray, area: np.ndarray) -> np.ndarray:
    """Per segment between ``edges``, the square root of its median body cross-section
    (``area`` per axis point, 0 off the bodies): a width, NaN for a segment without body."""
    return np.array([np.sqrt(np.median(area[a:b][area[a:b] > 0])) if (area[a:b] > 0).any() else np.nan
                     for a, b in zip(edges[:-1], edges[1:])])


def _capped_pitch(edges: np.ndarray, widths: np.ndarray) -> float:
    """The study's median segment length over width, at most ``PITCH_PER_WIDTH`` (merged
    segments lengthen the median)."""
    return min(float(np.nanmedian(np.diff(edges) / widths)), PITCH_PER_WIDTH)


def split_long_segments(cuts: np.ndarray, area: np.ndarray, profile: np.ndarray,
                        ratio: float = MERGE_RATIO, passes: int = 3) -> np.ndarray:
    """Cuts (indices of axis points, one per slice) with merged segments split, judged again
    against the new segments until none is split (at most ``passes`` times): a merged segment
    lengthens the median it is judged by, the more so when few vertebrae are in view
    (sub-verse014, five and a partly seen T12, with L4-L5 and T12-L1 each merged: T12-L1 read
    1.22 expected lengths and only L4-L5 was split; judged again, T12-L1 read 1.53 and was split).
    One pass: :func:`_split_once`."""
    cuts = np.sort(np.asarray(cuts, int))
    for _ in range(passes):
        out = _split_once(cuts, area, profile, ratio)
        if np.array_equal(out, cuts):
            break
        cuts = out
    return cuts


def _split_once(cuts: np.ndarray, area: np.ndarray, profile: np.ndarray, ratio: float) -> np.ndarray:
    """Cuts (indices of axis points, one per slice) with merged segments split.

    A disc the network fills with bone leaves no dip in ``area`` (body cross-section per axis
    point), so two vertebrae come out as one segment about twice as long as expected. Pitch
    (body height plus disc) grows with the body's width from T1 to L5, so a segment's length
    over the square root of its median cross-section is about the same at every level; a
    segment ``ratio`` times the study's median of that is cut into ``round(length / expected)``
    pieces, each cut at the lowest ``profile`` value within a quarter piece of its even
    spacing; in the cranial end segment, which the field of view may cut short, the pieces
    are laid from below at the expected length instead. The caudal end segment (index 0 up)
    is usually L5, which the lumbosacral angle tilts across more slices than its height (up to
    ~1.3-1.5 expected lengths at 30-45 degrees), and below it the field of view or a sacrum
    taken for bone may run on: it is split only from ``CAUDAL_MERGE_RATIO`` expected lengths,
    its pieces laid from above at the expected length (sub-verse014: L4, L5 and the top of S1
    in one segment 1.8-2.3 expected lengths long when the network filled both discs).
    Hand-written: no library splits a 1-D partition by an expected spacing.
    """
    edges = _segment_edges(cuts, len(area))
    lengths = np.diff(edges).astype(float)
    if len(lengths) < 3:
        return np.sort(cuts)
    size = _segment_widths(edges, area)
    expected = np.nanmedian(lengths / size) * size
    out = list(edges[1:-1])
    top = edges[-2]
    for a, b, length, exp in zip(edges[:-1], edges[1:], lengths, expected):
        if not length >= (CAUDAL_MERGE_RATIO if a == 0 else ratio) * exp:
            continue
        k = int(round(length / exp))
        piece = length / k
        # the end segments may end in a vertebra the field of view cuts short (or, at the
        # bottom, in sacrum): their pieces are laid from the inner end at the expected length
        end_step = min(exp, piece * 1.25)
        for j in range(1, k):
            if a == top:
                nominal = a + j * end_step
            elif a == 0:
                nominal = b - j * end_step
            else:
                nominal = a + j * piece
            window = np.arange(max(int(np.ceil(nominal - piece / 4)), a + 1),
                               min(int(np.floor(nominal + piece / 4)) + 1, b))
            if len(window):  # lowest profile value, ties broken towards the nominal position
                out.append(int(window[np.lexsort((np.abs(window - nominal), profile[window]))[0]]))
    return np.array(sorted(out), dtype=int)


def doubtful_segments(cuts: np.ndarray, area: np.ndarray) -> list[int]:
    """Indices (from the bottom, 0 up) of the inner segments long enough to hold two vertebrae
    whose disc was not found: ``DOUBT_RATIO`` times a vertebra's expected length or more (its
    cross-section ``area``'s square root times the study's median pitch, at most
    ``PITCH_PER_WIDTH``). Not split (the split needs ``MERGE_RATIO`` of the study's median,
    which merged segments lengthen), such a segment shifts every label counted past it; the end
    segments are left out (the view cuts the top one; the lowest may hold L5 tilted by the
    lordosis and the top of S1)."""
    edges = _segment_edges(cuts, len(area))
    if len(edges) < 4:
        return []
    size = _segment_widths(edges, area)
    pitch = _capped_pitch(edges, size)
    lengths = np.diff(edges)
    return [k for k in range(1, len(lengths) - 1) if lengths[k] >= DOUBT_RATIO * pitch * size[k]]


def confirmed_discs(cuts: np.ndarray, profile: np.ndarray, step: float, reach: int = 1) -> np.ndarray:
    """The cuts at which the bone fraction across the axis (``profile``, one value per axis
    point ``step`` mm apart) dips at least ``DISC_MIN_DIP`` below its maxima on both sides
    (within ``DIP_REACH_MM``): a dip in the opened bodies' cross-section with as much bone across
    the axis as around it is a narrowing inside one body, not a disc."""
    cuts = np.asarray(cuts, int)
    side = max(1, int(round(DIP_REACH_MM / step)))
    keep = [min(profile[max(c - side, 0):c + 1].max(), profile[c:c + side + 1].max())
            - profile[max(c - reach, 0):c + reach + 1].min() >= DISC_MIN_DIP for c in cuts]
    return cuts[np.array(keep, bool)] if len(cuts) else cuts


def profile_discs(profile: np.ndarray, area: np.ndarray, cuts: np.ndarray, step: float) -> np.ndarray:
    """Discs the bodies' axial cross-section missed: dips of the bone fraction across the axis
    (``profile``, one value per axis point ``step`` mm apart) at least ``PROFILE_DISC_DIP`` deep
    that leave a whole body on either side. Axial slices cut a disc the lordosis or a tilted
    patient tilts obliquely, so the cross-section per slice shows no dip there, while the
    profile across the axis does (sub-verse014 on 3 mm slices: L4/L5 read 0.69 of the bodies'
    1.0 and came out as one vertebra, every label below anchored one level off). A body's dim
    core can dip as deep (0.28 inside sub-verse014's L3 put onto the world's axes), so each side
    of the dip must be at least ``SHORTEST_BODY`` of a vertebra's expected length along the axis
    (its pitch over the square root of its cross-section, ``area``: the study's median, at most
    ``PITCH_PER_WIDTH``; merged segments lengthen the median), except at an end of the column,
    which the view may cut (there ``MIN_SPACING_MM``)."""
    spacing = max(1, int(round(MIN_SPACING_MM / step)))
    found, props = find_peaks(-profile, prominence=PROFILE_DISC_DIP, distance=spacing)
    n = len(profile)
    cuts = [int(c) for c in np.sort(np.asarray(cuts, int))]
    edges = _segment_edges(cuts, n)
    pitch = _capped_pitch(edges, _segment_widths(edges, area))
    for c in found[np.argsort(-props["prominences"])]:  # the deepest first
        edges = _segment_edges(cuts, n)
        k = int(np.searchsorted(edges, c, side="right")) - 1
        if k < 0 or k >= len(edges) - 1 or c in edges:
            continue
        a, b = edges[k], edges[k + 1]
        shortest = SHORTEST_BODY * pitch * np.nan_to_num(_segment_widths(np.array([a, b]), area)[0])
        need_lo = spacing if a == 0 else shortest
        need_hi = spacing if b == n - 1 else shortest
        if c - a >= need_lo and b - c >= need_hi:
            cuts = sorted(cuts + [int(c)])
    return np.array(cuts, dtype=int)


def refine_cuts(cuts: np.ndarray, profile: np.ndarray, reach: int = 1) -> np.ndarray:
    """Each cut moved to the lowest ``profile`` value within ``reach`` axis points: the axial
    cross-section places a tilted disc a slice off; the profile across the axis does not."""
    out = [c - reach + int(np.argmin(profile[c - reach:c + reach + 1])) if reach <= c < len(profile) - reach else c
           for c in np.asarray(cuts, int)]
    return np.unique(np.array(out, dtype=int))


class _Column(NamedTuple):
    """The spine column cut into segments, ready to grow (:func:`_grow_column`): the body
    cores (``seeds``, segment ids numbered from the bottom), the bone on the column, the bodies,
    each column voxel's nearest axis point (``level``, -1 off the column), the grid step (mm)
    and the segments on either side of a cut placed at the expected length (a disc not seen)."""

    seeds: np.ndarray
    column: np.ndarray
    bodies: np.ndarray
    level: np.ndarray
    step: float
    beside_guess: list[int]
    doubtful: list[int]


def _column_segments(vertebra: np.ndarray, affine: np.ndarray, voxel_ml: float) -> _Column | None:
    """The spine column cut at the discs, with a seed (its body's core) per segment; None
    without a body.

    The bodies' centres give the spine axis and their cross-section along it, which falls to
    (near) nothing at each disc. Bone within ``COLUMN_RADIUS_MM`` of the axis is the column;
    it is cut at those minima, the bodies' cores (:func:`_away_from_cuts`) taking the segment
    of their nearest axis point and seeding the growth of the rest.
    Cuts are then checked against the bone fraction across the axis (:func:`_axis_profile`):
    a cut with as much bone across it as around it is dropped, segments about twice the expected length (a disc
    the network filled) are split, and every cut moves to the nearby minimum.
    """
    from scipy.spatial import cKDTree

    step = float(np.mean(np.linalg.norm(affine[:3, :3], axis=0)))
    bodies = _bodies(vertebra, affine, voxel_ml)
    if not bodies.any():
        return None
    all_z, axis, area = _spine_axis(bodies, step)
    cuts, _ = find_peaks(-ndimage.uniform_filter1d(area, 2), distance=max(1, int(MIN_SPACING_MM / step)),
                         prominence=area.max() * 0.15)
    profile = _axis_profile(vertebra, axis, step)
    profile = ndimage.uniform_filter1d(profile, 2)
    cuts = confirmed_discs(cuts, profile, step)
    cuts = profile_discs(profile, area, cuts, step)
    split = split_long_segments(cuts, area, profile)
    added = refine_cuts(np.setdiff1d(split, cuts), profile)  # cut at the expected length ...
    guessed = np.setdiff1d(added, confirmed_discs(added, profile, step))  # ... where no disc shows
    cuts = refine_cuts(split, profile)
    idx = np.argwhere(vertebra)
    world_axis = axis @ affine[:3, :3].T + affine[:3, 3]
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    dist, nearest = cKDTree(world_axis).query(world)
    on_column = dist <= COLUMN_RADIUS_MM
    idx, nearest = idx[on_column], nearest[on_column]
    column = np.zeros(vertebra.shape, bool)
    column[tuple(idx.T)] = True
    level = np.full(vertebra.shape, -1, np.int32)
    level[tuple(idx.T)] = nearest
    # bodies take the segment of their nearest axis point; the rest of each vertebra (pedicles,
    # laminae, processes) is reached by growing the bodies through the column, so a process
    # that reaches down past the disc still joins the body it is attached to
    seeds = np.zeros(vertebra.shape, np.int32)
    seeds[tuple(idx.T)] = np.searchsorted(cuts, nearest, side="right") + 1
    seeds[~bodies] = 0
    body_ml = np.bincount(seeds.ravel(), minlength=len(cuts) + 2) * voxel_ml
    for k in range(1, len(cuts) + 2):
        if body_ml[k] < MIN_BODY_ML:  # a segment needs a vertebral body
            seeds[seeds == k] = 0
    seeds[tuple(idx.T)] *= _away_from_cuts(nearest, cuts, len(axis), step)
    beside_guess = [k + d for k in np.flatnonzero(np.isin(cuts, guessed)) for d in (1, 2)]  # instances k+1, k+2
    return _Column(seeds, column, bodies, level, step, sorted(set(beside_guess)),
                   [k + 1 for k in doubtful_segments(cuts, area)])


def _grow_column(col: _Column, rooted: Collection[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Instances of the column grown from its seeds, and the same on the bodies alone; the
    segments in ``rooted`` are grown from their pedicle roots too (:func:`_with_pedicle_roots`)."""
    seeds = col.seeds
    if rooted:
        roots = _with_pedicle_roots(seeds, col.column & ~col.bodies, col.level, col.step)
        seeds = np.where((seeds == 0) & np.isin(roots, list(rooted)), roots, seeds)
    grown = _grow(seeds, col.column)
    return grown, np.where(col.bodies, grown, 0)


def _away_from_cuts(nearest: np.ndarray, cuts: np.ndarray, n: int, step: float) -> np.ndarray:
    """Whether each voxel (by its ``nearest`` axis point, of ``n`` spaced ``step`` mm) lies at
    least ``CORE_MARGIN_MM`` (or a quarter of its segment) from the cuts bounding its segment.

    A cut is a plane across the axis; a real disc is tilted to it (lordosis, wedged discs), by
    up to ~5 mm at a body's front or back. Only the bodies' cores are seeded; the rest of each
    body is then grown from its core through the bone, so it follows the disc's own gap."""
    cuts = np.sort(np.asarray(cuts, int))
    seg = np.searchsorted(cuts, nearest, side="right")
    lo = np.concatenate([[-np.inf], cuts])[seg]  # no cut below the first segment
    hi = np.concatenate([cuts, [np.inf]])[seg]
    length = np.diff(np.concatenate([[0], cuts, [n]]))[seg]  # axis points in the voxel's segment
    margin = np.minimum(CORE_MARGIN_MM, 0.25 * length * step)
    return (np.minimum(nearest - lo + 0.5, hi - nearest - 0.5) * step >= margin).astype(np.int32)


def _behind_cores(seeds: np.ndarray, arches: np.ndarray, group: np.ndarray, depth: int) -> np.ndarray:
    """Per ``arches`` voxel, the label of the one core (``seeds``) it lies at most ``depth``
    voxels behind, in the same ``group`` (-1: none) and within the core's left-right extent
    there; 0 where none does, or where two do."""
    claims = np.zeros(seeds.shape, np.int32)
    contested = np.zeros(seeds.shape, bool)
    candidates = np.argwhere(arches & (group >= 0))
    cand_group = group[tuple(candidates.T)]
    for label in np.unique(seeds[seeds > 0]):
        idx = np.argwhere(seeds == label)
        idx_group = group[tuple(idx.T)]
        for g in np.unique(idx_group[idx_group >= 0]):
            on = idx[idx_group == g]
            back = on[:, 1].min()  # RAS: the second axis runs to the front
            c = candidates[cand_group == g]
            c = c[(c[:, 1] < back) & (c[:, 1] >= back - depth)
                  & (c[:, 0] >= on[:, 0].min()) & (c[:, 0] <= on[:, 0].max())]
            where = tuple(c.T)
            contested[where] |= (claims[where] > 0) & (claims[where] != label)
            claims[where] = np.where(claims[where] == 0, label, claims[where])
    return np.where(contested, 0, claims)


def _with_pedicle_roots(seeds: np.ndarray, arches: np.ndarray, level: np.ndarray, step: float,
                        depth_mm: float = PEDICLE_SEED_MM) -> np.ndarray:
    """``seeds`` (body cores, one label each, on a RAS grid of ``step`` mm) with the ``arches``
    voxels (bone outside the bodies) up to ``depth_mm`` behind each core, at the core's own
    axial slices and levels (``level``: each voxel's place along the spine, its nearest axis
    point; -1 off the column), within its left-right extent, seeded with the core's label.

    Behind a body at its own levels lie its pedicles' roots; the articular processes, which
    meet the neighbours' at the facet joints, lie farther back. Seeded from the roots, a lumbar
    arch is grown from its own body. Both the slice and the level must agree: under the
    lordosis an axial slice through a body also crosses the back of the body below (the real
    evaluation CT's L5 took part of S1), and a bone far from a wavering axis can lie nearest to
    a neighbour's axis points (a phantom's L1 gave part of its arch to T12). A voxel behind two
    cores is left to the growth."""
    depth = max(1, int(round(depth_mm / step)))
    by_slice = np.broadcast_to(np.arange(seeds.shape[2], dtype=np.int32), seeds.shape)
    claims = _behind_cores(seeds, arches, by_slice, depth)
    claims = np.where(claims == _behind_cores(seeds, arches, level, depth), claims, 0)
    out = seeds.copy()
    take = (claims > 0) & (seeds == 0)
    out[take] = claims[take]
    return out


def _grow(seeds: np.ndarray, within: np.ndarray, max_steps: int = 60) -> np.ndarray:
    """Labels grown one voxel at a time through ``within`` (a geodesic nearest-seed map)."""
    out = seeds.copy()
    lo = np.argwhere(within).min(axis=0)
    hi = np.argwhere(within).max(axis=0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi))
    lab, free = out[box], within[box] & (out[box] == 0)
    for _ in range(max_steps):
        grown = ndimage.grey_dilation(lab, size=(3, 3, 3))
        take = free & (grown > 0)
        if not take.any():
            break
        lab[take] = grown[take]
        free &= ~take
    out[box] = lab
    return out


def _sacrum(candidates: np.ndarray, column: list[np.ndarray], affine: np.ndarray, voxel_ml: float
            ) -> tuple[np.ndarray, bool]:
    """The sacrum among the pieces the network called sacrum: the largest that lies on the
    column's midline (within ``SACRUM_MIDLINE_MM`` of its lowest body left to right: the
    sacrum is symmetric, iliac wings and alae sit to the side) and below it (some body at
    least ``SACRUM_BELOW_MM`` above its centre: S1 lies half a body and a disc below L5).
    ``column`` holds the body centres (RAS mm), cranial first. Returns the sacrum mask (empty
    if none qualifies) and whether a piece of sacrum size was passed over. Pieces within
    ``SACRUM_GAP_MM`` of each other are one: fine-tuned on real masks, which leave the sacrum
    unlabelled, the network calls a quarter of a phantom's sacrum sacrum, in pieces (1.9 and
    0.8 ml; joined, phantom seeds 6000-6003 find their sacrum 4 times of 4, against 2)."""
    step = float(np.mean(np.linalg.norm(affine[:3, :3], axis=0)))
    reach = max(1, int(round(SACRUM_GAP_MM / 2 / step)))  # grown from both sides, a gap closes at twice this
    lab, n = ndimage.label(ndimage.binary_dilation(candidates, iterations=reach))
    lab = np.where(candidates, lab, 0)
    none = np.zeros(candidates.shape, bool)
    if n == 0:
        return none, False
    sizes = ndimage.sum_labels(candidates, lab, index=np.arange(1, n + 1)) * voxel_ml
    coms = np.array(ndimage.center_of_mass(candidates, lab, np.arange(1, n + 1))) @ affine[:3, :3].T + affine[:3, 3]
    big = sizes >= MIN_SACRUM_ML
    lowest_x, top_z = column[-1][0], max(c[2] for c in column)
    fits = big & (np.abs(coms[:, 0] - lowest_x) <= SACRUM_MIDLINE_MM) & (coms[:, 2] <= top_z - SACRUM_BELOW_MM)
    if not fits.any():
        return none, bool(big.any())
    return lab == 1 + int(np.argmax(np.where(fits, sizes, -1))), False


#: bone this far below the lowest body's inferior endplate plane is not that vertebra (mm):
#: about a thin disc, clear of the endplate's own bulge. 2 / 4 / 6 mm gave the same bone Dice
#: on sub-verse014 (fold weights: 0.789 / 0.788 / 0.787)
BELOW_BODY_MM = 4.0


def below_lowest_body(labels: np.ndarray, bodies: np.ndarray, affine: np.ndarray,
                      margin_mm: float = BELOW_BODY_MM) -> np.ndarray:
    """Voxels of the lowest vertebra's label (the most caudal but the sacrum) that lie more than
    ``margin_mm`` below its body's inferior endplate and within the body's footprint: the next
    bone down (the top of S1 in a crop too narrow for the network to see a sacrum), not this
    vertebra. Its arches lie behind the footprint and are kept.

    ``bodies`` holds the labels on the vertebral bodies alone. The spine's axis there runs
    from the lowest body's centre to the next body's; the endplate is the plane fitted (least
    squares, outliers past 2.5 SD refitted without) to the body's lowest voxel in each column
    along that axis, so a body tilted by the lordosis keeps its own endplate. Hand-written: no
    library fits a vertebra's endplate. Returns a bool mask (all False with fewer than two bodies).
    """
    out = np.zeros(labels.shape, bool)
    present = sorted((int(v) for v in np.unique(bodies) if v and v != SACRUM_LABEL), key=SPINE_ORDER.get)
    if len(present) < 2:
        return out
    low, above = present[-1], present[-2]
    step = float(np.mean(np.linalg.norm(affine[:3, :3], axis=0)))

    def world(mask: np.ndarray) -> np.ndarray:
        return np.argwhere(mask) @ affine[:3, :3].T + affine[:3, 3]

    body = world(bodies == low)
    centre = body.mean(axis=0)
    axis = world(bodies == above).mean(axis=0) - centre
    axis /= np.linalg.norm(axis)
    u = np.cross(axis, [1.0, 0.0, 0.0]) if abs(axis[0]) < 0.9 else np.cross(axis, [0.0, 1.0, 0.0])
    u /= np.linalg.norm(u)
    frame = np.stack([axis, u, np.cross(axis, u)], axis=1)  # along the axis, then across it

    def along_across(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        q = (points - centre) @ frame
        return q[:, 0], np.round(q[:, 1:] / step).astype(int)

    height, cols = along_across(body)
    lo = cols.min(axis=0)
    cols -= lo
    key = cols[:, 0] * (cols[:, 1].max() + 1) + cols[:, 1]
    order = np.lexsort((height, key))
    lowest = order[np.r_[True, key[order][1:] != key[order][:-1]]]  # each column's lowest voxel
    design = np.c_[cols[lowest], np.ones(len(lowest))]
    coef = np.linalg.lstsq(design, height[lowest], rcond=None)[0]
    resid = height[lowest] - design @ coef
    inlier = np.abs(resid) <= 2.5 * resid.std() + 1e-6
    coef = np.linalg.lstsq(design[inlier], height[lowest][inlier], rcond=None)[0]
    footprint = np.zeros(tuple(cols.max(axis=0) + 3), bool)
    footprint[cols[:, 0] + 1, cols[:, 1] + 1] = True
    footprint = ndimage.binary_dilation(ndimage.binary_fill_holes(footprint))
    own = (labels == low) & (bodies != low)  # the body itself is never cut: it may hold S1's top
    h, c = along_across(world(own))
    c = c - lo + 1
    inside = np.all((c >= 0) & (c < footprint.shape), axis=1)
    under = np.zeros(len(h), bool)
    under[inside] = footprint[c[inside, 0], c[inside, 1]]
    under &= h < np.c_[c - 1, np.ones(len(h))] @ coef - margin_mm
    out[tuple(np.argwhere(own)[under].T)] = True
    return out


def anchor_labels(n: int, sacrum_l5: bool, t12: int | None) -> tuple[list[int], str, list[str]]:
    """VerSe labels for ``n`` vertebrae listed cranial first, the anchor used and notes.

    Args:
        sacrum_l5: the lowest vertebra rests on the sacrum (so it is L5).
        t12: index (cranial first) of the lowest rib-bearing vertebra, or None.
    Labels past L5 (or above C1) are 0: left unlabelled.
    """
    notes: list[str] = []
    by_sacrum = 24 - (n - 1)  # the topmost vertebra's label, counted from L5 at the bottom
    if sacrum_l5 and t12 is not None:
        top = by_sacrum
        if 19 - t12 == by_sacrum:
            anchor = ANCHOR_BOTH
        else:
            anchor = ANCHOR_CONFLICT
            lumbar = n - 1 - t12
            notes.append(f"labels counted from the sacrum, but {lumbar} rib-free vertebra"
                         f"{'' if lumbar == 1 else 'e'} lie between the lowest rib and the sacrum, not 5 "
                         "(a transitional vertebra, or a 12th rib missing or not seen): check the labels")
    elif sacrum_l5:
        top, anchor = by_sacrum, ANCHOR_SACRUM
    elif t12 is not None:
        top, anchor = 19 - t12, ANCHOR_RIB
        notes.append("no sacrum in view: labels counted from the lowest rib-bearing vertebra (T12)")
    else:
        top, anchor = by_sacrum, ANCHOR_NONE
        notes.append(f"{UNANCHORED_NOTE}: neither the sacrum nor the lowest rib (T12) was found in view, so the lowest "
                     "vertebra was guessed to be L5; check the labels (--first-label relabels them)")
    labels = [top + k if 1 <= top + k <= 24 else 0 for k in range(n)]
    if 0 in labels:
        notes.append("vertebrae beyond C1 or L5 by this count were left unlabelled")
    return labels, anchor, notes


def _mark_sacral(sacrum: np.ndarray, instances: np.ndarray, sacral: Collection[int]) -> np.ndarray:
    """Labels with the sacrum and the ``sacral`` instances (column bone below the sacrum's
    centre: S1 taken for a vertebra) set to the sacrum's label; those instances are removed
    from ``instances`` (in place)."""
    out = np.where(sacrum, SACRUM_LABEL, 0).astype(np.uint8)
    for i in sacral:
        out[instances == i] = SACRUM_LABEL
        instances[instances == i] = 0
    return out


def identify(classes: np.ndarray, affine: np.ndarray, vertebra_class: int = 1, sacrum_class: int = 2,
             hu: np.ndarray | None = None) -> Identification:
    """VerSe labels for a class map in RAS+ (``affine`` voxel -> RAS mm).

    ``hu`` (the CT in HU on the same grid) lets the ribs anchor the labels too, and the
    vertebrae below the ribs be grown again from their pedicle roots as well.
    Returns labels on the same grid: vertebrae 1-25, sacrum 26, background 0.
    """
    voxel_ml = float(abs(np.linalg.det(affine[:3, :3]))) / 1000.0
    col = _column_segments(classes == vertebra_class, affine, voxel_ml)
    if col is None:
        return Identification(np.zeros(classes.shape, np.uint8), ANCHOR_NONE, ["no vertebra found"])
    instances, bodies = _grow_column(col)
    ids = [int(i) for i in np.unique(instances) if i]
    notes: list[str] = []
    if not ids:
        return Identification(np.zeros(classes.shape, np.uint8), ANCHOR_NONE, ["no vertebra found"])
    coms = ndimage.center_of_mass(np.ones(classes.shape), instances, ids)
    centre = {i: affine[:3, :3] @ np.array(c) + affine[:3, 3] for i, c in zip(ids, coms)}
    order = sorted(ids, key=lambda i: -centre[i][2])  # cranial first
    sacrum, ignored = _sacrum(classes == sacrum_class, [centre[i] for i in order], affine, voxel_ml)
    if ignored:
        notes.append("a sacrum-like piece beside the vertebrae was ignored")
    sacral: list[int] = []
    if sacrum.any():
        sac_z = float((affine[:3, :3] @ np.array(ndimage.center_of_mass(sacrum)) + affine[:3, 3])[2])
        sacral = [i for i in order if centre[i][2] <= sac_z]
        order = [i for i in order if centre[i][2] > sac_z]
    out = _mark_sacral(sacrum, instances, sacral)
    t12 = None
    if hu is not None and order:
        ribs = rib_bearing(instances, hu, affine, out == SACRUM_LABEL)
        flags = rib_flags(order, ribs)
        last_rib = max((k for k, bears in enumerate(flags) if bears), default=-1)
        if order[last_rib + 1:]:  # grown again with the roots of the rib-free vertebrae below the ribs
            instances, bodies = _grow_column(col, order[last_rib + 1:])
            out = _mark_sacral(sacrum, instances, sacral)
        top_cut = bool((instances[:, :, -TOP_CUT_VOXELS:] == order[0]).any())
        t12_id = lowest_rib_bearing(order, ribs, top_cut)
        t12 = order.index(t12_id) if t12_id is not None else None
    labels, anchor, more = anchor_labels(len(order), bool(sacrum.any()), t12)
    doubtful = [label for i, label in zip(order, labels) if i in col.doubtful and label]
    if anchor == ANCHOR_BOTH:  # two agreeing anchors count the levels between: one vertebra each
        doubtful = []
    names = ", ".join(VERSE_NAMES[label] for label in doubtful)
    if doubtful and anchor in (ANCHOR_RIB, ANCHOR_SACRUM):
        more.append(f"labels counted from the {'lowest rib (T12)' if anchor == ANCHOR_RIB else 'sacrum'}, but "
                    f"{names} {'is' if len(doubtful) == 1 else 'are'} long enough to hold two vertebrae whose "
                    "disc was not found: labels past it may be one level off; check them")
        anchor = ANCHOR_DOUBT
    elif doubtful:  # the labels are flagged already; the vertebra itself is not measured as one
        more.append(f"{names} {'is' if len(doubtful) == 1 else 'are'} long enough to hold two vertebrae whose "
                    "disc was not found: not graded")
    for i, label in zip(order, labels):
        out[instances == i] = label
    body_labels = np.where(bodies > 0, out, 0).astype(np.uint8)
    if not sacrum.any():  # with no sacrum found, the next bone down may have joined the lowest label
        out[below_lowest_body(out, body_labels, affine)] = 0  # never a body voxel
    guessed = tuple(sorted({label for i, label in zip(order, labels) if i in col.beside_guess and label}))
    return Identification(out, anchor, notes + more, body_labels, guessed, tuple(sorted(doubtful)))
