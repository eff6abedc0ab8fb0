"""Height calibration of the HealthiVert-GAN: one affine map of its pseudo-healthy column
heights (mm), ``scale * h + offset_mm``, fitted on healthy vertebrae it did not train on.

Why: the grade is a 5-point band of relative height loss, so a systematic error of 0.3 mm on
a 25 mm body moves a grade-0 vertebra with a small deformity into grade 1. The GAN's errors
on healthy bodies are systematic and grow with the body's height (lumbar bodies read taller,
upper thoracic ones shorter); an affine map fitted on healthy vertebrae whose real heights
are known removes that part and leaves the network unchanged. The fit is a robust linear
regression (scikit-learn's Huber loss) of the real section heights on the GAN's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.linear_model import HuberRegressor

from healthivert.errors import InputError

MIN_PAIRS = 15  # five vertebrae, three sections each


@dataclass(frozen=True)
class HeightCalibration:
    """``scale * h + offset_mm`` on every column height h > 0 (mm); the identity by default."""

    scale: float = 1.0
    offset_mm: float = 0.0

    def apply(self, heights_mm: np.ndarray) -> np.ndarray:
        """Calibrated column heights (mm); columns without body (0) stay 0, none turns negative."""
        h = np.asarray(heights_mm, dtype=np.float32)
        return np.where(h > 0, np.maximum(self.scale * h + self.offset_mm, 0.0), 0.0).astype(np.float32)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> HeightCalibration:
        return cls(float(data["scale"]), float(data["offset_mm"]))


def fit_height_calibration(estimated_mm: np.ndarray, real_mm: np.ndarray) -> HeightCalibration:
    """Robust affine fit real ~ scale * estimated + offset over paired section heights (mm) of
    healthy vertebrae; pairs with a NaN are dropped. Fewer than ``MIN_PAIRS`` is an InputError."""
    est, real = np.asarray(estimated_mm, float).ravel(), np.asarray(real_mm, float).ravel()
    keep = np.isfinite(est) & np.isfinite(real) & (est > 0)
    if keep.sum() < MIN_PAIRS:
        raise InputError(f"height calibration needs >= {MIN_PAIRS} healthy section heights; got {int(keep.sum())}")
    fit = HuberRegressor(alpha=0.0).fit(est[keep, None], real[keep])
    return HeightCalibration(float(fit.coef_[0]), float(fit.intercept_))
