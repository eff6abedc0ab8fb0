"""Per-vertebra measurements: section heights, RHLV, intra-vertebral ratios, height-loss map."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra
from healthivert.measurement.density import density_category, trabecular_hu
from healthivert.normative import ratio_z
from healthivert.sections import SECTIONS, body_extent, relative_height_loss, section_heights
from healthivert.synthesis.base import PseudoHealthy


@dataclass
class VertebraMeasurement:
    """What is measured on one vertebra; lengths in mm, RHLV and ratios as fractions
    (``ratios["anterior_posterior_z"]`` in SDs of healthy people: ``normative.ratio_z``)."""

    label: int
    original_mm: dict[str, float]
    pseudo_healthy_mm: dict[str, float]
    rhlv: dict[str, float]
    ratios: dict[str, float]
    loss_map_mm: np.ndarray  # (n_lr, n_ap); NaN outside the body
    loss_map_fraction: np.ndarray
    trabecular_hu: float | None = None
    density: str | None = None
    extra: dict = field(default_factory=dict)

    def features(self) -> dict[str, float]:
        """Grading features: RHLV per section and whole, the classical ratios, and the
        anterior/posterior ratio's z-score against the level's published normal."""
        return {
            **{f"rhlv_{k}": self.rhlv[k] for k in (*SECTIONS, "whole")},
            "ratio_anterior_posterior": self.ratios["anterior_posterior"],
            "ratio_middle_posterior": self.ratios["middle_posterior"],
            "ratio_anterior_posterior_z": self.ratios["anterior_posterior_z"],
        }


def height_loss_map(original_mm: np.ndarray, healthy_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column height loss (mm) and as a fraction of the healthy height; NaN off the body."""
    body = healthy_mm > 0
    loss = np.where(body, healthy_mm - original_mm, np.nan)
    frac = np.divide(loss, healthy_mm, out=np.full_like(loss, np.nan), where=body)
    return loss.astype(np.float32), frac.astype(np.float32)


def measure_vertebra(v: StraightVertebra, healthy: PseudoHealthy) -> VertebraMeasurement:
    """Heights of the real and pseudo-healthy body, RHLV, ratios, maps and density."""
    original = section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
    pseudo = section_heights(healthy.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
    rhlv = relative_height_loss(pseudo, original)
    ratios = {
        "anterior_posterior": original["anterior"] / original["posterior"],
        "middle_posterior": original["middle"] / original["posterior"],
    }
    ap0, ap1 = body_extent(v.heights_mm, v.grid.ap_mm, 1)  # heights_mm is (n_lr, n_ap)
    ratios["anterior_posterior_z"] = ratio_z(v.label, ratios["anterior_posterior"], abs(ap1 - ap0),
                                             original["posterior"])
    loss_mm, loss_frac = height_loss_map(v.heights_mm, healthy.heights_mm)
    hu = trabecular_hu(v.ct, v.body, v.grid.spacing_mm) if v.ct is not None else None
    return VertebraMeasurement(v.label, original, pseudo, rhlv, ratios, loss_mm, loss_frac, hu,
                               density_category(hu))
