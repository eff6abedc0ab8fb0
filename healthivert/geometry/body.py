"""Vertebral body isolation in a straightened crop: pedicles and posterior elements removed.

In the mid-sagittal band, walking from the body's anterior surface posteriorly, the widest
gap (of at least ``MIN_GAP_MM``) between bone is the spinal canal; its anterior edge, taken
per axial slice and then as the median over slices, is the body's posterior wall. Not the
first gap: a segmentation may hold a piece of cortex or an osteophyte in front of the body
with a cleft behind it (sub-verse007's T10, segmented from its CT: the first gap put the wall
inside the body and kept a tenth of it, graded 3). The wall must be seen at about one AP
position over a few millimetres of the body's height, as the canal is behind the pedicles and
laminae: a label that holds a body without its arch shows only stray gaps (an endplate's
concave centre between its rims, a speck cut off behind the body), and such a body is cut at
the back of its mid-line instead. Everything behind the wall goes, and of what remains the
largest connected piece is the body (checked in 3-D, so a slice where a pedicle stub outweighs
the body does not matter).

A label may also hold a piece of its neighbour's body beyond a disc, where identification
found no cut (a few millimetres of the vertebra that the view's edge cuts, or a rim of the
next endplate). Along the body's own SI axis the disc is a waist: the body's cross-section
falls to under half the bone on either side, where a whole body's concave wall narrows it to
no less than 0.62 of its endplates. The body is split at such a waist and the smaller side
goes, when it is a piece (under half the other side's bone). Two whole bodies beyond a disc
stay together: a label that merged two vertebrae is refused as such later
(:mod:`healthivert.measurement.plausibility`), not measured as one of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import ndimage

MIN_GAP_MM = 2.0
MID_BAND_MM = 4.0
#: the wall (the median of the slices' canal edges) holds when edges within ``WALL_AGREE_MM``
#: of it span at least ``MIN_WALL_EXTENT_MM`` of the body's height. Over every crop of the real
#: masks at hand (the experts' of the four VerSe crops, TotalSegmentator's of the example CT,
#: the shipped and the leave-one-out weights' segmentations of the VerSe CTs) the canal's edge of
#: a vertebra with its arch agreed over 6-36 mm; in labels that identification had left without
#: their arch (sub-verse008's L5, shipped weights; sub-verse007's L1, its fold's weights) the
#: gaps agreed over 2-3 mm, and in a T11 the view cuts to 10 mm over 1.5 mm. Taken for the
#: canal, such a gap kept sub-verse008's L5 its front 19 mm of 38 (anterior height 18.0 mm
#: against the experts' 31.9; cut at its back now: 31.4)
WALL_AGREE_MM = 3.0
MIN_WALL_EXTENT_MM = 4.5
#: a cross-section of the body (along its SI axis) smaller than this fraction of the largest
#: on each side of it is a disc inside the label. Over every body of the real masks at hand
#: (the experts' of the three VerSe CTs, TotalSegmentator's of the example CT, the shipped
#: weights' segmentations of all four) a whole body's narrowest cross-section between its
#: endplates was 0.62-1.0 of theirs; the two labels holding a neighbour's piece narrowed to
#: 0.45 (sub-verse008's T12 from its CT, with 13 mm of the T11 that the view's top cuts: T12
#: then reached the edge and was not graded) and 0.49 (sub-verse007's T11, with a rim of
#: T10's endplate)
DISC_WAIST_FRACTION = 0.55
#: ... and the side beyond it goes when it holds less than this fraction of the other side's
#: bone (the piece of T11 in sub-verse008's T12: 0.3)
PIECE_FRACTION = 0.5


def _canal_edge(occupied: np.ndarray, ap_mm: np.ndarray, min_gap: int) -> float | None:
    """AP coordinate where the widest gap between occupied samples (at least ``min_gap``
    samples; the first of equals from the front) begins, on its anterior side; None without one."""
    rows = np.flatnonzero(occupied)
    if rows.size < 2:
        return None
    gaps = np.diff(rows) - 1  # empty samples between consecutive occupied ones
    k = len(gaps) - 1 - int(np.argmax(gaps[::-1]))  # AP grows anteriorly: the front is the end
    if gaps[k] < min_gap:
        return None
    return float(ap_mm[rows[k + 1] - 1])


def _midline_band(label: np.ndarray, lr_mm: np.ndarray, ap_mm: np.ndarray) -> np.ndarray:
    """Bool over LR: within ``MID_BAND_MM`` of the mid-line that the body's front 15 mm fix."""
    footprint = label.any(axis=2)
    ap_hi = ap_mm[np.flatnonzero(footprint.any(axis=0))[-1]]
    front = footprint[:, ap_mm >= ap_hi - 15.0]
    cols = np.flatnonzero(front.any(axis=1))
    lr_mid = float(np.average(lr_mm[cols], weights=front[cols].sum(axis=1)))
    return np.abs(lr_mm - lr_mid) <= MID_BAND_MM


