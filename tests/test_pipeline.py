"""The single-study pipeline (healthivert/pipeline.py) on box-shaped spines with exact answers.

Boxes on a 1 mm grid measure exactly their voxel counts (tests/geometry/test_straighten.py),
and bodies whose heights follow the prior's population ratios are their own pseudo-healthy
versions (tests/synthesis/test_prior.py), so RHLV and grades are known in advance.
"""

from __future__ import annotations

import pytest

from healthivert import pipeline
from healthivert.evaluation import reason_group
from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.normative import REFERENCE_HEIGHT_MM
from healthivert.pipeline import BOUND_STATUS, CERVICAL_STATUS, analyse_study, grade_records, thick_slice_note
from healthivert.sections import SECTIONS
from healthivert.segmentation import infer
from tests.geometry.builders import box_mask

FOOT = (slice(10, 40), slice(10, 40))


def _spine(heights: dict[int, int], gap: int = 6, top_margin: int = 7) -> object:
    """Boxes stacked cranial (first) to caudal, ``gap`` voxels apart."""
    boxes, z = {}, 5
    for label in reversed(list(heights)):
        boxes[label] = (*FOOT, slice(z, z + heights[label]))
        z += heights[label] + gap
    return box_mask(boxes, (50, 50, z - gap + top_margin))


def _analyse(mask, computed=()):
    analysis = analyse_study(mask, centroids_from_mask(mask), computed_centroids=computed)
    grade_records(analysis, get_grader("rule"))
    return analysis, {r.label: r.to_json() for r in analysis.records}  # as result.json has them


def test_box_spine_with_a_collapsed_l1():
    """T12 23 mm, L2 25 mm (the population ratio 23.0 : 25.0) and L1 17 mm where 24.3 is
    expected: RHLV (24.3 - 17) / 24.3 = 30 % in every section, Genant grade 2. (Boxes have no
    natural wedge; re-wedged to their neighbours' levels the pseudo-healthy sections tilt by a
    few tenths of a mm around the same mean.)"""
    assert (REFERENCE_HEIGHT_MM[19], REFERENCE_HEIGHT_MM[20], REFERENCE_HEIGHT_MM[21]) == (23.0, 24.3, 25.0)
    analysis, records = _analyse(_spine({19: 23, 20: 17, 21: 25}), computed=[21])
    assert [r.name for r in analysis.records] == ["T12", "L1", "L2"]
    loss = (24.3 - 17.0) / 24.3
    expected = {19: (23.0, 0.0, 0), 20: (24.3, loss, 2), 21: (25.0, 0.0, 0)}
    for label, (healthy, rhlv, grade) in expected.items():
        r = records[label]
        assert r["status"] == "graded"
        assert r["genant_grade"] == grade
        ph = r["heights_mm"]["pseudo_healthy"]
        assert sum(ph.values()) / 3 == pytest.approx(healthy, abs=0.05)
        assert ph == pytest.approx(dict.fromkeys(SECTIONS, healthy), abs=0.6)
        assert r["rhlv"] == pytest.approx(dict.fromkeys((*SECTIONS, "whole"), rhlv), abs=0.025)
        assert r["rhlv"]["whole"] == pytest.approx(rhlv, abs=0.005)
        assert sum(r["probabilities"].values()) == pytest.approx(1.0)
        assert r["grader"] == "rule" and r["synthesizer"] == "prior"
        assert r["trabecular_hu"] is None and r["bone_density"] is None
    assert records[20]["heights_mm"]["original"] == pytest.approx(dict.fromkeys(SECTIONS, 17.0), abs=0.02)
    assert records[20]["pseudo_healthy_from"] == ["T12", "L2"]
    # the centroid said to be computed is noted, the others are not
    assert records[21]["notes"] == ["centroid computed from the mask"]
    assert "notes" not in records[19] and "notes" not in records[20]
    assert set(analysis.timings) == {"straighten", "synthesize", "measure"}


def test_vertebra_cut_by_the_field_of_view_is_not_graded():
    mask = _spine({19: 23, 20: 24, 21: 25}, top_margin=0)  # T12 runs into the top of the image
    analysis, records = _analyse(mask)
    assert records[19]["genant_grade"] is None
    assert records[19]["status"] == "not graded: cut by the field of view (at the superior edge)"
    assert "rhlv" not in records[19] and 19 not in analysis.measured
    assert "probabilities" not in records[19]
    # the others are graded, and the cut one does not inform L1's pseudo-healthy body
    assert records[20]["genant_grade"] == 0 and records[21]["genant_grade"] == 0
    assert records[20]["pseudo_healthy_from"] == ["L2"]


