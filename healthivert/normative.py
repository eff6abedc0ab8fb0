"""Published normative vertebral body shape by level: the natural sagittal wedge, its spread
between healthy people, and the mean body height by level (``REFERENCE_HEIGHT_MM``).

A healthy vertebral body is not a box: thoracic and thoracolumbar bodies are shorter in front
(kyphotic wedging), L3 is about square and L4-L5 are taller in front (lordotic wedging). A
pseudo-healthy body estimated from a neighbour, or from the body's own posterior wall, must
take its own level's wedge, or the natural wedge of T11-L1 reads as height loss and a
fracture of L5 hides behind its natural anterior height.

Source: sagittal wedging of the vertebral body (degrees; positive = ventral wedging, anterior
shorter) in 120 women and 120 men aged 20-80 measured on CT, Eur Spine J 2010;19(5):768-773,
doi:10.1007/s00586-009-1256-6, Table 1; we take the mean of the female and male means. The
table covers T9-L5; T1-T8 take T9's value (thoracic kyphotic wedging of a few degrees), T13
takes T12's and L6 takes L5's.

Spread (that table's "SD" of 0.03-0.05 degrees cannot be the spread between people): the
anterior/posterior wall height ratio (APR) of 115 asymptomatic adults (68 men, 47 women, mean
age 49.5) on MRI, T10-L2, mean +- SD: 0.92 +- 0.08, 0.92 +- 0.08, 0.90 +- 0.06, 0.89 +- 0.06,
0.90 +- 0.07; Surg Radiol Anat 2011;33(3):223-228, doi:10.1007/s00276-010-0746-x (abstract).
Its means agree with the wedges above within 0.04 at T10-L1 for a body 1.3 times as deep as
tall (L2: 0.96 from the wedge, 0.90 measured). A level outside T10-L2 takes the nearest
tabulated level's SD, as the wedges do. A CT study of the endplate angle at T12 and L1 gives
a similar spread (SD 2.1-2.3 degrees; AJR 2009;193(1):W33-W37). The phantoms' natural wedge
(:mod:`healthivert.phantom.anatomy`) varies by this spread, and the SVM grader reads each
body's wedge as a z-score against it (:func:`ratio_z`).
"""

from __future__ import annotations

import math

# Mean posterior vertebral body height by level (mm), adult: only ratios between levels are used
# (the prior's level scaling, the merged-body check). Approximate population means compiled from
# CT/radiograph morphometry (e.g. Panjabi 1991/1992).
REFERENCE_HEIGHT_MM = {
    8: 14.5, 9: 15.5, 10: 16.5, 11: 17.0, 12: 17.5, 13: 18.0, 14: 18.7, 15: 19.5, 16: 20.3,
    17: 21.0, 18: 22.0, 19: 23.0, 28: 23.5, 20: 24.3, 21: 25.0, 22: 25.5, 23: 25.8, 24: 26.3, 25: 26.3,
}


def graded_level(label: int) -> bool:
    """Whether Genant grading covers this level: the thoracic and lumbar vertebrae (T1-L5, with
    T13 and L6 where a spine has them; VerSe's expert grades cover the same). A cervical
    vertebra has another body (C1 none at all) and no normative height here: it is neither
    graded nor any vertebra's reference (a C7 read as a T1 neighbour made T1 91 % short)."""
    return int(label) in REFERENCE_HEIGHT_MM


# VerSe label -> mean sagittal wedge (degrees); see the module docstring for the source
_WEDGE_DEG_T9_L5 = {16: (2.8 + 4.8) / 2, 17: (2.6 + 3.8) / 2, 18: (4.6 + 5.4) / 2, 19: (3.5 + 4.9) / 2,
                    20: (2.6 + 4.1) / 2, 21: (0.7 + 2.6) / 2, 22: (-1.1 + 1.3) / 2, 23: (-3.1 - 0.7) / 2,
                    24: (-7.8 - 4.6) / 2}
WEDGE_DEG: dict[int, float] = {
    **{label: _WEDGE_DEG_T9_L5[16] for label in range(8, 16)},  # T1-T8: T9's value (not tabulated)
    **_WEDGE_DEG_T9_L5,
    28: _WEDGE_DEG_T9_L5[19],  # T13 as T12
    25: _WEDGE_DEG_T9_L5[24],  # L6 as L5
}


def wedge_deg(label: int) -> float:
    """Normative sagittal wedge of a level (degrees, positive = anterior shorter); 0 for a
    label outside T1-L6 (cervical levels are not modelled)."""
    return WEDGE_DEG.get(int(label), 0.0)


# VerSe label -> SD of the anterior/posterior wall height ratio of healthy bodies; see the
# module docstring for the source
_APR_SD_T10_L2 = {17: 0.08, 18: 0.08, 19: 0.06, 20: 0.06, 21: 0.07}
APR_SD: dict[int, float] = {
    **{label: _APR_SD_T10_L2[17] for label in range(8, 17)},  # T1-T9: T10's (not tabulated)
    **_APR_SD_T10_L2,
    **{label: _APR_SD_T10_L2[21] for label in range(22, 26)},  # L3-L6: L2's (not tabulated)
    28: _APR_SD_T10_L2[19],  # T13 as T12
}
#: The anterior and posterior thirds' centres lie two thirds of a body's AP extent apart, its
#: walls the whole extent: a wedge changes the thirds' height ratio by 2/3 of the walls'.
SECTION_SPAN = 2 / 3


def wedge_sd_deg(label: int, depth_mm: float, posterior_mm: float) -> float:
    """The published spread of a level's wedge (degrees, 1 SD) for a body of this AP depth and
    posterior wall height (mm): the APR's SD turned into an angle. NaN outside T1-L6."""
    sd = APR_SD.get(int(label))
    return math.degrees(math.atan(sd * posterior_mm / depth_mm)) if sd is not None else float("nan")


def ratio_z(label: int, ratio: float, depth_mm: float, posterior_mm: float) -> float:
    """How far (in SDs of healthy people) a body's anterior/posterior section height ratio lies
    from its level's normal one; negative: shorter in front than the level's norm.

    Args:
        label: VerSe label (T1-L6; NaN for any other).
        ratio: mean height of the anterior third over the posterior third's.
        depth_mm: the body's AP extent (mm).
        posterior_mm: the posterior third's mean height (mm).

    The thirds' heights differ by ``SECTION_SPAN`` of the wall-to-wall drop, so the normal
    ratio is ``1 - SECTION_SPAN * wedge_drop_mm / posterior`` and its SD ``SECTION_SPAN``
    times the APR's.
    """
    sd = APR_SD.get(int(label))
    if sd is None or not (depth_mm > 0 and posterior_mm > 0):
        return float("nan")
    normal = 1.0 - SECTION_SPAN * wedge_drop_mm(label, depth_mm) / posterior_mm
    return (ratio - normal) / (SECTION_SPAN * sd)


def wedge_drop_mm(label: int, depth_mm: float) -> float:
    """How much shorter (mm) the anterior than the posterior wall of a normal body of this
    level and AP depth is (negative: taller in front)."""
    return depth_mm * math.tan(math.radians(wedge_deg(label)))