def posterior_wall_mm(label: np.ndarray, lr_mm: np.ndarray, ap_mm: np.ndarray, si_step_mm: float) -> float | None:
    """AP coordinate (mm) of the body's posterior wall: the canal's front where a canal is seen,
    else the back of the label along the mid-line (a body without its arch: identification
    may give the arch to a neighbour); None for an empty label.

    Args:
        label: binary crop (n_lr, n_ap, n_si) of one vertebra.
        si_step_mm: the crop's SI sample spacing (mm).
    """
    if not label.any():
        return None
    band = _midline_band(label, lr_mm, ap_mm)
    step = abs(float(ap_mm[1] - ap_mm[0]))
    min_gap = max(1, int(np.ceil(MIN_GAP_MM / step)))
    edges, backs = [], []
    for k in range(label.shape[2]):
        occupied = label[band, :, k].any(axis=0)
        if occupied.sum() >= 3:
            backs.append(float(ap_mm[np.flatnonzero(occupied)[0]]))
            e = _canal_edge(occupied, ap_mm, min_gap)
            if e is not None:
                edges.append(e)
    if len(edges) >= 3:
        wall = float(np.median(edges))
        if np.count_nonzero(np.abs(np.asarray(edges) - wall) <= WALL_AGREE_MM) * si_step_mm >= MIN_WALL_EXTENT_MM:
            return wall
    return float(np.median(backs)) if backs else None


class IsolatedBody(NamedTuple):
    """A vertebral body isolated from its label (:func:`isolated_body`)."""

    body: np.ndarray  # bool (n_lr, n_ap, n_si)
    beyond_disc: int  # SI samples of bone left out beyond a disc (a neighbour's piece); 0 for none


def isolate_body(label: np.ndarray, lr_mm: np.ndarray, ap_mm: np.ndarray, si_step_mm: float) -> np.ndarray:
    """The vertebral body of a binary straightened vertebra (n_lr, n_ap, n_si; SI samples
    ``si_step_mm`` apart).

    A mask that is a body already (no canal) is cut at the back of its mid-line and comes
    back as its largest piece.
    """
    return isolated_body(label, lr_mm, ap_mm, si_step_mm).body


def isolated_body(label: np.ndarray, lr_mm: np.ndarray, ap_mm: np.ndarray, si_step_mm: float) -> IsolatedBody:
    """:func:`isolate_body`, with how much bone beyond a disc it left out."""
    # an enclosed cavity (a hole in a segmentation, a vacuum cleft) would pass for the canal's
    # gap; the canal itself is open above and below, so filling in 3-D leaves it alone
    label = ndimage.binary_fill_holes(label)
    body = label.copy()
    wall = posterior_wall_mm(label, lr_mm, ap_mm, si_step_mm)
    if wall is not None:
        body[:, ap_mm < wall, :] = False
    body = _largest_piece(body)
    beyond = 0
    for _ in range(2):  # a label may hold a piece of each neighbour
        body, dropped = _split_at_disc(body)
        beyond += dropped
    return IsolatedBody(ndimage.binary_fill_holes(body), beyond)


def _largest_piece(mask: np.ndarray) -> np.ndarray:
    lab, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = ndimage.sum_labels(mask, lab, index=np.arange(1, n + 1))
    return lab == (1 + int(np.argmax(sizes)))


def _split_at_disc(body: np.ndarray) -> tuple[np.ndarray, int]:
    """``body`` (n_lr, n_ap, n_si) without a piece of its neighbour beyond a disc: where its SI
    cross-section falls below ``DISC_WAIST_FRACTION`` of the largest on both sides, the side
    with less bone goes, with the waist's deepest samples, if it holds under ``PIECE_FRACTION``
    of the other's; of the rest the largest piece stays. Also: the SI samples of bone left out."""
    area = body.sum(axis=(0, 1)).astype(float)
    present = np.flatnonzero(area)
    if present.size < 3:
        return body, 0
    lo, hi = int(present[0]), int(present[-1]) + 1
    a = area[lo:hi]
    before = np.maximum.accumulate(a)  # the largest cross-section up to each sample
    after = np.maximum.accumulate(a[::-1])[::-1]
    ratio = np.ones_like(a)
    ratio[1:-1] = a[1:-1] / np.minimum(before[1:-1], after[1:-1])
    k = int(np.argmin(ratio))
    if ratio[k] >= DISC_WAIST_FRACTION:
        return body, 0
    # the disc: the deepest sample and those beside it about as deep (a flat-bottomed waist),
    # not the endplates' ramps on either side, which are the bodies' own
    flat = ratio <= ratio[k] + 0.05
    first, last = k, k
    while flat[first - 1]:
        first -= 1
    while flat[last + 1]:
        last += 1
    below, above = a[:first].sum(), a[last + 1:].sum()
    if min(below, above) >= PIECE_FRACTION * max(below, above):
        return body, 0
    keep = slice(lo, lo + first) if below > above else slice(lo + last + 1, hi)
    out = np.zeros_like(body)
    out[:, :, keep] = body[:, :, keep]
    kept = _largest_piece(out)
    return kept, int(np.count_nonzero(area)) - int(np.count_nonzero(kept.any(axis=(0, 1))))
