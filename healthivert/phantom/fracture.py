"""Compression fractures of the phantom and the ground-truth heights they produce.

A fracture lowers endplates by ``loss * f(a, l)`` of the healthy column height, where the
profile ``f`` (0..1) depends on the morphology:

* ``wedge``: the superior endplate collapses anteriorly, f rising linearly from the posterior
  wall to the anterior edge;
* ``biconcave``: both endplates sink centrally, f = 1 - rho^2;
* ``crush``: both endplates sink evenly, f = 1.

``loss`` is solved so that the worst section's height loss hits a target inside the chosen
Genant grade's range, so the truth grade holds by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from healthivert.phantom.anatomy import VertebraShape, footprint, healthy_endplates
from healthivert.sections import (
    SECTIONS,
    genant_grade_from_loss,
    relative_height_loss,
    section_heights,
)

MORPHOLOGIES = ("wedge", "biconcave", "crush")
# target worst-section loss per grade (fractions), kept clear of the 20/25/40 % boundaries
GRADE_LOSS_RANGE = {0: (0.0, 0.0), 1: (0.21, 0.24), 2: (0.27, 0.38), 3: (0.43, 0.55)}
TRUTH_GRID_MM = 0.2


@dataclass(frozen=True)
class Fracture:
    """A deformity: morphology and ``loss`` scale (fraction of healthy height where f = 1)."""

    morphology: str
    loss: float

    def __post_init__(self) -> None:
        if self.morphology not in MORPHOLOGIES:
            raise ValueError(f"morphology must be one of {MORPHOLOGIES}; got {self.morphology!r}")
        if not 0.0 <= self.loss < 0.9:
            raise ValueError(f"loss must be in [0, 0.9); got {self.loss}")


def loss_profile(shape: VertebraShape, morphology: str, a: np.ndarray, rho2: np.ndarray) -> np.ndarray:
    """The fracture's relative depth f (0..1) at each (a, rho2) of the footprint."""
    if morphology == "wedge":
        return np.clip((a - shape.posterior_wall) / (shape.depth / 2 - shape.posterior_wall), 0, 1)
    if morphology == "biconcave":
        return np.clip(1 - rho2, 0, 1)
    if morphology == "crush":
        return np.ones_like(a)
    raise ValueError(f"morphology must be one of {MORPHOLOGIES}; got {morphology!r}")


def endplates(
    shape: VertebraShape, fracture: Fracture | None, a: np.ndarray, l: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inside footprint, superior u, inferior u) of the possibly fractured body (mm)."""
    inside, rho2 = footprint(shape, a, l)
    top, bottom = healthy_endplates(shape, a, rho2)
    if fracture is not None and fracture.loss > 0:
        drop = fracture.loss * loss_profile(shape, fracture.morphology, a, rho2) * (top - bottom)
        if fracture.morphology == "wedge":
            top = top - drop
        else:
            top, bottom = top - drop / 2, bottom + drop / 2
    return inside, top, bottom


def _truth_grid(shape: VertebraShape) -> tuple[np.ndarray, np.ndarray]:
    ap = np.arange(shape.posterior_wall, shape.depth / 2 + TRUTH_GRID_MM, TRUTH_GRID_MM)
    lr = np.arange(-shape.width / 2, shape.width / 2 + TRUTH_GRID_MM, TRUTH_GRID_MM)
    return ap, lr


def true_section_heights(shape: VertebraShape, fracture: Fracture | None) -> dict[str, float]:
    """Section heights (mm) of the analytic body, by the shared section definition."""
    ap, lr = _truth_grid(shape)
    a, l = np.meshgrid(ap, lr, indexing="ij")
    inside, top, bottom = endplates(shape, fracture, a, l)
    return section_heights(np.where(inside, top - bottom, 0.0), ap, lr)


def fracture_for_grade(
    shape: VertebraShape, grade: int, morphology: str, rng: np.random.Generator,
    deformity: float | None = None,
) -> Fracture | None:
    """A fracture whose worst-section loss lies inside ``grade``'s range.

    For grade 0, ``deformity`` (a loss below 20 %) gives a sub-threshold deformity; None or 0
    gives an intact vertebra.
    """
    if grade not in GRADE_LOSS_RANGE:
        raise ValueError(f"grade must be 0-3; got {grade}")
    target = float(rng.uniform(*GRADE_LOSS_RANGE[grade])) if grade else (deformity or 0.0)
    if target <= 0:
        return None
    unit = Fracture(morphology, 0.5)
    healthy = true_section_heights(shape, None)
    unit_loss = max(relative_height_loss(healthy, true_section_heights(shape, unit))[s] for s in SECTIONS)
    return Fracture(morphology, 0.5 * target / unit_loss)


def truth_record(shape: VertebraShape, fracture: Fracture | None) -> dict:
    """Healthy and fractured section heights (mm), RHLV and the Genant grade they imply."""
    healthy = true_section_heights(shape, None)
    actual = true_section_heights(shape, fracture)
    rhlv = relative_height_loss(healthy, actual)
    return {
        "genant_grade": genant_grade_from_loss(max(rhlv[s] for s in SECTIONS)),
        "morphology": fracture.morphology if fracture else None,
        "healthy_heights_mm": {k: round(v, 3) for k, v in healthy.items()},
        "fractured_heights_mm": {k: round(v, 3) for k, v in actual.items()},
        "rhlv": {k: round(v, 4) for k, v in rhlv.items()},
    }
