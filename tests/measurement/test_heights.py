"""Per-vertebra measurements (healthivert/measurement/heights.py) on synthetic bodies."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.grading import FEATURES
from healthivert.measurement.heights import height_loss_map, measure_vertebra
from healthivert.sections import SECTIONS
from healthivert.synthesis.base import PseudoHealthy
from tests.geometry.builders import ap_wedge, straight_box

NAN = np.nan


@pytest.mark.parametrize(
    "original, healthy, loss_mm, loss_fraction",
    [
        ([[20.0, 15.0]], [[20.0, 20.0]], [[0.0, 5.0]], [[0.0, 0.25]]),  # loss is positive
        ([[22.0]], [[20.0]], [[-2.0]], [[-0.1]]),  # taller than healthy: negative
        ([[0.0, 10.0]], [[20.0, 0.0]], [[20.0, NAN]], [[1.0, NAN]]),  # no healthy column: NaN
        ([[0.0]], [[0.0]], [[NAN]], [[NAN]]),  # off the body: NaN
    ],
)
def test_height_loss_map(original, healthy, loss_mm, loss_fraction):
    mm, fraction = height_loss_map(np.array(original), np.array(healthy))
    assert mm.dtype == fraction.dtype == np.float32
    np.testing.assert_allclose(mm, loss_mm, equal_nan=True, rtol=1e-6)
    np.testing.assert_allclose(fraction, loss_fraction, equal_nan=True, rtol=1e-6)


def _measure(original: np.ndarray | float, healthy: float):
    v = straight_box(20, original)
    ph = straight_box(20, healthy)
    return v, measure_vertebra(v, PseudoHealthy(ph.heights_mm, ph.body, "neighbours", [19, 21]))


def test_measure_a_wedge_against_a_box():
    """Anterior 15 mm, posterior 25 mm against a 25 mm healthy box (1 mm grid, see builders)."""
    v, m = _measure(ap_wedge(anterior_mm=15.0, posterior_mm=25.0), healthy=25.0)
    assert m.label == 20
    assert m.pseudo_healthy_mm == pytest.approx(dict.fromkeys(SECTIONS, 25.0))
    # h(ap) = 25 - (ap + 15) / 3 on AP -15..15; thirds [-15, -5), [-5, 5), [5, 15] less the outer
    # ring average to AP -10, -0.5 and 9.5: 70/3, 121/6 and 101/6 mm
    assert m.original_mm == pytest.approx({"anterior": 101 / 6, "middle": 121 / 6, "posterior": 70 / 3}, abs=1e-5)
    assert m.rhlv == pytest.approx(
        {"anterior": 49 / 150, "middle": 29 / 150, "posterior": 1 / 15, "whole": 44 / 225}, abs=1e-6)
    # L1's published wedge (3.35 degrees) over the 30 mm extent, its APR SD 0.06: the thirds'
    # normal ratio 1 - 2/3 * 30 tan(3.35) / (70/3) = 0.9498, their SD 0.04; z = -5.71
    assert m.ratios == pytest.approx({"anterior_posterior": 101 / 140, "middle_posterior": 121 / 140,
                                      "anterior_posterior_z": -5.710}, abs=1e-3)
    assert list(m.features()) == list(FEATURES)
    assert m.features()["rhlv_anterior"] == pytest.approx(49 / 150, abs=1e-6)
    # the maps: NaN off the body, the per-column loss on it
    body = v.heights_mm > 0
    assert np.isnan(m.loss_map_mm[~body]).all() and np.isfinite(m.loss_map_mm[body]).all()
    np.testing.assert_allclose(m.loss_map_mm[body], 25.0 - v.heights_mm[body], atol=1e-5)
    np.testing.assert_allclose(m.loss_map_fraction[body], (25.0 - v.heights_mm[body]) / 25.0, atol=1e-6)
    assert m.trabecular_hu is None and m.density is None  # no CT


def test_measure_with_ct_fills_density():
    v = straight_box(20, 25.0)
    ct = np.where(v.body, 150.0, -50.0).astype(np.float32)
    v = straight_box(20, 25.0, ct=ct)
    m = measure_vertebra(v, PseudoHealthy(v.heights_mm, v.body, "neighbours", [19]))
    assert m.trabecular_hu == pytest.approx(150.0)
    assert m.density == "indeterminate"
    assert m.rhlv == pytest.approx(dict.fromkeys((*SECTIONS, "whole"), 0.0), abs=1e-9)
