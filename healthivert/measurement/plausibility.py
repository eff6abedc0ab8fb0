"""Bodies too tall to be one vertebra: a mask that gave two vertebrae one label, or a label
that holds a piece of the next bone.

A segmenter that fills a disc with bone, or a mask that merged two levels, gives one label a
body about twice a vertebra's height. Measured as one vertebra it reads as a body far taller
than its neighbours (a negative height loss, graded normal), and as a neighbour it makes the
pseudo-healthy bodies above and below it far too tall (false fractures: on a real CT whose
L4 and L5 the segmenter merged, L1-L3 read 37-48 % middle loss). Heights are compared with
the study's own bodies after scaling each by its level's mean height
(:data:`healthivert.normative.REFERENCE_HEIGHT_MM`), so the natural growth from T1 to L5 and a
study's overall size do not count, and the median keeps a few fractures from moving the
reference.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra
from healthivert.normative import REFERENCE_HEIGHT_MM
from healthivert.sections import SECTIONS, section_heights

#: a body this many times the study's median level-scaled height holds two vertebrae: one
#: vertebra plus a disc is at least ~1.7 times a body, while a healthy body between fractures
#: reads ~1.0 against the median and real normal bodies vary by ~15 %
MERGED_RATIO = 1.6
#: ... and one this many times is no neighbour's reference (the prior): real bodies read
#: 0.82-1.22 times their study's median (the expert masks at hand), a label holding a piece of
#: the next bone more
NO_REFERENCE_RATIO = 1.3
MIN_BODIES = 3  # a median needs at least this many measurable bodies
#: a body this many times its level's mean height (``REFERENCE_HEIGHT_MM``), and ``MERGED_RATIO``
#: times the study's shortest, holds two vertebrae however few bodies there are to compare, or
#: however many of them are merged too: real bodies read 0.96-1.22 times that mean (the expert
#: masks at hand and TotalSegmentator's), two lumbar bodies and their disc about 2.2 (sub-verse014
#: tilted 12 degrees: L4-L5 in one label, 57 mm, beside L1-L2 in another; the median of four
#: bodies, two of them merged, hid both). The second test spares a whole spine given the wrong
#: levels (lumbar bodies named T1-T3 read 1.9 times T1-T3's mean, every one of them).
ABSOLUTE_MERGED_RATIO = 1.7


def body_height_mm(v: StraightVertebra) -> float:
    """A body's height (mm): the tallest of its anterior, middle and posterior section heights
    (the heights the record reports; a fracture leaves one section whole, and a piece of the
    next vertebra merged in at the back or the front shows in that section); NaN without a body."""
    if not v.body.any():
        return float("nan")
    sections = section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
    return float(np.nanmax([sections[s] for s in SECTIONS]))


def merged_suspects(vertebrae: Sequence[StraightVertebra], ratio: float = MERGED_RATIO) -> dict[int, float]:
    """VerSe label -> how many times the height expected at its level the body is, for the
    bodies at least ``ratio`` times the study's median level-scaled height (the ratio to that
    median), or else ``ABSOLUTE_MERGED_RATIO`` times their level's mean height and
    ``MERGED_RATIO`` times the study's shortest level-scaled body (the ratio to that mean; the
    only test with fewer than ``MIN_BODIES`` bodies to compare). Bodies cut by the field of view
    and levels without a mean height are left out."""
    scaled = {v.label: body_height_mm(v) / REFERENCE_HEIGHT_MM[v.label] for v in vertebrae
              if v.label in REFERENCE_HEIGHT_MM and not v.cut_by_fov and v.body.any()}
    scaled = {k: r for k, r in scaled.items() if np.isfinite(r)}
    median = float(np.median(list(scaled.values()))) if len(scaled) >= MIN_BODIES else np.inf
    shortest = min(scaled.values(), default=np.inf)
    out = {k: r for k, r in scaled.items() if r >= ABSOLUTE_MERGED_RATIO and r >= MERGED_RATIO * shortest}
    out.update({k: r / median for k, r in scaled.items() if r >= ratio * median})
    return out


#: a section this much taller than its pseudo-healthy height (RHLV below minus this) is no
#: vertebra's own: real expert-normal bodies read -7 to +13 % at the front against their
#: neighbours, and sub-verse014's L5 segmented with the top of S1 reads -34 % / -61 % in the
#: middle and at the back, which the SVM, seeing a body far taller at the back than the front,
#: graded 3
TALLER_LIMIT = 0.30


def taller_than_predicted(rhlv: dict[str, float]) -> tuple[str, float] | None:
    """(section, how much taller as a fraction) of the section most above its pseudo-healthy
    height when it is more than ``TALLER_LIMIT`` above it (``rhlv``: section -> relative
    height loss, negative when taller); None otherwise."""
    section = min(SECTIONS, key=lambda s: rhlv[s] if np.isfinite(rhlv[s]) else np.inf)
    gain = -float(rhlv[section])
    return (section, gain) if np.isfinite(gain) and gain > TALLER_LIMIT else None
