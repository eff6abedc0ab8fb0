"""The neighbour prior (healthivert/synthesis/prior.py) on synthetic straightened bodies with
exact column heights (see tests/geometry/builders.py)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.normative import REFERENCE_HEIGHT_MM, wedge_drop_mm
from healthivert.sections import SECTIONS, section_heights
from healthivert.synthesis import SYNTHESIZERS, get_synthesizer
from healthivert.synthesis.prior import map_onto, synthesize_prior
from tests.geometry.builders import AP_MM, LR_MM, SI_MM, ap_wedge, footprint, straight_box

LABELS = [18, 19, 20, 21, 22]  # T11 .. L3
SCALE = 0.9  # a smaller-than-average patient: only ratios between levels matter


def _sections(v, heights) -> dict[str, float]:
    return section_heights(np.asarray(heights).T, v.grid.ap_mm, v.grid.lr_mm)


def _healthy(label: int) -> float:
    return SCALE * REFERENCE_HEIGHT_MM[label]


#: the builders' footprint runs from AP -15 to +15 mm
DEPTH_MM = 30.0


def _normal(label: int, scale: float = 1.0) -> np.ndarray:
    """(n_lr, n_ap) heights of a normal body of a level: its reference height (mean) with the
    level's normative wedge from the posterior to the anterior edge, times ``scale``."""
    drop = wedge_drop_mm(label, DEPTH_MM)
    wedge = ap_wedge(anterior_mm=_healthy(label) - drop / 2, posterior_mm=_healthy(label) + drop / 2)
    return np.where(footprint(), scale * wedge, 0.0)


def test_healthy_spine_is_its_own_pseudo_healthy():
    """Bodies in the population's height ratios and their levels' normative wedges (T11-T12
    shorter in front, L3 square) come back unchanged, from their neighbours."""
    vertebrae = [straight_box(lab, _normal(lab)) for lab in LABELS]
    assert _sections(vertebrae[1], vertebrae[1].heights_mm)["anterior"] < 0.98 * _healthy(19)  # T12's wedge
    out = synthesize_prior(vertebrae)
    assert sorted(out) == LABELS
    for v in vertebrae:
        ph = out[v.label]
        assert ph.method == "neighbours"
        np.testing.assert_allclose(ph.heights_mm, v.heights_mm, rtol=1e-5, atol=1e-4)
        # the pseudo-healthy body mask has those column heights (to a sample)
        si_step = SI_MM[1] - SI_MM[0]
        foot = v.heights_mm > 0
        np.testing.assert_allclose(ph.body.sum(axis=2)[foot] * si_step, v.heights_mm[foot], atol=si_step)
    assert out[20].neighbours == [18, 19, 21, 22]
    assert out[18].neighbours == [19, 20]  # the top one has neighbours on one side only


def test_adjacent_fractures_do_not_drag_each_other_down():
    """L1 at 50 % and L2 at 70 % of their height: restored neighbours first, so both estimates
    reach the healthy height (a single pass would leave L1 10 % short)."""
    vertebrae = [straight_box(lab, _normal(lab, {20: 0.5, 21: 0.7}.get(lab, 1.0))) for lab in LABELS]
    out = synthesize_prior(vertebrae)
    for v in vertebrae:
        estimate = _sections(v, out[v.label].heights_mm)
        healthy = _sections(v, _normal(v.label))
        for s in SECTIONS:
            assert estimate[s] == pytest.approx(healthy[s], rel=0.01), (v.label, s)


@pytest.mark.parametrize(
    "labels, neighbours_of_l1",
    [
        ([18, 19, 20, 21], [18, 19, 21]),  # T12 and L1 adjacent; T11 next but one
        ([18, 19, 28, 20, 21], [19, 28, 21]),  # a T13 between them: T12 next but one, T11 too far
    ],
    ids=["no T13", "T13"],
)
def test_t12_and_l1_are_adjacent_unless_the_spine_has_a_t13(labels, neighbours_of_l1):
    out = synthesize_prior([straight_box(lab, REFERENCE_HEIGHT_MM[lab]) for lab in labels])
    assert out[20].neighbours == neighbours_of_l1


