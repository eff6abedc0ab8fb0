"""A phantom's truth.json agrees with its own mask: section heights, grades and fractures."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.geometry.frames import sample_label_in_frame
from healthivert.io import load_mask, read_centroids
from healthivert.labels import verse_label
from healthivert.sections import SECTIONS, genant_grade_from_loss, section_heights

STEP_MM = 0.5


def measured_section_heights(mask, vertebra: dict) -> dict[str, float]:
    """Section heights of one vertebra measured in its true local frame, from a voxel mask."""
    axes = np.stack([vertebra["axes"][k] for k in ("lr", "ap", "si")], axis=1)
    size = vertebra["body_size_mm"]
    extent = np.array([size["width"] + 8, size["depth"] + 8, size["height"] + 12])
    shape = tuple(int(2 * np.ceil(e / 2 / STEP_MM)) + 1 for e in extent)  # odd: a sample on the centre
    inside = sample_label_in_frame(mask, vertebra["label"], np.array(vertebra["body_centre_mm"]), axes,
                                   shape, STEP_MM)
    lr_mm, ap_mm = ((np.arange(n) - (n - 1) / 2) * STEP_MM for n in shape[:2])
    # the vertebra mask also holds the posterior elements; only the body in front of its wall counts
    inside[:, ap_mm < vertebra["posterior_wall_mm"] - 0.25, :] = False
    heights = inside.sum(axis=2).T * STEP_MM  # (ap, lr) column heights along the local SI axis
    return section_heights(heights, ap_mm, lr_mm)


@pytest.mark.parametrize("part", ["mask", "body_mask"])
def test_truth_heights_match_the_mask(any_phantom, part):
    # Slices here are <= 1.25 mm: thick slices quantise endplates by +-slice/2, and 1 mm would not hold.
    assert max(any_phantom.truth["spacing_mm"]) <= 1.25
    mask = load_mask(any_phantom.paths[part])
    for vertebra in any_phantom.truth["vertebrae"]:
        measured = measured_section_heights(mask, vertebra)
        truth = vertebra["fractured_heights_mm"]
        for s in SECTIONS:
            assert abs(measured[s] - truth[s]) <= 1.0, (vertebra["name"], s, measured[s], truth[s])


def test_truth_grades_follow_the_worst_section(any_phantom):
    for v in any_phantom.truth["vertebrae"]:
        rhlv = v["rhlv"]
        assert v["genant_grade"] == genant_grade_from_loss(max(rhlv[s] for s in SECTIONS)), v["name"]
        for s in SECTIONS:
            h, f = v["healthy_heights_mm"][s], v["fractured_heights_mm"][s]
            assert rhlv[s] == pytest.approx((h - f) / h, abs=2e-4)
        assert v["in_mask"] is True


def test_requested_fractures_appear_with_grade_and_morphology(fractured_phantom):
    by_label = {v["label"]: v for v in fractured_phantom.truth["vertebrae"]}
    assert sorted(by_label) == [19, 20, 21]
    requested = {verse_label(f.vertebra): f for f in fractured_phantom.cfg.fractures}
    for label, spec in requested.items():
        assert by_label[label]["genant_grade"] == spec.grade
        assert by_label[label]["morphology"] == spec.morphology
    assert {by_label[lab]["morphology"] for lab in requested} == {"wedge", "crush", "biconcave"}
    # a wedge loses height anteriorly, a crush evenly, a biconcave body most in the middle
    wedge, crush, bicon = (by_label[lab]["rhlv"] for lab in (19, 20, 21))
    assert wedge["anterior"] > wedge["middle"] > wedge["posterior"]
    assert crush["anterior"] == pytest.approx(crush["posterior"], abs=0.02)
    assert bicon["middle"] > bicon["anterior"] and bicon["middle"] > bicon["posterior"]


def test_unrequested_vertebrae_are_not_fractured(tmp_path):
    from healthivert.phantom import FractureSpec, PhantomConfig, make_phantom

    cfg = PhantomConfig(top="T12", bottom="L1", slice_mm=2.0, fractures=(FractureSpec("L1", 3, "wedge"),),
                        deformity_rate=1.0)
    truth = make_phantom(cfg, seed=2).truth
    t12, l1 = truth["vertebrae"]
    assert (l1["genant_grade"], l1["morphology"]) == (3, "wedge")
    assert t12["genant_grade"] == 0
    # deformity_rate 1: a sub-threshold (< 20 %) deformity, still grade 0
    assert 0 < max(t12["rhlv"][s] for s in SECTIONS) < 0.2


def test_truth_centroids_match_the_written_centroid_file(any_phantom):
    mask = load_mask(any_phantom.paths["mask"])
    body = load_mask(any_phantom.paths["body_mask"])
    centroids = read_centroids(any_phantom.paths["centroids"], reference=mask)
    for v in any_phantom.truth["vertebrae"]:
        np.testing.assert_allclose(centroids[v["label"]], v["centroid_mm"], atol=0.01)
        # the body centre lies inside that vertebra's body
        ijk = np.round(body.world_to_voxel(np.array(v["body_centre_mm"]))).astype(int)
        assert body.array[tuple(ijk)] == v["label"]