def test_cervical_vertebrae_are_not_graded_nor_a_thoracic_ones_reference():
    """C7 has no normative height beside T1's: taken as T1's neighbour it scaled C7's heights
    by 14.5 and made T1 91 % short (grade 3), and T1, restored to that, did the same to T2.
    Cervical vertebrae are now neither graded nor any vertebra's reference."""
    analysis, records = _analyse(_spine({6: 12, 7: 14, 8: 15, 9: 16, 10: 17}, gap=4))
    for label in (6, 7):
        assert records[label]["status"] == CERVICAL_STATUS and "rhlv" not in records[label]
        assert label not in analysis.measured and label not in analysis.healthy
    assert records[8]["pseudo_healthy_from"] == ["T2", "T3"]
    assert all(records[label]["genant_grade"] == 0 for label in (8, 9, 10)), records
    assert abs(records[8]["rhlv"]["whole"]) < 0.05


def _domed_top(heights: dict[int, int]):
    """A box spine whose top vertebra reaches the image's top edge with a 10 x 10 mm dome only:
    the label touches the face (a ninth of its cross-section) without being cut across, and
    the edge cuts short the columns of its middle section."""
    mask = _spine(heights, top_margin=1)
    mask.array[20:30, 20:30, -1] = next(iter(heights))
    return mask


def test_a_body_the_edge_cuts_short_is_normal_by_lower_bounds():
    """T12 23 mm (its dome 24, its flat top 1 mm from the edge) next to L1 and L2 of normal
    height: the edge could only have shortened its columns, and even so no section is 20 % short: graded 0 by the Genant
    rule, said so, and measured like the others."""
    analysis, records = _analyse(_domed_top({19: 23, 20: 24, 21: 25}))
    t12 = records[19]
    assert t12["status"].startswith(BOUND_STATUS)
    assert "the anterior, middle and posterior sections run into the superior edge" in t12["status"]
    assert t12["genant_grade"] == 0 and t12["grader"] == "rule"
    assert t12["heights_mm"]["original"]["anterior"] == pytest.approx(23.0, abs=0.05)
    assert max(t12["rhlv"][s] for s in SECTIONS) < 0.2
    assert 19 in analysis.bounded and 19 not in analysis.measured  # never a grader's feature row
    assert records[20]["pseudo_healthy_from"] == ["L2"]  # nor anyone's reference


def test_a_short_body_the_edge_cuts_short_stays_refused():
    """The same T12 at 17 mm: 26 % short where the edge may have hidden more, or less: the
    bound decides nothing and the vertebra is not graded."""
    analysis, records = _analyse(_domed_top({19: 17, 20: 24, 21: 25}))
    assert records[19]["status"] == "not graded: cut by the field of view (at the superior edge)"
    assert records[19]["genant_grade"] is None and "rhlv" not in records[19]
    assert analysis.bounded == {}


def test_single_vertebra_is_graded_from_intra_vertebral_ratios():
    mask = box_mask({20: (*FOOT, slice(5, 29))}, (50, 50, 34))
    analysis, records = _analyse(mask)
    record = records[20]
    assert record["status"] == "graded from intra-vertebral ratios: no neighbouring vertebra in view"
    assert record["genant_grade"] == 0
    # healthy = its posterior height with a normal L1's wedge: the box's square front is taller
    rhlv = record["rhlv"]
    assert rhlv["posterior"] == pytest.approx(0.0, abs=0.005)
    assert rhlv["anterior"] < rhlv["middle"] < rhlv["posterior"] and rhlv["anterior"] > -0.1
    assert analysis.healthy[20].method == "intra-vertebral ratios"


def test_grade_records_with_nothing_measured_only_names_the_grader():
    mask = _spine({19: 23, 20: 24}, top_margin=0)
    mask.array[mask.array == 20] = 0  # T12 alone, and cut
    analysis = analyse_study(mask, centroids_from_mask(mask))
    grade_records(analysis, get_grader("rule"))
    (record,) = analysis.records
    assert record.genant_grade is None and record.grader == "rule"
    assert analysis.measured == {} and "probabilities" not in record.to_json()


@pytest.mark.parametrize(
    "l3_mm, why",
    [
        (52, "its body is 2.0 times the height expected at its level (the study's other bodies, or the "
             "level's mean): two vertebrae in one label? check the mask"),
        (37, "% taller than its pseudo-healthy height: a piece of the next bone in its label? check the mask"),
    ],
    ids=["two vertebrae in one label", "a piece of the next bone"],
)
def test_a_label_far_too_tall_is_not_graded_nor_anyones_reference(l3_mm, why):
    """L3's label holds two bodies and the disc between them (52 mm where 25.5 is expected, as a
    segmenter that fills a disc gives), or a piece of the next bone (37 mm: 1.45 times, below
    the merged-label check): it is not graded, the record says why, and L2 and L4 are graded
    from their other neighbours, as normal."""
    analysis, records = _analyse(_spine({19: 23, 20: 24, 21: 25, 22: l3_mm, 23: 26}))
    assert records[22]["status"].startswith("not graded: its ") and why in records[22]["status"]
    assert records[22]["genant_grade"] is None and 22 not in analysis.measured
    for label in (19, 20, 21, 23):
        assert records[label]["status"] == "graded" and records[label]["genant_grade"] == 0
        assert "L3" not in records[label]["pseudo_healthy_from"]