def test_neighbour_weights_and_level_ratios():
    """T12 (adjacent, weight 1) at 1.0 x and L2 (next but one, weight 0.5) at 1.3 x their
    reference heights: L1's estimate is (1 * 1.0 + 0.5 * 1.3) / 1.5 = 1.1 x its own reference."""
    heights = {19: REFERENCE_HEIGHT_MM[19], 20: 1.1 * REFERENCE_HEIGHT_MM[20], 22: 1.3 * REFERENCE_HEIGHT_MM[22]}
    vertebrae = [straight_box(lab, h) for lab, h in heights.items()]
    out = synthesize_prior(vertebrae)
    assert out[20].neighbours == [19, 22]
    expected = (1.0 * 1.0 + 0.5 * 1.3) / 1.5 * REFERENCE_HEIGHT_MM[20]
    foot = vertebrae[1].heights_mm > 0
    # the mean over the footprint: re-wedging to L1's level tilts the columns, keeping the mean
    assert out[20].heights_mm[foot].mean() == pytest.approx(expected, rel=1e-4)


def test_neighbour_maps_onto_the_target_footprint():
    """A wedge-shaped neighbour on a 30 x 30 mm footprint, mapped onto a 20 x 16 mm one, keeps
    its AP profile in normalised coordinates: posterior edge 24 mm, anterior edge 18 mm."""
    source = straight_box(19, ap_wedge(anterior_mm=18.0, posterior_mm=24.0))
    target_foot = footprint(half_lr_mm=10.0, half_ap_mm=8.0)
    target = straight_box(20, 10.0, foot=target_foot)
    mapped = map_onto(source, source.heights_mm, target)
    assert not mapped[~target_foot].any()
    alpha = (AP_MM + 8.0) / 16.0  # 0 at the target's posterior edge, 1 at its anterior edge
    expected = 24.0 + (18.0 - 24.0) * alpha
    inside = np.flatnonzero(np.abs(AP_MM) <= 8.0)
    centre = int(np.flatnonzero(LR_MM == 0)[0])
    np.testing.assert_allclose(mapped[centre, inside], expected[inside], atol=1e-4)
    assert np.ptp(mapped[target_foot[:, inside[0]], inside[0]]) < 1e-4  # uniform along LR


@pytest.mark.parametrize("label", [20, 24])
def test_single_vertebra_uses_intra_vertebral_ratios(label):
    """No neighbour: the posterior third's height, wedged as the level's normal body (L1
    shorter in front, L5 taller)."""
    v = straight_box(label, ap_wedge(anterior_mm=15.0, posterior_mm=25.0))
    ph = synthesize_prior([v])[label]
    assert ph.method == "intra-vertebral ratios"
    assert ph.neighbours == []
    posterior = _sections(v, v.heights_mm)["posterior"]
    estimate = _sections(v, ph.heights_mm)
    assert estimate["posterior"] == pytest.approx(posterior, abs=0.15)
    drop = wedge_drop_mm(label, DEPTH_MM)
    assert estimate["posterior"] - estimate["anterior"] == pytest.approx(2 / 3 * drop, abs=0.2)
    assert not ph.heights_mm[v.heights_mm == 0].any()


def test_l5_from_a_square_l4_takes_its_lordotic_wedge():
    """A normal L4 gives L5 the taller front of a normal L5 (not L4's square shape), so a
    normal L5 reads no loss and an L5 whose front is only as tall as its back reads one."""
    normal = [straight_box(lab, _normal(lab)) for lab in (22, 23, 24)]
    l5 = normal[-1]
    ph = _sections(l5, synthesize_prior(normal)[24].heights_mm)
    assert ph["anterior"] - ph["posterior"] == pytest.approx(-2 / 3 * wedge_drop_mm(24, DEPTH_MM), abs=0.1)
    assert ph["anterior"] > ph["posterior"] + 1.5


def test_a_neighbours_rim_does_not_count_as_its_height():
    """L5's midline is shallower in AP than its lateral lips: at the centre its front 6 mm hold
    only a 3 mm rim. Laid onto L4's footprint by normalised coordinates, that rim falls in L4's
    anterior third; it must not count as a healthy height (it read as a 24 % anterior loss of
    a normal real L4), and L4's estimate takes L3's body there."""
    l5 = _normal(24)
    rim = (np.abs(LR_MM)[:, None] <= 6.0) & (AP_MM[None, :] > 9.0)
    vertebrae = [straight_box(lab, _normal(lab)) for lab in (22, 23)] + [straight_box(24, np.where(rim, 3.0, l5))]
    l4 = vertebrae[1]
    estimate = _sections(l4, synthesize_prior(vertebrae)[23].heights_mm)
    for s, healthy in _sections(l4, l4.heights_mm).items():
        assert estimate[s] == pytest.approx(healthy, rel=0.02), s


