"""The segmentation benchmark's scores (benchmarks/segmentation.py) on small label maps with
known answers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.segmentation import annotated_bone_dice, bone_dice, same_label_dice


def test_a_vertebra_the_experts_left_unlabelled_is_left_out_of_the_secondary_dice():
    """Truth: L1 and L2 (10 voxels each). The prediction finds both, L2 one voxel short, and the
    T12 above, cut by the view's edge, that the experts did not annotate (10 voxels, none on
    their bone)."""
    truth = np.zeros(40, np.uint8)
    truth[10:20], truth[20:30] = 20, 21
    pred = np.zeros(40, np.uint8)
    pred[0:10], pred[10:20], pred[20:29] = 19, 20, 21
    assert bone_dice(pred, truth) == pytest.approx(2 * 19 / (29 + 20))
    assert annotated_bone_dice(pred, truth) == pytest.approx(2 * 19 / (19 + 20))


def test_an_unannotated_vertebra_inside_the_view_stays_false_bone():
    """A predicted vertebra the experts did not annotate that the view does not cut (an extra
    label between the image's faces) is no cut neighbour: both readings count it."""
    truth = np.zeros(40, np.uint8)
    truth[10:20], truth[20:30] = 20, 21
    pred = np.zeros(40, np.uint8)
    pred[2:10], pred[10:20], pred[20:30] = 19, 20, 21
    assert annotated_bone_dice(pred, truth) == pytest.approx(bone_dice(pred, truth)) == pytest.approx(2 * 20 / 48)


def test_a_vertebra_mostly_on_the_experts_bone_is_kept():
    """A predicted L2 that spills 4 of its 10 voxels past the experts' outline is theirs: kept,
    its spill counted as false bone; a sacrum label is no vertebra either way."""
    truth = np.zeros(40, np.uint8)
    truth[10:20] = 21
    pred = np.zeros(40, np.uint8)
    pred[14:24], pred[30:40] = 21, 26
    assert annotated_bone_dice(pred, truth) == pytest.approx(bone_dice(pred, truth)) == pytest.approx(2 * 6 / 20)


def test_same_label_dice_scores_each_label_and_names_the_label_covering_it():
    """Truth L1 and L2 (10 voxels each); the prediction shifts the labels by one level on L2's
    voxels (called L3) and finds no L4: L1 scores by its own label, L2 scores 0 but is covered
    by L3, L4 is covered by nothing."""
    truth = np.zeros(40, np.uint8)
    truth[0:10], truth[10:20], truth[20:30] = 20, 21, 23
    pred = np.zeros(40, np.uint8)
    pred[0:8], pred[10:20] = 20, 22
    scores = same_label_dice(pred, truth, (20, 21, 23))
    assert scores[20] == (pytest.approx(2 * 8 / 18), 20)
    assert scores[21] == (0.0, 22)
    assert scores[23] == (0.0, 0)
