"""Image reading: windows, zoom, level labels beside the spine, the pseudo-healthy outline, and the
height-loss maps' colour scale centred on zero."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402

from healthivert.io.volume import Volume  # noqa: E402
from healthivert.review import ResultsFolder  # noqa: E402
from healthivert.review.render import (  # noqa: E402
    LOSS_CMAP,
    LossMap,
    StudyImages,
    diverging_norm,
    draw_body_overlay,
    label_at,
    label_centres,
    label_marks,
    loss_map_figure,
    loss_map_panels,
    plane_view,
    render_slice,
    straightened_figure,
    window_range,
    zoom_limits,
)
from healthivert.review.studies import Study  # noqa: E402
from tests.review.results_fixture import CT_STUDY  # noqa: E402


def test_window_presets_and_custom() -> None:
    assert window_range("bone") == (400 - 900, 400 + 900)
    assert window_range("soft tissue") == (40 - 200, 40 + 200)
    assert window_range((100, 50)) == (0, 100)
    with pytest.raises(ValueError, match="positive"):
        window_range((0, 50))


def test_zoom_limits_stay_inside_the_image() -> None:
    assert zoom_limits(0, 100, None, 1) == (0, 100)
    assert zoom_limits(0, 100, 50, 2) == (25, 75)
    assert zoom_limits(0, 100, 95, 4) == (75, 100)  # clamped to the edge
    with pytest.raises(ValueError):
        zoom_limits(0, 100, None, 0.5)


def _spine(nx: int = 40, ny: int = 60) -> np.ndarray:
    """A sagittal slice (x: AP, y: SI) with three vertebrae in x 15-24."""
    labels = np.zeros((nx, ny), dtype=np.uint8)
    for i, lab in enumerate((19, 20, 21)):
        labels[15:25, 45 - 15 * i: 55 - 15 * i] = lab
    return labels


def test_level_labels_sit_beside_the_spine_not_on_it() -> None:
    labels = _spine()
    marks = label_marks(labels, (1.0, 1.0), (-0.5, 39.5), (-0.5, 59.5))
    assert [m.label for m in marks] == [21, 20, 19]  # bottom to top
    for m in marks:
        x, y = m.text
        assert not 15 <= x <= 24  # outside the spine's extent
        i, j = int(round(x)), int(round(y))
        assert not (0 <= i < 40 and 0 <= j < 60) or labels[i, j] == 0
        assert m.anchor[0] in (15.0, 24.0)  # the leader line ends on the vertebra's edge
    ys = [m.text[1] for m in marks]
    assert min(np.diff(ys)) >= 0.04 * 60


def test_labels_take_the_side_with_room() -> None:
    labels = np.zeros((40, 20), dtype=np.uint8)
    labels[2:8, 5:15] = 20  # spine near low x: the column goes to high x
    (mark,) = label_marks(labels, (1.0, 1.0), (-0.5, 39.5), (-0.5, 19.5))
    assert mark.text[0] > 7 and mark.ha == "right"


def test_zoomed_view_labels_only_the_vertebrae_in_view() -> None:
    marks = label_marks(_spine(), (1.0, 1.0), (-0.5, 39.5), (30.0, 59.5))
    assert [m.label for m in marks] == [20, 19]  # L2 (y 20-24) is below the view


def test_crowded_labels_are_spread_apart() -> None:
    labels = np.zeros((30, 100), dtype=np.uint8)
    labels[10:20, 50] = 20
    labels[10:20, 51] = 21
    marks = label_marks(labels, (1.0, 1.0), (-0.5, 29.5), (-0.5, 99.5))
    assert marks[1].text[1] - marks[0].text[1] >= 4.0


def _png(data: bytes) -> np.ndarray:
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_render_slice_zoom_and_custom_window() -> None:
    ct = Volume(np.full((40, 30, 60), 300, dtype=np.float32), np.eye(4))
    mask = ct.with_array(np.zeros(ct.shape, dtype=np.uint8))
    mask.array[:, 10:20, 20:30] = 20
    images = StudyImages(ct, mask)
    centre = label_centres(images)[20]
    np.testing.assert_allclose(centre, [19.5, 14.5, 24.5])
    drawn = render_slice(images, "sagittal", 20, (200, 300), names={20: "L2"}, zoom=2, focus_mm=(14.5, 24.5),
                         width_px=300)
    x0, x1, y0, y1 = drawn.view.view
    assert x1 - x0 == pytest.approx(15) and y1 - y0 == pytest.approx(30)  # half of 30 x 60 mm
    assert drawn.labels == ("L2",)  # the relabelled name, not VerSe's L1
    assert "zoom 2x" in drawn.title
    pixels = _png(drawn.png)
    assert pixels.shape[:2] == (drawn.view.size_px[1], drawn.view.size_px[0])
    corner = pixels[3, int(drawn.view.offset_px) + 5, 0]  # inside the (padded) slice, off the mask
    assert abs(int(corner) - 127) <= 2  # 300 HU in W 200 L 300 (200-400): mid grey


def test_a_click_on_a_plane_maps_to_the_vertebra_under_it() -> None:
    ct = Volume(np.zeros((40, 30, 60), dtype=np.float32), np.diag([1.0, 1.0, 1.0, 1.0]))
    mask = ct.with_array(np.zeros(ct.shape, dtype=np.uint8))
    mask.array[:, 10:20, 20:30] = 20  # L1
    mask.array[:, 10:20, 35:45] = 19  # T12, above it
    images = StudyImages(ct, mask)
    for zoom, focus in ((1, None), (2, (14.5, 24.5))):
        drawn = render_slice(images, "sagittal", 20, zoom=zoom, focus_mm=focus, width_px=300)
        assert label_at(images, drawn, *drawn.view.to_px(14.5, 24.5)) == 20  # on L1's body
        assert label_at(images, drawn, *drawn.view.to_px(12.0, 37.0)) == 19  # on T12's
        label, (x0, y0, x1, y1) = next(b for b in drawn.boxes if b[0] == 20)
        assert label_at(images, drawn, (x0 + x1) / 2, (y0 + y1) / 2) == 20  # on its level name
    drawn = render_slice(images, "sagittal", 20, width_px=300)
    assert label_at(images, drawn, *drawn.view.to_px(25.0, 32.0)) == 19  # beside the spine: nearest centre
    assert label_at(images, drawn, *drawn.view.to_px(29.0, 2.0), max_mm=10) is None  # off the spine
    assert label_at(StudyImages(ct, None), drawn, 10, 10) is None  # no mask


def test_plane_view_square_mm_pixels_and_padding() -> None:
    ct = Volume(np.zeros((10, 20, 40), dtype=np.float32), np.diag([1.0, 0.5, 2.0, 1.0]))
    pv = plane_view(StudyImages(ct, None), "sagittal", 5, width_px=100)  # 10 x 80 mm: tall, padded
    assert pv.size_px == (100, 160) and pv.scale == pytest.approx(2.0)
    assert pv.offset_px == pytest.approx(40)  # the 20 px wide slice in the middle
    for x, y in ((0.0, 0.0), (9.5, 79.0), (3.2, 41.0)):
        assert pv.to_mm(*pv.to_px(x, y)) == pytest.approx((x, y))
    assert pv.to_px(9.75, 79.0)[0] < pv.to_px(-0.25, 79.0)[0]  # anterior (high y of RAS) on the left


def test_pseudo_healthy_is_an_outline_over_the_filled_real_body() -> None:
    real = np.zeros((30, 40), dtype=np.uint8)
    real[5:25, 5:25] = 1
    healthy = np.zeros_like(real)
    healthy[5:25, 5:35] = 1
    fig, ax = plt.subplots()
    draw_body_overlay(ax, real, healthy, (0, 30, 0, 40))
    assert len(ax.images) == 1  # only the real body is filled
    filled = ax.images[0].get_array()
    assert filled[..., 3].max() > 0 and (filled[..., 3] > 0).sum() == real.sum()
    contours = [c for c in ax.collections if isinstance(c, ContourSet)]
    assert len(contours) == 1 and not contours[0].filled
    plt.close(fig)


def test_loss_scale_is_centred_on_zero() -> None:
    cmap = plt.get_cmap(LOSS_CMAP)
    norm = diverging_norm(np.array([-2.0, 7.5, np.nan]), 5.0, percentile=100)
    assert (norm.vmin, norm.vmax) == (-7.5, 7.5) and norm(0.0) == 0.5
    r, g, b, _ = cmap(norm(0.0))
    assert min(r, g, b) > 0.9 and max(r, g, b) - min(r, g, b) < 0.05  # neutral: near white
    assert cmap(norm(5.0))[0] > cmap(norm(5.0))[2]  # loss is red
    assert diverging_norm(np.array([np.nan]), 5.0).vmax == 5.0
    walls = np.r_[np.full(98, 3.0), 400.0, -900.0]  # a few wall columns far off the body's loss
    assert diverging_norm(walls, 2.0).vmax < 20 and diverging_norm(walls, 2.0, cap=10.0).vmax <= 10
    assert diverging_norm(walls, 50.0, cap=100.0).vmax == 50.0


def test_loss_map_panels_in_mm_and_percent() -> None:
    mm = np.zeros((20, 16))
    mm[5:15, 4:12] = 6.0
    fig = loss_map_panels(LossMap(mm, mm / 20.0, (1.0, 1.0)), "L1")
    maps = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert [ax.get_title() for ax in maps] == ["L1: height loss (mm)", "L1: height loss (%)"]
    assert maps[0].images[0].norm(0.0) == 0.5 and maps[1].images[0].norm(0.0) == 0.5
    bars = [ax for ax in fig.axes if ax not in maps]
    assert [b.get_ylabel() for b in bars] == ["height loss (mm)", "height loss (% of pseudo-healthy)"]
    ticks = set(np.round(bars[1].get_yticks(), 1))
    assert {20.0, 25.0, 40.0} <= ticks  # the Genant thresholds on the % scale
    plt.close(fig)


def test_study_figures_from_files(shared_results) -> None:
    study = Study.load(ResultsFolder.open(shared_results), CT_STUDY)
    fig = loss_map_figure(study, "L1")
    assert fig is not None and len([ax for ax in fig.axes if ax.images and ax.get_title()]) == 2
    plt.close(fig)
    fig = straightened_figure(study, "L1")
    assert fig is not None and any(isinstance(c, ContourSet) for c in fig.axes[1].collections)
    plt.close(fig)
