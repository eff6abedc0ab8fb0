"""Straightening and body isolation on a curved phantom spine with known heights (slow).

The phantom's truth heights come from its analytic bodies by the same section definition
(healthivert/sections.py), so the measured heights can be compared directly.
"""

from __future__ import annotations

from functools import cache

import pytest

from healthivert.geometry.straighten import straighten_label
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import load_mask, write_volume
from healthivert.phantom import make_phantom
from healthivert.sections import SECTIONS, section_heights
from tests.geometry.builders import (
    RESAMPLED_CFG,
    SEED,
    fractured_analysis,
    fractured_study,
    truth_by_label,
)

pytestmark = pytest.mark.slow


def _measured(vertebrae) -> dict[int, dict[str, float]]:
    return {v.label: section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm) for v in vertebrae}


@cache
def _fractured_heights() -> dict[int, dict[str, float]]:
    return _measured(fractured_analysis().vertebrae)


def test_phantom_spine_is_curved():
    """The check below is only worth something if the spine bends between its vertebrae."""
    axes = [v["axes"]["si"] for v in fractured_study().truth["vertebrae"]]
    tilt = max(sum(a * b for a, b in zip(axes[0], other)) for other in axes[1:])
    assert tilt < 0.9995  # at least ~2 degrees between the top and some other vertebra


def test_straightened_heights_match_truth_within_1_mm():
    truth = truth_by_label(fractured_study())
    measured = _fractured_heights()
    assert sorted(measured) == sorted(truth)
    for label, heights in measured.items():
        expected = truth[label]["fractured_heights_mm"]
        for s in SECTIONS:
            assert heights[s] == pytest.approx(expected[s], abs=1.0), (truth[label]["name"], s, heights, expected)


def test_same_heights_from_another_orientation_and_voxel_size(tmp_path):
    """The same anatomy sampled at 1 x 1 x 1.25 mm and written PIR (vs 0.8 x 0.8 x 1 mm, LPS)."""
    other = make_phantom(RESAMPLED_CFG, SEED)
    assert other.truth["vertebrae"][2]["fractured_heights_mm"] == fractured_study().truth["vertebrae"][2][
        "fractured_heights_mm"]
    path = write_volume(other.mask, tmp_path / "mask_pir.nii.gz")
    mask = load_mask(path)
    assert mask.source.orientation == "PIR"
    assert tuple(mask.source.spacing) == pytest.approx((1.0, 1.25, 1.0))  # P, I, R axes: SI is the second
    _, vertebrae = straighten_vertebrae(mask, centroids_from_mask(mask))
    measured, reference = _measured(vertebrae), _fractured_heights()
    assert sorted(measured) == sorted(reference)
    for label in reference:
        for s in SECTIONS:
            assert measured[label][s] == pytest.approx(reference[label][s], abs=0.3), (label, s)


def test_isolated_body_matches_the_phantom_body_mask():
    """Dice of the isolated body against the phantom's body-only label, on the same grid."""
    study = fractured_study()
    for v in fractured_analysis().vertebrae:
        truth_body = straighten_label(study.body_mask, v.label, v.grid) >= 0.5
        dice = 2 * (truth_body & v.body).sum() / (truth_body.sum() + v.body.sum())
        assert dice >= 0.95, (v.label, dice)


def test_no_vertebra_of_the_phantom_is_cut_by_the_field_of_view():
    assert all(v.cut_by_fov == [] for v in fractured_analysis().vertebrae)
