"""The outline finished at the CT's cortex (healthivert/segmentation/outline.py, infer.finish_outline)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.segmentation.outline import grow_into_cortex


def test_a_label_takes_the_bright_voxels_within_reach_and_nothing_else():
    """A row of 1 mm voxels: L1 on 10-19 with bright cortex (400 HU) at 8-9 and 20-21, a dark
    joint space at 22, bright bone at 23-24 and L2 from 25. Within 1.5 mm, L1 takes 9 and 20
    (1 mm away) but not 8 or 21 (2 mm), never the dark 22; L2 takes 24."""
    labels = np.zeros((40, 1, 1), np.uint8)
    labels[10:20], labels[25:35] = 20, 21
    hu = np.full((40, 1, 1), 40.0)
    hu[8:10] = hu[20:22] = hu[23:25] = 400.0
    out = grow_into_cortex(labels, hu, (1.0, 1.0, 1.0), reach_mm=1.5)[:, 0, 0]
    assert out[9] == 20 and out[8] == 0  # 1 mm in reach, 2 mm not
    assert out[20] == 20 and out[21] == 0 and out[22] == 0  # the dark joint space stays out
    assert out[23] == 0 and out[24] == 21  # 2 mm from L2: out of reach; 1 mm: L2's
    assert (out[10:20] == 20).all() and (out[25:35] == 21).all()


def test_reach_is_in_mm_on_an_anisotropic_grid():
    """3 mm voxels along the first axis: a bright voxel one voxel away there is 3 mm away."""
    labels = np.zeros((5, 5, 1), np.uint8)
    labels[2, 2] = 20
    hu = np.full((5, 5, 1), 500.0)
    out = grow_into_cortex(labels, hu, (3.0, 1.0, 1.0), reach_mm=1.0)[:, :, 0]
    assert out[2, 1] == out[2, 3] == 20 and out[1, 2] == out[3, 2] == 0
    assert grow_into_cortex(np.zeros_like(labels), hu, (1.0, 1.0, 1.0), 1.0).max() == 0


@pytest.mark.realdata
@pytest.mark.slow
def test_real_ct_outline_takes_the_cortex_the_network_missed(monkeypatch, verse007_segmenting):
    """sub-verse007 (1 x 1 x 3 mm) with the shipped weights: finished at the cortex, the bone
    outline agrees better with the experts' (bone Dice 0.884 -> 0.888, mean Dice per vertebra
    0.837 -> 0.841)."""
    from benchmarks.segmentation import bone_dice, overlap_dice

    infer, ct, truth, model, cfg = (verse007_segmenting.infer, verse007_segmenting.ct, verse007_segmenting.truth,
                                    verse007_segmenting.model, verse007_segmenting.cfg)
    finished = infer.segment_ct(ct, model, cfg).mask.array
    monkeypatch.setattr(infer, "finish_outline", lambda labels, *_: labels)
    plain = infer.segment_ct(ct, model, cfg).mask.array
    bone = [bone_dice(m, truth) for m in (finished, plain)]
    per = [np.mean([d for d, _ in overlap_dice(m, truth).values()]) for m in (finished, plain)]
    assert bone[0] > bone[1] + 0.003 and per[0] > per[1] + 0.003, (bone, per)


def test_finishing_in_slabs_is_the_same_as_all_at_once(monkeypatch):
    """Random labels and HU on a 0.8 x 0.8 x 0.5 mm grid: grown in slabs of 5 slices (plus the
    reach either side) or whole, every voxel gets the same label."""
    import healthivert.segmentation.infer as infer
    from healthivert.io.volume import Volume
    from healthivert.segmentation.config import SegmenterConfig

    rng = np.random.default_rng(3)
    labels = np.zeros((20, 20, 40), np.uint8)
    labels[4:16, 4:16, 3:37] = rng.choice([0, 0, 20, 21], size=(12, 12, 34))
    hu = rng.uniform(-100, 800, labels.shape).astype(np.float32)
    ct = Volume(hu, np.diag([0.8, 0.8, 0.5, 1.0]))
    whole = grow_into_cortex(labels, hu, (0.8, 0.8, 0.5), SegmenterConfig().spacing_mm / 2)
    monkeypatch.setattr(infer, "SLAB", 5)
    slabs = infer.finish_outline(labels, ct, SegmenterConfig())
    assert np.array_equal(slabs, whole) and (slabs != labels).sum() > 100
