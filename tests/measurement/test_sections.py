"""The shared section-height definition (healthivert/sections.py) on hand-made column heights.

Heights arrays are (n_ap, n_lr); AP grows anteriorly. On a 1 mm grid the edge margin
(1.5 mm) drops exactly the outermost ring of columns, so every expected value below is a
mean of known columns.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from healthivert.sections import (
    CENTRAL_LR_FRACTION,
    EDGE_MARGIN_MM,
    SECTIONS,
    genant_grade_from_loss,
    relative_height_loss,
    section_heights,
)

AP = np.arange(31.0)  # 0..30 mm: thirds [0, 10), [10, 20), [20, 30]
LR = np.arange(21.0)


def _by_ap(profile: np.ndarray) -> np.ndarray:
    return np.broadcast_to(profile[:, None], (len(AP), len(LR))).copy()


def _thirds(posterior: float, middle: float, anterior: float) -> np.ndarray:
    return _by_ap(np.select([AP < 10, AP < 20], [posterior, middle], anterior))


# Interior rows (the outer ring excluded): posterior 1..9, middle 10..19, anterior 20..29, so
# a linear profile h(ap) averages to h at ap = 5, 14.5 and 24.5.
CASES = [
    ("box", np.full((31, 21), 24.0), {"anterior": 24.0, "middle": 24.0, "posterior": 24.0}),
    ("wedge", _by_ap(10.0 + 0.5 * AP), {"anterior": 22.25, "middle": 17.25, "posterior": 12.5}),
    ("thirds", _thirds(10.0, 20.0, 30.0), {"anterior": 30.0, "middle": 20.0, "posterior": 10.0}),
    ("anterior wedge", _by_ap(np.where(AP >= 20, 12.0, 24.0)), {"anterior": 12.0, "middle": 24.0, "posterior": 24.0}),
]


@pytest.mark.parametrize("name, heights, expected", CASES, ids=[c[0] for c in CASES])
def test_section_heights_exact(name, heights, expected):
    assert section_heights(heights, AP, LR) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("name, heights, expected", CASES, ids=[c[0] for c in CASES])
def test_section_heights_do_not_depend_on_axis_direction(name, heights, expected):
    """AP and LR coordinates given descending (the array flipped with them): same sections."""
    assert section_heights(heights[::-1, ::-1], AP[::-1], LR[::-1]) == pytest.approx(expected, abs=1e-9)


def test_only_the_central_lr_band_counts():
    lr = np.arange(51.0)  # extent 0..50: the band is |lr - 25| <= 0.4 * 50 / 2 = 10
    assert CENTRAL_LR_FRACTION == 0.4
    in_band = np.abs(lr - 25.0) <= 10.0
    heights = np.broadcast_to(np.where(in_band, 20.0, 40.0)[None, :], (len(AP), len(lr)))
    assert section_heights(heights, AP, lr) == pytest.approx(dict.fromkeys(SECTIONS, 20.0))
    # one column more on each side would have shown
    wider = np.broadcast_to(np.where(np.abs(lr - 25.0) <= 11.0, 20.0, 40.0)[None, :], (len(AP), len(lr)))
    assert section_heights(wider, AP, lr)["middle"] == pytest.approx(20.0)
    narrower = np.broadcast_to(np.where(np.abs(lr - 25.0) <= 9.0, 20.0, 40.0)[None, :], (len(AP), len(lr)))
    assert section_heights(narrower, AP, lr)["middle"] > 20.0


@pytest.mark.parametrize("step_mm, rim_excluded", [(1.0, 1), (0.5, 3), (0.25, 6)])
def test_edge_margin_excludes_the_rim(step_mm, rim_excluded):
    """Columns within EDGE_MARGIN_MM (1.5 mm) of the outline are left out; the next ring counts."""
    assert EDGE_MARGIN_MM == 1.5
    ap = np.arange(0.0, 30.0 + 1e-9, step_mm)
    lr = np.arange(0.0, 20.0 + 1e-9, step_mm)

    def with_rim(width: int) -> np.ndarray:
        heights = np.full((len(ap), len(lr)), 20.0)
        ring = np.ones_like(heights, bool)
        ring[width:-width, width:-width] = False
        heights[ring] = 10.0
        return heights

    assert section_heights(with_rim(rim_excluded), ap, lr) == pytest.approx(dict.fromkeys(SECTIONS, 20.0))
    # a rim one sample deeper reaches the anterior and posterior thirds (the middle third
    # meets the rim only at its left and right sides, outside the central LR band)
    deeper = section_heights(with_rim(rim_excluded + 1), ap, lr)
    assert deeper["anterior"] < 20.0 and deeper["posterior"] < 20.0, deeper
    assert deeper["middle"] == pytest.approx(20.0)


def test_slivers_below_a_quarter_of_the_median_do_not_move_the_thirds():
    ap = np.arange(33.0)
    heights = np.zeros((33, 21))
    heights[:31] = _thirds(10.0, 20.0, 30.0)
    heights[31:] = 2.0  # partial-volume slivers grazing the anterior wall: < 0.25 * median (20)
    assert section_heights(heights, ap, LR) == pytest.approx({"anterior": 30.0, "middle": 20.0, "posterior": 10.0})


def test_empty_body_gives_nan():
    out = section_heights(np.zeros((31, 21)), AP, LR)
    assert set(out) == set(SECTIONS)
    assert all(math.isnan(v) for v in out.values())


@pytest.mark.parametrize(
    "healthy, actual, expected",
    [
        ((20, 20, 20), (20, 20, 20), (0.0, 0.0, 0.0, 0.0)),
        ((20, 20, 20), (10, 15, 20), (0.5, 0.25, 0.0, 0.25)),
        ((10, 20, 30), (12, 20, 30), (-0.2, 0.0, 0.0, -2 / 60)),  # taller than healthy: negative
        ((25, 24, 26), (15, 18, 26), (0.4, 0.25, 0.0, 16 / 75)),
    ],
)
def test_relative_height_loss(healthy, actual, expected):
    rhlv = relative_height_loss(dict(zip(SECTIONS, healthy)), dict(zip(SECTIONS, actual)))
    assert list(rhlv) == [*SECTIONS, "whole"]
    assert [rhlv[k] for k in (*SECTIONS, "whole")] == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    "loss, grade",
    [(-0.3, 0), (0.0, 0), (0.1999, 0), (0.20, 1), (0.2499, 1), (0.25, 2), (0.33, 2), (0.40, 2), (0.4001, 3),
     (0.9, 3)],
)
def test_genant_grade_from_loss(loss, grade):
    assert genant_grade_from_loss(loss) == grade
