"""Normative vertebral shape (healthivert/normative.py) and the phantom anatomy that follows it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthivert.normative import APR_SD, WEDGE_DEG, ratio_z, wedge_deg, wedge_drop_mm, wedge_sd_deg
from healthivert.phantom.anatomy import WEDGE_SD_LIMIT, vertebra_shape
from healthivert.phantom.fracture import true_section_heights


def test_published_wedges_by_level():
    """The table's female/male means: kyphotic wedging to L2, L3 about square, L4-L5 lordotic."""
    assert wedge_deg(19) == pytest.approx((3.5 + 4.9) / 2)  # T12
    assert wedge_deg(24) == pytest.approx((-7.8 - 4.6) / 2)  # L5
    assert all(wedge_deg(label) > 0 for label in range(8, 22))
    assert abs(wedge_deg(22)) < 0.5 and wedge_deg(23) < 0 and wedge_deg(24) < wedge_deg(23)
    assert wedge_deg(28) == wedge_deg(19) and wedge_deg(25) == wedge_deg(24) and wedge_deg(3) == 0.0
    assert set(WEDGE_DEG) == {*range(8, 26), 28}


def test_wedge_drop_is_the_depth_times_the_tangent():
    assert wedge_drop_mm(24, 35.0) == pytest.approx(35.0 * math.tan(math.radians(-6.2)))
    assert wedge_drop_mm(22, 30.0) == pytest.approx(30.0 * math.tan(math.radians(0.1)))


@pytest.mark.parametrize("label", [16, 19, 20, 22, 24])
def test_phantom_bodies_take_their_levels_wedge(label):
    """A healthy phantom body's wall-to-wall height difference follows the level's published
    wedge, and varies between bodies by the published spread: T12 shorter in front, L5 taller."""
    rng = np.random.default_rng(0)
    measured, drawn, spreads = [], [], []
    for _ in range(200):
        shape = vertebra_shape(label, rng)
        h = true_section_heights(shape, None)
        # sections' centres are a third of the wall-to-edge extent apart
        extent = shape.depth / 2 - shape.posterior_wall
        measured.append(math.degrees(math.atan((h["posterior"] - h["anterior"]) / (2 / 3 * extent))))
        # the wall-to-wall drop is depth * tan(wedge) (anatomy.vertebra_shape)
        drawn.append(math.degrees(math.atan(shape.natural_wedge * shape.height * extent / shape.depth ** 2)))
        spreads.append(wedge_sd_deg(label, shape.depth, shape.height))
    sd = float(np.mean(spreads))
    assert 2.0 < sd < 4.0  # an APR SD of 0.06-0.08 on a body 1.3 times as deep as tall
    assert np.mean(measured) == pytest.approx(wedge_deg(label), abs=1.0)
    assert np.mean(drawn) == pytest.approx(wedge_deg(label), abs=0.5)
    # a normal clipped at WEDGE_SD_LIMIT SDs (clipped at 2, a normal keeps 96 % of its SD)
    assert np.std(drawn) == pytest.approx(0.96 * sd, rel=0.15)
    assert np.max(np.abs(np.subtract(drawn, wedge_deg(label)))) <= WEDGE_SD_LIMIT * max(spreads) + 1e-6


def test_published_ratio_spread_by_level():
    """The APR's SD as published at T10-L2; the nearest tabulated level's elsewhere."""
    assert [APR_SD[label] for label in range(17, 22)] == [0.08, 0.08, 0.06, 0.06, 0.07]
    assert APR_SD[8] == APR_SD[16] == 0.08 and APR_SD[24] == APR_SD[25] == 0.07 and APR_SD[28] == 0.06
    assert set(APR_SD) == set(WEDGE_DEG)


def test_ratio_z_against_the_levels_norm():
    """A body shaped as its level's norm scores 0; one whose walls' ratio is one published SD
    lower scores -1 (its thirds' ratio drops by two thirds of that); L5's natural anterior
    height is no loss; a cervical level has no norm."""
    depth, posterior = 30.0, 24.0
    for label in (17, 19, 21, 24):
        normal = 1 - 2 / 3 * wedge_drop_mm(label, depth) / posterior
        assert ratio_z(label, normal, depth, posterior) == pytest.approx(0.0)
        assert ratio_z(label, normal - 2 / 3 * APR_SD[label], depth, posterior) == pytest.approx(-1.0)
    assert ratio_z(24, 1.0, depth, posterior) < -1.5  # a square L5 is short in front
    assert ratio_z(19, 1.0, depth, posterior) > 1.0  # a square T12 is tall in front
    assert math.isnan(ratio_z(5, 1.0, depth, posterior)) and math.isnan(ratio_z(19, 1.0, 0.0, posterior))
