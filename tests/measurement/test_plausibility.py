"""Bodies too tall to be one vertebra (healthivert/measurement/plausibility.py), on synthetic
straightened bodies with exact column heights (tests/geometry/builders.py)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.measurement.plausibility import MERGED_RATIO, body_height_mm, merged_suspects
from healthivert.normative import REFERENCE_HEIGHT_MM
from tests.geometry.builders import footprint, straight_box

LABELS = [18, 19, 20, 21, 22]  # T11 .. L3
SCALE = 0.7  # small bodies, so a merged pair fits the builders' 40 mm along SI


def _box(label: int, factor: float = 1.0, cut: tuple[str, ...] = ()):
    return straight_box(label, np.where(footprint(), factor * SCALE * REFERENCE_HEIGHT_MM[label], 0.0), cut_by_fov=cut)


def test_a_body_twice_its_levels_height_is_a_merged_suspect():
    boxes = [_box(lab, 2.0 if lab == 21 else 1.0) for lab in LABELS]
    assert body_height_mm(boxes[3]) == pytest.approx(2 * SCALE * REFERENCE_HEIGHT_MM[21])
    assert merged_suspects(boxes) == {21: pytest.approx(2.0)}


def test_a_normal_body_between_two_fractures_is_not_a_suspect():
    """L1 and L3 crushed to 55 % of their height: L2 is 1.8 times either, but the study's median
    is its own level-scaled height, so it is no suspect; nor are the natural level sizes."""
    factors = {18: 1.0, 19: 1.0, 20: 0.55, 21: 1.0, 22: 0.55}
    assert merged_suspects([_box(lab, factors[lab]) for lab in LABELS]) == {}
    assert merged_suspects([_box(lab) for lab in LABELS]) == {}


def test_too_few_bodies_or_a_cut_body_make_no_suspect():
    assert merged_suspects([_box(20), _box(21, 2.0)]) == {}
    boxes = [_box(lab, 2.0 if lab == 21 else 1.0, ("superior",) if lab == 21 else ()) for lab in LABELS]
    assert merged_suspects(boxes) == {}
    just_under = [_box(lab, 0.98 * MERGED_RATIO if lab == 21 else 1.0) for lab in LABELS]
    assert merged_suspects(just_under) == {}


def test_a_body_far_taller_than_its_level_is_a_suspect_however_few_or_merged_the_others():
    """Two lumbar bodies and their disc in one label read about twice their level's mean height:
    suspect with only one other body to compare, and when half the study's bodies are merged
    too (their median then hides them)."""
    assert merged_suspects([_box(18, 2.5 / SCALE), _box(19, 1.0 / SCALE)]) == {18: pytest.approx(2.5)}
    merged = [_box(lab, 1.8 / SCALE if lab in (18, 20) else 1.0 / SCALE) for lab in LABELS[:4]]
    assert set(merged_suspects(merged)) == {18, 20}
    assert merged_suspects([_box(lab, 1.25 / SCALE) for lab in LABELS]) == {}  # a tall patient
    assert merged_suspects([_box(lab, 1.9 / SCALE) for lab in LABELS]) == {}  # levels named too high


def test_a_section_far_taller_than_its_pseudo_healthy_height_is_named():
    from healthivert.measurement.plausibility import TALLER_LIMIT, taller_than_predicted

    assert taller_than_predicted({"anterior": 0.01, "middle": -0.34, "posterior": -0.61}) == ("posterior",
                                                                                            pytest.approx(0.61))
    assert taller_than_predicted({"anterior": 0.3, "middle": -0.1, "posterior": -(TALLER_LIMIT - 0.01)}) is None
    assert taller_than_predicted({"anterior": float("nan"), "middle": 0.0, "posterior": 0.0}) is None
