"""The 40 mm band canvas: what the GAN sees and what it must restore."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.synthesis.gan.canvas import (
    BAND_MM,
    BAND_TOP,
    COLS,
    ROWS,
    VertebraStack,
    kept_band_rows,
    make_sample,
    normalise_hu,
    pack_rows,
    repack_window,
    shown_rows,
    with_twin_band,
)

LR = np.arange(-30, 31)
AP = np.arange(-45, 36)
N_SI = 81  # -40 .. 40 mm at 1 mm


def column_stack(heights: dict[int, tuple[float, float]], label: int = 20) -> VertebraStack:
    """Three box vertebrae along SI: {label: (centre_mm, height_mm)}; body AP -15..15, LR -18..18.
    CT is 0.5 in bone, -0.5 elsewhere; every label's SI extent is exact at 1 mm."""
    si = np.arange(-40, 41)
    ct = np.full((len(LR), len(AP), N_SI), -0.5, np.float32)
    labels = np.zeros(ct.shape, np.uint8)
    body = np.zeros(ct.shape, np.float32)
    foot = (np.abs(LR)[:, None] <= 18) & (np.abs(AP)[None, :] <= 15)
    for lab, (centre, height) in heights.items():
        rows = (si >= centre - height / 2) & (si < centre + height / 2)
        where = foot[..., None] & rows[None, None, :]
        labels[where] = lab
        ct[where] = 0.5
        if lab == label:
            body[where] = 1.0
    return VertebraStack(label, ct, body, labels, LR, AP)


def test_hu_window_maps_to_unit_range():
    assert np.allclose(normalise_hu(np.array([-1000.0, -300.0, 250.0, 800.0, 3000.0])), [-1, -1, 0, 1, 1])


def test_pack_rows_band_is_centred_on_the_body_and_context_is_packed_against_it():
    src = pack_rows(81, top=30, bottom=49)  # body rows 30..49 (20 mm), centre 40 (rounded 39.5 -> 40)
    assert src[BAND_TOP - 1] == 29 and src[BAND_TOP + BAND_MM] == 50  # context touches the band
    assert src[BAND_TOP] == 40 - BAND_MM // 2 and src[BAND_TOP + BAND_MM - 1] == 40 + BAND_MM // 2 - 1
    assert src[0] == 30 - BAND_TOP  # 28 rows above
    assert (src == -1).sum() == 0 or (src[src == -1].size < ROWS)


def test_disc_shift_thins_or_thickens_the_context_next_to_the_body():
    plain = pack_rows(81, top=30, bottom=49)
    src = pack_rows(81, top=30, bottom=49, shift=(2, -3))
    assert src[BAND_TOP - 1] == 27 and np.array_equal(src[:BAND_TOP], plain[:BAND_TOP] - 2)  # 2 rows dropped
    below = src[BAND_TOP + BAND_MM:]
    assert (below[:4] == 50).all() and below[4] == 51  # the row next to the body 3 times more
    assert np.array_equal(src[BAND_TOP:BAND_TOP + BAND_MM], plain[BAND_TOP:BAND_TOP + BAND_MM])
    stack = column_stack({19: (-28, 20), 20: (0, 20.0), 21: (28, 20)})
    a, b = make_sample(stack, "sagittal", 30), make_sample(stack, "sagittal", 30, disc_shift=(2, -3))
    assert np.array_equal(a.target, b.target) and a.height_mm == b.height_mm  # the truth in the band stays
    gap = lambda s: int(BAND_TOP - 1 - np.flatnonzero(s.adjacent[:BAND_TOP, 40])[-1])  # noqa: E731  (disc rows above)
    assert gap(a) - gap(b) == 2


