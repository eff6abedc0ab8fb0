"""Vertebra labels: VerSe numbering inside, TotalSegmentator v2 ids mapped on input.

VerSe: 1-7 C1-C7, 8-19 T1-T12, 20-24 L1-L5, 25 L6, 26 S1 (sacrum), 28 T13.
"""

from __future__ import annotations

import numpy as np

VERSE_NAMES: dict[int, str] = {
    **{i: f"C{i}" for i in range(1, 8)},
    **{i + 7: f"T{i}" for i in range(1, 13)},
    **{i + 19: f"L{i}" for i in range(1, 7)},
    26: "S1",
    28: "T13",
}
NAME_TO_VERSE: dict[str, int] = {name: label for label, name in VERSE_NAMES.items()}

#: Vertebra labels (the sacrum is a landmark, not a graded vertebra).
VERTEBRA_LABELS: frozenset[int] = frozenset(set(VERSE_NAMES) - {26})

#: how a study's vertebra labels were anchored (``result.json``'s ``labels.anchor``)
ANCHOR_BOTH = "sacrum and lowest rib (T12) agree"
ANCHOR_SACRUM = "sacrum"
ANCHOR_RIB = "lowest rib (T12)"
ANCHOR_CONFLICT = "sacrum and lowest rib (T12) disagree"
ANCHOR_USER = "first label given by the user"  # relabel_from_top
ANCHOR_NONE = "none: labels guessed"
#: one anchor seen, but a vertebra counted from it may hold two (its disc not found)
ANCHOR_DOUBT = "one anchor, but a vertebra may hold two"
#: anchors whose labels a reader should check before trusting them
UNCERTAIN_ANCHORS = (ANCHOR_NONE, ANCHOR_CONFLICT, ANCHOR_DOUBT)
UNANCHORED_NOTE = "labels unanchored"  # how the note on guessed labels begins


def is_anchored(anchor: str) -> bool:
    """Whether labels anchored this way rest on an anchor seen (or given) and not contradicted."""
    return anchor not in UNCERTAIN_ANCHORS

# TotalSegmentator v2 "total" task: 26 = vertebrae_S1, 27 = L5 ... 31 = L1, 32 = T12 ... 43 = T1,
# 44 = C7 ... 50 = C1.
TOTALSEG_TO_VERSE: dict[int, int] = {26: 26, **{27 + k: 24 - k for k in range(5)}}
TOTALSEG_TO_VERSE.update({32 + k: 19 - k for k in range(12)})
TOTALSEG_TO_VERSE.update({44 + k: 7 - k for k in range(7)})

# Anatomical order from cranial to caudal (T13 after T12, L6 after L5).
_ORDER = [*range(1, 20), 28, *range(20, 26), 26]
SPINE_ORDER: dict[int, int] = {label: i for i, label in enumerate(_ORDER)}
T13 = 28


def level_gap(a: int, b: int, with_t13: bool = False) -> int:
    """Levels between two vertebrae (1: adjacent). T13 sits between T12 and L1 in
    ``SPINE_ORDER`` but counts only in a spine that has one: in all others T12 and L1 are adjacent."""
    lo, hi = sorted((SPINE_ORDER[a], SPINE_ORDER[b]))
    return hi - lo - int(not with_t13 and lo < SPINE_ORDER[T13] < hi)


def verse_name(label: int) -> str:
    """Name of a VerSe label ("L1"); raises ValueError for an unknown label."""
    try:
        return VERSE_NAMES[int(label)]
    except KeyError:
        raise ValueError(f"{label} is not a VerSe vertebra label") from None


def verse_label(name: str) -> int:
    """VerSe label of a vertebra name ("L1" -> 20)."""
    try:
        return NAME_TO_VERSE[name.upper()]
    except KeyError:
        raise ValueError(f"unknown vertebra name {name!r}") from None


def sort_cranial_to_caudal(labels) -> list[int]:
    """VerSe labels in anatomical order, top to bottom."""
    return sorted((int(x) for x in labels), key=lambda x: SPINE_ORDER.get(x, 100 + x))


def totalseg_to_verse(mask: np.ndarray) -> np.ndarray:
    """Map a TotalSegmentator v2 multi-label mask to VerSe numbering; other classes become 0."""
    lut = np.zeros(max(int(mask.max()), 50) + 1, dtype=np.uint8)
    for ts_id, verse_id in TOTALSEG_TO_VERSE.items():
        lut[ts_id] = verse_id
    return lut[mask.astype(np.int64)]


def looks_like_totalseg(labels: set[int]) -> bool:
    """True when a label set is TotalSegmentator's rather than VerSe's.

    VerSe uses 1..28; TotalSegmentator's vertebrae are 26..50. A mask with labels above 28
    and none of VerSe's cervical/thoracic range is taken as TotalSegmentator.
    """
    labels = {int(x) for x in labels} - {0}
    if not labels:
        return False
    return max(labels) > 28 or (labels <= set(TOTALSEG_TO_VERSE) and 27 in labels)


def relabel_from_top(mask: np.ndarray, first: int) -> tuple[np.ndarray, int]:
    """A VerSe mask whose vertebrae are shifted so the topmost one is ``first`` (a VerSe
    label), and the shift. The sacrum (26) keeps its label; gaps between labels are kept.

    Raises:
        ValueError: no vertebra in the mask, a T13 in it, or a shifted label outside C1-L5.
    """
    present = sorted(int(x) for x in np.unique(mask) if 0 < x < 26 or x == 28)
    if not present:
        raise ValueError("no vertebra in the mask to relabel")
    if 28 in present:
        raise ValueError("the mask has a T13: relabel it by hand")
    shift = int(first) - present[0]
    if present[-1] + shift > 24 or present[0] + shift < 1:
        raise ValueError(f"with {verse_name(first)} at the top, {verse_name(present[-1])} would become "
                         f"{'a label past L5' if present[-1] + shift > 24 else 'a label above C1'}: "
                         f"{len(present)} vertebrae from {verse_name(present[0])} to {verse_name(present[-1])}")
    lut = np.arange(max(int(mask.max()), 28) + 1, dtype=mask.dtype)
    lut[np.array(present)] = np.array(present) + shift
    return lut[mask.astype(np.int64)], shift