def test_thick_slices_along_the_spine_make_a_note():
    """5 mm voxels along S (the axis nearest S when the grid is permuted) make a note; 3 mm do not."""
    boxes = {20: (slice(2, 8), slice(2, 8), slice(2, 6))}
    assert thick_slice_note(box_mask(boxes, (10, 10, 10), spacing_mm=(1.0, 1.0, 3.0))) is None
    note = thick_slice_note(box_mask(boxes, (10, 10, 10), spacing_mm=(1.0, 1.0, 5.0)))
    assert note is not None and "5.0 mm along the spine" in note
    assert thick_slice_note(box_mask(boxes, (10, 10, 10), spacing_mm=(5.0, 1.0, 1.0))) is None  # 5 mm left-right
    permuted = box_mask(boxes, (10, 10, 10))
    permuted.affine[:3, :3] = [[0, 0, 1.0], [0, 1.0, 0], [5.0, 0, 0]]  # array axis 0 runs along S, 5 mm
    assert "5.0 mm" in thick_slice_note(permuted)


def test_vertebrae_beside_a_guessed_boundary_are_not_graded_nor_a_reference():
    """The segmenter split L2 from L3 where it expected a disc it did not see: neither is
    graded, neither informs another's pseudo-healthy body (L4 takes L5 alone, L1 its own walls)."""
    mask = _spine({20: 24, 21: 25, 22: 25, 23: 26, 24: 26}, gap=4)
    analysis = analyse_study(mask, centroids_from_mask(mask), guessed={21, 22})
    grade_records(analysis, get_grader("rule"))
    records = {r.label: r.to_json() for r in analysis.records}
    guess = "not graded: boundary guessed by the segmenter (no disc seen between it and {})"
    assert records[21]["status"].startswith(guess.format("L3"))
    assert records[22]["status"].startswith(guess.format("L2"))
    assert reason_group(records[21]["status"]) == "boundary guessed by the segmenter"
    assert 21 not in analysis.measured and 22 not in analysis.measured and "rhlv" not in records[21]
    assert records[23]["pseudo_healthy_from"] == ["L5"] and records[23]["genant_grade"] == 0
    assert records[20]["status"].startswith("graded from intra-vertebral ratios")


def test_a_vertebra_that_may_hold_two_is_not_graded_nor_a_reference():
    """The segmenter counted past L2 from one anchor though L2 was long enough for two: L2 is not
    graded and informs no neighbour's pseudo-healthy body."""
    mask = _spine({20: 24, 21: 25, 22: 25, 23: 26, 24: 26}, gap=4)
    analysis = analyse_study(mask, centroids_from_mask(mask), doubtful={21})
    grade_records(analysis, get_grader("rule"))
    records = {r.label: r.to_json() for r in analysis.records}
    assert records[21]["status"] == pipeline.DOUBTFUL_STATUS and 21 not in analysis.measured
    assert reason_group(records[21]["status"]) == "long enough to hold two vertebrae"
    for label in (20, 22, 23, 24):
        assert "L2" not in records[label]["pseudo_healthy_from"] and records[label]["genant_grade"] == 0


def test_the_guessed_boundaries_of_a_segmented_ct_follow_a_relabel(monkeypatch):
    """The segmenter's guessed boundaries reach result.json's labels by name, shifted with the
    labels when --first-label moves them, and back to VerSe labels for the analysis."""
    mask = _spine({21: 25, 22: 25, 23: 26}, gap=4)
    seg = infer.Segmentation(mask, "none: labels guessed", [], guessed=(22, 23), doubtful=(21,))
    monkeypatch.setattr(pipeline, "segment_study", lambda ct, weights=None: seg)
    ct = mask.with_array(mask.array.astype("float32"))
    monkeypatch.setattr(pipeline, "load_ct", lambda path: ct)
    labels = pipeline.load_inputs(None, "ct.nii.gz", None).labels
    assert labels["guessed"] == ["L3", "L4"] and pipeline.guessed_labels(labels) == {22, 23}
    assert labels["doubtful"] == ["L2"] and pipeline.doubtful_labels(labels) == {21}
    shifted = pipeline.load_inputs(None, "ct.nii.gz", None, first_label="T12").labels
    assert shifted["guessed"] == ["L1", "L2"] and shifted["shift"] == -2 and shifted["doubtful"] == ["T12"]
