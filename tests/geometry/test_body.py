"""Vertebral body isolation (healthivert/geometry/body.py) on hand-made straightened labels.

Axes are (LR, AP, SI) with 1 mm samples; AP grows anteriorly. The body's posterior wall is at
AP 0, the spinal canal runs from AP -1 to -19 and the lamina from -20 to -25.
"""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.geometry.body import isolate_body, isolated_body, posterior_wall_mm

LR = np.arange(-30.0, 31.0)
AP = np.arange(-40.0, 36.0)
N_SI = 60


def _region(lr: tuple[float, float], ap: tuple[float, float], si: tuple[int, int]) -> np.ndarray:
    out = np.zeros((len(LR), len(AP), N_SI), bool)
    out[np.ix_((LR >= lr[0]) & (LR <= lr[1]), (AP >= ap[0]) & (AP <= ap[1]), np.arange(si[0], si[1] + 1))] = True
    return out


def _body() -> np.ndarray:
    """A box with small central caps at both endplates (tapered ends, as a biconcave body)."""
    core = _region((-15, 15), (0, 30), (22, 38))
    caps = _region((-4, 4), (11, 19), (18, 21)) | _region((-4, 4), (11, 19), (39, 42))
    return core | caps


def _posterior_elements() -> np.ndarray:
    pedicles = _region((10, 14), (-19, -1), (24, 36)) | _region((-14, -10), (-19, -1), (24, 36))
    lamina = _region((-14, 14), (-25, -20), (24, 36))
    spinous = _region((-2, 2), (-40, -26), (26, 34))
    return pedicles | lamina | spinous


def _stub() -> np.ndarray:
    """A pedicle stub beside the body, apart from it: in SI slices 16-21 it outweighs the body."""
    return _region((17, 24), (2, 27), (16, 24))


def test_posterior_wall_is_the_front_of_the_canal():
    assert posterior_wall_mm(_body() | _posterior_elements(), LR, AP, 1.0) == -1.0
    assert posterior_wall_mm(_body(), LR, AP, 1.0) == 0.0  # no canal: the back of the mid-line
    assert posterior_wall_mm(np.zeros_like(_body()), LR, AP, 1.0) is None


def test_a_cleft_behind_a_piece_in_front_of_the_body_is_not_the_canal():
    """A segmentation can hold a piece of cortex (or an osteophyte) in front of the body with a
    narrow cleft behind it, joined to the body above: the wall is still the canal's front."""
    front_piece = _region((-6, 6), (34, 35), (24, 34)) | _region((-6, 6), (31, 35), (35, 36))
    label = _body() | _posterior_elements() | front_piece
    assert posterior_wall_mm(label, LR, AP, 1.0) == -1.0
    body = isolate_body(label, LR, AP, 1.0)
    assert body[_body()].all()


def test_isolate_body_removes_posterior_elements_and_a_larger_stub():
    body, stub = _body(), _stub()
    for k in range(18, 22):  # the stub is larger than the body in these axial slices
        assert stub[:, :, k].sum() > body[:, :, k].sum() > 0
    out = isolate_body(body | _posterior_elements() | stub, LR, AP, 1.0)
    assert out[body].all(), "part of the body was lost"
    assert not out[stub].any(), "the pedicle stub was kept"
    assert not out[:, AP < -1, :].any(), "something behind the posterior wall was kept"
    extra = out & ~body  # only the pedicles' sample at the wall itself (AP -1) may remain
    assert not extra[:, AP != -1, :].any()
    dice = 2 * (out & body).sum() / (out.sum() + body.sum())
    assert dice > 0.99


@pytest.mark.parametrize(
    "label",
    [
        _body(),
        _region((-15, 15), (0, 30), (10, 40)),  # a plain box
        _region((-15, 15), (-30, 30), (10, 40)),  # a deep body reaching far back
    ],
    ids=["tapered", "box", "deep"],
)
def test_body_only_input_comes_back_whole(label):
    np.testing.assert_array_equal(isolate_body(label, LR, AP, 1.0), label)


def test_body_with_a_cavity_and_a_speck_comes_back_filled_without_the_speck():
    body = _region((-15, 15), (0, 30), (10, 40))
    hollow = body & ~_region((-5, 5), (10, 20), (20, 30))
    speck = _region((25, 26), (30, 31), (50, 51))
    np.testing.assert_array_equal(isolate_body(hollow | speck, LR, AP, 1.0), body)


def test_empty_label_gives_empty_body():
    assert not isolate_body(np.zeros((len(LR), len(AP), N_SI), bool), LR, AP, 1.0).any()