@pytest.mark.parametrize("height", [16.0, 24.0, 30.0])
def test_input_outside_the_band_does_not_depend_on_the_height(height):
    """The context is packed against the band: the image the generator sees outside the band
    is the same for any target height (the input never shows the real height)."""
    ref = make_sample(column_stack({19: (-28, 20), 20: (0, 20.0), 21: (28, 20)}), "sagittal", 30)
    # neighbours keep their distance to the target's endplates (8 mm discs) as the height changes
    half = height / 2
    s = make_sample(column_stack({19: (-half - 8 - 10, 20), 20: (0, height), 21: (half + 8 + 10, 20)}), "sagittal", 30)
    outside = np.zeros(ROWS, bool)  # the 20 rows each side of the band (the crop ends beyond)
    outside[BAND_TOP - 20:BAND_TOP] = outside[BAND_TOP + BAND_MM:BAND_TOP + BAND_MM + 20] = True
    assert np.array_equal(ref.ct[outside], s.ct[outside])
    assert np.array_equal(ref.adjacent[outside], s.adjacent[outside])
    # the truth in the band holds the real body: its rows equal the height, centred
    rows = np.flatnonzero(s.target.any(axis=1))
    assert len(rows) == height and s.height_mm == pytest.approx(height)
    assert abs((rows[0] + rows[-1]) / 2 - (BAND_TOP + BAND_MM / 2 - 0.5)) <= 1.0
    assert s.ct.shape == (ROWS, COLS) and s.target[:BAND_TOP].sum() == 0


def test_slice_indices_cover_the_central_four_fifths_and_position_is_signed():
    stack = column_stack({20: (0, 20)})
    idx = stack.slice_indices("sagittal")  # body LR -18..18 -> 37 columns, indices 12..48
    assert idx[0] == 12 + 4 and idx[-1] == 48 - 4  # 10 % margin each side (3.6 -> 4)
    assert stack.position("sagittal", 30) == pytest.approx(0.0)
    assert stack.position("sagittal", 12) == pytest.approx(-1.0)
    cor = stack.slice_indices("coronal")  # AP -15..15 at indices 30..60
    assert cor[0] >= 30 and cor[-1] <= 60
    assert make_sample(stack, "sagittal", 0) is None  # no body in that slice


def test_coronal_view_places_lr_on_the_canvas_columns():
    s = make_sample(column_stack({20: (0, 20)}), "coronal", 45)
    cols = np.flatnonzero(s.target.any(axis=0))
    assert cols[0] == -18 + COLS // 2 and cols[-1] == 18 + COLS // 2


def test_window_map_repacks_with_the_image():
    s = make_sample(column_stack({19: (-26, 20), 20: (0, 20), 21: (26, 20)}), "sagittal", 30)
    rows = np.arange(ROWS, dtype=float)[:, None] * np.ones((1, COLS))
    packed = repack_window(rows, s, fill=-1)
    # a canvas row's repacked value is the window row that showed the same slice row
    ok = (s.src >= 0) & (packed[:, 0] >= 0)
    assert np.array_equal(s.window_src[packed[ok, 0].astype(int)], s.src[ok])


def test_shrm_never_keeps_fewer_rows_than_the_present_body():
    assert kept_band_rows(25.2, 18) == (BAND_TOP + 20 - 13, BAND_TOP + 20 + 13)
    start, stop = kept_band_rows(10.0, 22)
    assert stop - start == 22
    start, stop = kept_band_rows(55.0, 22)
    assert (start, stop) == (BAND_TOP, BAND_TOP + BAND_MM)


