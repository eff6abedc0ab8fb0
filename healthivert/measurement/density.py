"""Trabecular bone density: mean HU inside the vertebral body, cortex excluded."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: erosion depth (mm) that leaves the cortical shell and endplates out
CORTEX_MARGIN_MM = 3.0
#: L1 trabecular attenuation thresholds (HU) for opportunistic osteoporosis screening
#: (Pickhardt et al., Ann Intern Med 2013: <= 110 HU specific, > 160 HU normal).
LOW_DENSITY_HU = 110.0
NORMAL_DENSITY_HU = 160.0


def trabecular_hu(ct: np.ndarray, body: np.ndarray, spacing_mm: tuple[float, float, float]) -> float | None:
    """Mean HU of the body eroded by ``CORTEX_MARGIN_MM``; None when too little is left."""
    depth = ndimage.distance_transform_edt(np.pad(body, 1), sampling=spacing_mm)[1:-1, 1:-1, 1:-1]
    core = depth > CORTEX_MARGIN_MM
    if core.sum() * float(np.prod(spacing_mm)) < 100.0:  # under 0.1 ml: not a measurement
        return None
    return float(ct[core].mean())


def density_category(hu: float | None) -> str | None:
    """"low" (<= 110 HU), "indeterminate" or "normal" (> 160 HU); None without a value."""
    if hu is None:
        return None
    if hu <= LOW_DENSITY_HU:
        return "low"
    return "normal" if hu > NORMAL_DENSITY_HU else "indeterminate"
