"""Trabecular bone density (healthivert/measurement/density.py)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.measurement.density import (
    CORTEX_MARGIN_MM,
    LOW_DENSITY_HU,
    NORMAL_DENSITY_HU,
    density_category,
    trabecular_hu,
)
from tests.geometry.builders import fractured_analysis, fractured_study, truth_by_label


@pytest.mark.parametrize("spacing_mm", [(1.0, 1.0, 0.5), (0.5, 0.5, 0.5), (1.0, 1.0, 1.0)])
def test_trabecular_hu_leaves_the_cortex_out(spacing_mm):
    """A 30 x 30 x 24 mm body: a 1000 HU shell within CORTEX_MARGIN_MM of its surface, 150 HU inside."""
    shape = tuple(int(round(n / s)) for n, s in zip((40, 40, 34), spacing_mm))
    body = np.zeros(shape, bool)
    lo = [int(round(5 / s)) for s in spacing_mm]
    hi = [int(round(n / s)) - k for n, s, k in zip((40, 40, 34), spacing_mm, lo)]
    body[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]] = True
    margin = [int(np.ceil(CORTEX_MARGIN_MM / s)) for s in spacing_mm]
    core = np.zeros_like(body)
    core[lo[0] + margin[0]:hi[0] - margin[0], lo[1] + margin[1]:hi[1] - margin[1],
         lo[2] + margin[2]:hi[2] - margin[2]] = True
    ct = np.where(core, 150.0, np.where(body, 1000.0, -1000.0))
    assert trabecular_hu(ct, body, spacing_mm) == pytest.approx(150.0)


def test_trabecular_hu_needs_a_core():
    body = np.zeros((20, 20, 20), bool)
    body[5:12, 5:12, 5:12] = True  # 7 mm across: nothing 3 mm inside the surface
    assert trabecular_hu(np.full(body.shape, 100.0), body, (1.0, 1.0, 1.0)) is None


@pytest.mark.parametrize(
    "hu, category",
    [(None, None), (-50.0, "low"), (LOW_DENSITY_HU, "low"), (110.01, "indeterminate"), (135.0, "indeterminate"),
     (NORMAL_DENSITY_HU, "indeterminate"), (160.01, "normal"), (400.0, "normal")],
)
def test_density_category(hu, category):
    assert (LOW_DENSITY_HU, NORMAL_DENSITY_HU) == (110.0, 160.0)
    assert density_category(hu) == category


@pytest.mark.slow
def test_trabecular_hu_on_the_phantom_ct():
    """The phantom paints each body's trabecular bone at a known HU, then adds cortex, texture,
    blur (0.6 mm) and 20 HU noise; averaged over the eroded body, the measurement lands within
    ~8 HU of truth on this study (crushed bodies, denser at their collapsed endplates, are the
    worst). 20 HU is the tolerance: a fifth of the 110-160 HU band that sets the category."""
    truth = truth_by_label(fractured_study())
    for label, m in fractured_analysis().measured.items():
        assert m.trabecular_hu == pytest.approx(truth[label]["trabecular_hu"], abs=20.0), label
        assert m.density == density_category(m.trabecular_hu)
