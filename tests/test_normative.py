"""Normative vertebral shape (healthivert/normative.py) and the phantom anatomy that follows it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthivert.normative import WEDGE_DEG, wedge_deg, wedge_drop_mm
from healthivert.phantom.anatomy import WEDGE_JITTER_DEG, vertebra_shape
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
    wedge within the jitter: T12 shorter in front, L5 taller."""
    rng = np.random.default_rng(0)
    for _ in range(20):
        shape = vertebra_shape(label, rng)
        h = true_section_heights(shape, None)
        # sections' centres are a third of the wall-to-edge extent apart
        extent = shape.depth / 2 - shape.posterior_wall
        angle = math.degrees(math.atan((h["posterior"] - h["anterior"]) / (2 / 3 * extent)))
        assert angle == pytest.approx(wedge_deg(label), abs=WEDGE_JITTER_DEG + 1.0)