def test_a_body_without_its_arch_is_cut_at_its_back_not_at_an_endplate_concavity():
    """Identification can give a vertebra's arch to its neighbour (sub-verse008's L5 from its
    CT). Its label is then the body, pedicle roots beside it, and in the mid-line no canal: only
    the concave centre of an endplate between its rims, over a few slices. Read as 0.5 mm
    slices, that gap spans 2 mm of height and is no wall; the body is cut at its own back
    (AP 0) and kept whole (it kept its front 6 mm when that gap was taken for the canal)."""
    body = _region((-15, 15), (0, 30), (23, 38))
    endplate = _region((-15, 15), (0, 30), (19, 22)) & ~_region((-4, 4), (6, 24), (19, 22))
    roots = _region((10, 14), (-10, -1), (24, 36)) | _region((-14, -10), (-10, -1), (24, 36))
    label = body | endplate | roots
    assert posterior_wall_mm(label, LR, AP, 0.5) == 0.0
    np.testing.assert_array_equal(isolate_body(label, LR, AP, 0.5), body | endplate)
    # the same gap over 6 mm of height (1.5 mm slices) is taken for the canal, as before
    assert posterior_wall_mm(label, LR, AP, 1.5) == 24.0


def test_a_piece_of_the_neighbour_beyond_a_disc_is_dropped():
    """A label may hold some of the next vertebra's body beyond the disc (sub-verse008 from its
    CT: 13 mm of the T11 that the view's top cuts, in T12's label), joined to the body by a rim
    of labelled disc. Along SI the disc is a waist of under half the bone on either side; the
    body is split there and the smaller side goes."""
    body = _region((-15, 15), (0, 30), (10, 38))
    rim = _region((-15, 15), (0, 30), (39, 41)) & ~_region((-10, 10), (5, 30), (39, 41))  # 0.4 of the section
    neighbour = _region((-15, 15), (0, 30), (42, 51))  # a third of the body
    label = body | rim | neighbour | _posterior_elements()
    out = isolate_body(label, LR, AP, 1.0)
    assert not out[neighbour].any(), "the neighbour's piece was kept"
    assert out[body].all(), "part of the body was lost"
    assert not out[:, :, 39:].any()
    assert isolated_body(label, LR, AP, 1.0).beyond_disc == 13  # the rim's deepest 3 samples and the piece's 10
    assert isolated_body(body | _posterior_elements(), LR, AP, 1.0).beyond_disc == 0


def test_a_body_with_a_concave_wall_is_not_split():
    """A whole body's concave wall narrows its mid-height cross-section (to 0.62 of its
    endplates in the narrowest real body at hand): no disc, nothing dropped."""
    waist = np.abs(np.arange(N_SI) - 25.0)
    body = np.zeros((len(LR), len(AP), N_SI), bool)
    for k in range(10, 41):
        half = 9.5 + 5.5 * waist[k] / 15.0  # 19 mm wide at mid-height, 30 mm at the endplates
        body[:, :, k] = _region((-half, half), (0, 30), (k, k))[:, :, k]
    area = body.sum(axis=(0, 1))[10:41]
    assert 0.6 < area.min() / area.max() < 0.7
    np.testing.assert_array_equal(isolate_body(body, LR, AP, 1.0), body)


def test_two_whole_bodies_beyond_a_disc_stay_together():
    """A label that merged two vertebrae is no body with a piece of its neighbour: it stays
    whole, for the plausibility check to refuse it, not measured as one of the two."""
    lower = _region((-15, 15), (0, 30), (5, 25))
    rim = _region((-15, 15), (0, 30), (26, 28)) & ~_region((-10, 10), (5, 30), (26, 28))
    upper = _region((-15, 15), (0, 30), (29, 49))
    label = lower | rim | upper
    np.testing.assert_array_equal(isolate_body(label, LR, AP, 1.0), label)


def test_pieces_of_both_neighbours_are_dropped():
    body = _region((-15, 15), (0, 30), (15, 40))
    rims = (_region((-15, 15), (0, 30), (12, 14)) | _region((-15, 15), (0, 30), (41, 43))) \
        & ~_region((-10, 10), (5, 30), (0, N_SI - 1))
    below, above = _region((-15, 15), (0, 30), (4, 11)), _region((-15, 15), (0, 30), (44, 53))
    out = isolate_body(body | rims | below | above, LR, AP, 1.0)
    np.testing.assert_array_equal(out, body)