def test_a_neighbours_bone_in_front_of_its_body_does_not_move_the_mapping():
    """A neighbour's mask may hold short bone in front of its body (an osteophyte, a calcified
    ligament: sub-verse007's T10, 5-6 mm columns over 7 mm). Counted in its AP extent, the
    normalised mapping laid its anterior rim onto the target's anterior third (sub-verse007's
    T9 read 20-32 % taller in front than its pseudo-healthy body and was not graded). The
    extents are the full-height columns'."""
    labels = (18, 19, 20)
    plain = [straight_box(lab, _normal(lab)) for lab in labels]
    foot = footprint(half_ap_mm=22.0)
    tail = (AP_MM[None, :] > 15.0) & np.ones((len(LR_MM), 1), bool)
    spur = np.where(tail, 5.0, np.where(footprint(), _normal(19), 0.0))
    with_spur = [plain[0], straight_box(19, spur, foot=foot), plain[2]]
    for vertebrae in (plain, with_spur):
        estimate = _sections(plain[0], synthesize_prior(vertebrae)[18].heights_mm)
        for s, healthy in _sections(plain[0], plain[0].heights_mm).items():
            assert estimate[s] == pytest.approx(healthy, rel=0.02), s


def test_vertebrae_cut_by_the_field_of_view_inform_no_one():
    vertebrae = [straight_box(19, 5.0, cut_by_fov=("superior",)), straight_box(20, _normal(20)),
                 straight_box(21, _normal(21))]
    out = synthesize_prior(vertebrae)
    assert out[20].neighbours == [21]
    np.testing.assert_allclose(out[20].heights_mm, vertebrae[1].heights_mm, rtol=1e-5, atol=1e-4)


def test_vertebra_without_body_gets_no_estimate():
    empty = straight_box(19, 0.0)
    assert not empty.body.any()
    out = synthesize_prior([empty, straight_box(20, 20.0), straight_box(21, 21.0)])
    assert 19 not in out
    assert out[20].neighbours == [21]


def test_registry():
    assert "prior" in SYNTHESIZERS
    assert get_synthesizer("prior") is synthesize_prior
    with pytest.raises(ValueError, match="unknown synthesizer 'gann'.*prior"):
        get_synthesizer("gann")


def test_a_merged_neighbour_is_no_reference():
    """L2's label holds two vertebrae (1.75 times its level's height): L1 and L3 take their heights
    from their other neighbours, not from it (it made them read 37-48 % short on a real CT)."""
    vertebrae = [straight_box(lab, _normal(lab, 1.75 if lab == 21 else 1.0)) for lab in LABELS]
    out = synthesize_prior(vertebrae)
    assert 21 not in out[20].neighbours and 21 not in out[22].neighbours
    for v in (vertebrae[2], vertebrae[4]):
        np.testing.assert_allclose(out[v.label].heights_mm, v.heights_mm, rtol=0.02, atol=0.05)


def test_a_neighbour_far_taller_than_its_level_allows_is_no_reference():
    """L3's label holds a piece of the next bone: 1.45 times its level's height, below the
    merged-label check. As a reference it would make L2 read a fracture; left out, it does
    not. A body 20 % taller (real bodies read up to 1.22 times their study's median) still
    counts."""
    tall = [straight_box(lab, _normal(lab, 1.45 if lab == 22 else 1.0)) for lab in LABELS]
    out = synthesize_prior(tall)
    l2 = tall[3]
    loss = max(1 - _sections(l2, l2.heights_mm)[s] / _sections(l2, out[21].heights_mm)[s] for s in SECTIONS)
    assert abs(loss) < 0.03, loss
    taller = [straight_box(lab, _normal(lab, 1.2 if lab == 22 else 1.0)) for lab in LABELS]
    out = synthesize_prior(taller)
    l2 = taller[3]
    assert _sections(l2, out[21].heights_mm)["middle"] > 1.03 * _sections(l2, l2.heights_mm)["middle"]
