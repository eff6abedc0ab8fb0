"""Published normative vertebral body shape by level: the natural sagittal wedge, and the
mean body height by level (``REFERENCE_HEIGHT_MM``).

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


def wedge_drop_mm(label: int, depth_mm: float) -> float:
    """How much shorter (mm) the anterior than the posterior wall of a normal body of this
    level and AP depth is (negative: taller in front)."""
    return depth_mm * math.tan(math.radians(wedge_deg(label)))
