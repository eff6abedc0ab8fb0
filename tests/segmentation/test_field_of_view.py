"""Air and padding far from the body filled before the network (healthivert/segmentation/field_of_view.py)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.io.images import load_ct, load_mask
from healthivert.io.volume import Volume
from healthivert.segmentation.field_of_view import (
    DEFAULT_TISSUE_HU,
    KEEP_MM,
    fill_outside_body,
    outside_body,
    tissue_hu,
)
from tests.helpers import shared_path


def _scan(shape=(60, 60, 20), body=(20, 40), padding=-1024.0, tissue=35.0) -> np.ndarray:
    """A block of soft tissue (``body``: its extent along axes 0 and 1, voxels) in padding."""
    hu = np.full(shape, padding, np.float32)
    hu[body[0]:body[1], body[0]:body[1], :] = tissue
    return hu


def test_outside_is_the_air_and_padding_reaching_a_side_face():
    hu = _scan()
    hu[28:32, 28:32, 5:15] = -850.0  # a lung inside the body
    hu[22:26, 22:26, 15:] = -1000.0  # air the top of the scan cuts across, inside the body
    outside = outside_body(hu)
    assert outside[0, 0, 0] and outside[59, 30, 10] and outside[30, 59, 10]
    assert not outside[30, 30, 10] and not outside[23, 23, 19] and not outside[25, 25, 10]
    assert outside.sum() == 60 * 60 * 20 - 20 * 20 * 20
    assert not outside_body(np.full((8, 8, 8), 40.0)).any()


def test_tissue_hu_is_the_median_soft_tissue_inside():
    hu = _scan(tissue=35.0)
    hu[20:22, 20:40, :] = 700.0  # bone is not tissue
    assert tissue_hu(hu, ~outside_body(hu)) == pytest.approx(35.0)
    assert tissue_hu(np.full((4, 4, 4), 800.0), np.ones((4, 4, 4), bool)) == DEFAULT_TISSUE_HU


def test_padding_beyond_the_kept_band_becomes_tissue_and_the_body_is_unchanged():
    """At 2 mm voxels the band within ``KEEP_MM`` (20 mm: 10 voxels) of the body stays padding,
    farther out is the body's tissue; the body itself and its lung are untouched, and a scan
    with nothing that far comes back as it was."""
    hu = _scan(tissue=35.0)
    hu[28:32, 28:32, 5:15] = -850.0
    filled = fill_outside_body(hu, 2.0)
    keep = int(KEEP_MM / 2.0)
    assert filled[20 - keep, 30, 10] == -1024.0  # 20 mm from the body: kept
    assert filled[20 - keep - 1, 30, 10] == pytest.approx(35.0)  # 22 mm: filled
    assert filled[0, 0, 0] == pytest.approx(35.0)
    assert np.array_equal(filled[20:40, 20:40], hu[20:40, 20:40])
    # a body with only a thin band of padding round it (a crop's): nothing to fill
    thin = _scan(shape=(40, 40, 10), body=(5, 35))
    assert fill_outside_body(thin, 2.0) is thin
    # anisotropic voxels: the band is measured in mm along each axis
    aniso = fill_outside_body(_scan(), np.array([1.0, 4.0, 2.0]))
    assert aniso[20 - 20, 30, 10] == -1024.0 and aniso[30, 20 - 6, 10] == pytest.approx(35.0)


@pytest.mark.realdata
@pytest.mark.slow
def test_real_ct_cut_by_a_small_field_of_view_segments_as_the_whole():
    """The real 3 mm abdominal CT with everything beyond 90 mm of its spine set to -1024 HU, as a
    spine reconstruction's 180 mm field of view leaves it: T12-L5 keep their labels and a mean
    Dice of at least 0.80 against TotalSegmentator (0.865 with the fill; 0.672 without, when
    L2-L4 fell to 0.45-0.63 as the network fired along the circle)."""
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

    folder = shared_path("real/totalseg_example")
    ct = load_ct(folder / "ct.nii.gz")
    ref = load_mask(folder / "vertebrae_totalsegmentator.nii.gz").array
    centre = np.argwhere(ref > 0).mean(axis=0)
    i, j = np.indices(ct.shape[:2])
    beyond = np.hypot((i - centre[0]) * ct.spacing_mm[0], (j - centre[1]) * ct.spacing_mm[1]) > 90.0
    cut = ct.array.copy()
    cut[beyond] = -1024.0
    model, cfg, _ = load_weights(DEFAULT_WEIGHTS)
    seg = segment_ct(Volume(cut, ct.affine, ct.source), model, cfg)
    dice = []
    for label in range(19, 25):
        truth, found = ref == label, seg.mask.array == label
        dice.append(2 * (truth & found).sum() / (truth.sum() + found.sum()))
        overlap = seg.mask.array[truth]
        assert np.bincount(overlap[overlap > 0]).argmax() == label
    assert np.mean(dice) >= 0.80, np.round(dice, 3)


def test_a_window_floor_above_the_air_threshold_still_finds_the_air():
    """A segmenter windowed from -200 HU clips air and padding to -200: that floor is the air."""
    import torch
    from monai.data import MetaTensor

    from healthivert.segmentation.config import SegmenterConfig
    from healthivert.segmentation.infer import network_input

    cfg = SegmenterConfig(hu_window=(-200.0, 1300.0))
    hu = np.clip(_scan(), -200.0, 1300.0)
    image = MetaTensor(torch.from_numpy((hu - -200.0) / 1500.0)[None])
    filled = network_input(image, hu, cfg).as_tensor()[0].numpy() * 1500.0 - 200.0
    assert filled[0, 0, 0] == pytest.approx(35.0, abs=1e-3) and filled[15, 30, 10] == pytest.approx(-200.0)