def test_shrm_heights_take_the_label_profile_scaled_to_the_predicted_height():
    """Each column's label rows (p >= 0.5) within the kept rows, scaled so the tallest column is
    the predicted height: a rounded body of 20 rows predicted at 24 mm reads 24 mm at its
    centre and keeps its profile."""
    from healthivert.synthesis.gan.infer import _column_heights

    prob = np.zeros((ROWS, COLS), np.float32)
    centre = BAND_TOP + BAND_MM // 2
    for col, rows in ((30, 16), (31, 20), (32, 20), (33, 18)):
        prob[centre - rows // 2:centre + rows // 2, col] = 0.9
    prob[centre - 5:centre + 5, 34] = 0.3  # below 0.5: no body
    start, stop = kept_band_rows(24.0, 20)
    heights = _column_heights(prob, start, stop, 24.0)
    assert heights[[30, 31, 32, 33, 34]] == pytest.approx([19.2, 24.0, 24.0, 21.6, 0.0])
    assert not _column_heights(np.zeros((ROWS, COLS), np.float32), start, stop, 24.0).any()


def test_stretched_neighbour_moves_away_from_the_target():
    """Iterative synthesis shows a restored neighbour: stretched by its factor, its endplate
    next to the target's disc kept in place."""
    stack = column_stack({19: (24, 20), 20: (0, 20), 21: (-24, 20)})  # SI grows cranially: T12 above L1
    plain = make_sample(stack, "sagittal", 30)
    stretched = make_sample(stack, "sagittal", 30, above=(19, 1.3))
    above = slice(0, BAND_TOP)
    assert stretched.adjacent[above].sum() > plain.adjacent[above].sum()
    # the neighbour's inferior endplate (next to the disc above the target) has not moved
    last_plain = np.flatnonzero(plain.adjacent[above].any(axis=1))[-1]
    last_str = np.flatnonzero(stretched.adjacent[above].any(axis=1))[-1]
    assert last_plain == last_str
    assert np.array_equal(stretched.ct[BAND_TOP + BAND_MM:], plain.ct[BAND_TOP + BAND_MM:])


def test_attention_can_be_blanked_inside_the_band():
    """HGAM's heat map comes from the unmasked window, so inside the band it may outline the
    real body; ``attention_in_band=False`` blanks it there and keeps it on the context."""
    from dataclasses import replace

    import torch

    from healthivert.synthesis.gan.canvas import band_mask
    from healthivert.synthesis.gan.model import GANModel
    from tests.tiny_gan import TINY as tiny
    s = make_sample(column_stack({19: (-26, 20), 20: (0, 20), 21: (26, 20)}), "sagittal", 30)
    torch.manual_seed(0)
    shown = GANModel.create(tiny)
    blank = GANModel.create(replace(tiny, attention_in_band=False))
    blank.classifier.load_state_dict(shown.classifier.state_dict())
    a, b = shown.inputs([s])["input"][0, 4].numpy(), blank.inputs([s])["input"][0, 4].numpy()
    band = band_mask() > 0
    assert (b[band] == 1.0).all() and np.allclose(a[~band], b[~band])
    assert not np.allclose(a[band], 1.0)  # the heat map does reach into the band otherwise


def test_twin_band_replaces_only_the_truth_inside_the_band():
    """twin_truth: a fractured slice keeps its input side (context, window, rows, position) and
    takes its intact twin's band, body and height as the truth."""
    fractured = make_sample(column_stack({19: (-24, 20), 20: (0, 12.0), 21: (24, 20)}), "sagittal", 30)
    twin = make_sample(column_stack({19: (-28, 20), 20: (0, 20.0), 21: (28, 20)}), "sagittal", 30)
    s = with_twin_band(fractured, twin)
    band = slice(BAND_TOP, BAND_TOP + BAND_MM)
    assert s.height_mm == pytest.approx(20.0) and s.body_rows == 20 and np.array_equal(s.target, twin.target)
    assert np.array_equal(s.ct[band], twin.ct[band]) and np.array_equal(s.adjacent[band], twin.adjacent[band])
    outside = np.ones(ROWS, bool)
    outside[band] = False
    assert np.array_equal(s.ct[outside], fractured.ct[outside])
    assert np.array_equal(s.adjacent[outside], fractured.adjacent[outside])
    assert s.window is fractured.window and s.src is fractured.src and s.position == fractured.position
    assert fractured.height_mm == pytest.approx(12.0)  # the fractured sample itself is left as it was


def test_slice_at_a_coordinate_across_the_view():
    stack = column_stack({20: (0, 20)})
    assert stack.index_at("sagittal", 0.0) == 30 and stack.index_at("sagittal", -30.4) == 0
    assert stack.index_at("coronal", -45.0) == 0 and stack.index_at("coronal", 35.0) == len(AP) - 1
    assert stack.index_at("sagittal", 31.0) is None and stack.index_at("coronal", 36.0) is None


def test_shown_rows_keep_the_band_and_the_context_beside_it():
    assert shown_rows(None).all()
    rows = np.flatnonzero(shown_rows(24))
    assert (rows[0], rows[-1]) == (BAND_TOP - 24, BAND_TOP + BAND_MM + 23)
    assert shown_rows(0).sum() == BAND_MM
