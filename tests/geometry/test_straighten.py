"""Straightening (geometry/straighten.py, geometry/vertebrae.py) on box-shaped vertebra masks."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.geometry.curve import fit_spine_curve
from healthivert.geometry.straighten import CropSpec, straight_grid
from healthivert.geometry.vertebrae import column_heights, fov_contact, straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.sections import SECTIONS, section_heights
from tests.geometry.builders import box_mask

#: a crop just larger than the boxes (the default one is sized for real vertebrae): faster
SMALL = CropSpec(lr_half_mm=24.0, ap_front_mm=24.0, ap_back_mm=30.0, si_half_mm=20.0)


@pytest.mark.parametrize(
    "spacing_mm, n_xy, n_z",
    [((1.0, 1.0, 1.0), 30, 25), ((0.8, 0.8, 2.0), 38, 12), ((0.6, 0.6, 3.0), 50, 8), ((1.0, 1.0, 1.25), 30, 20)],
)
def test_box_vertebra_heights_are_its_height_at_any_voxel_size(spacing_mm, n_xy, n_z):
    """A box of n_z slices measures n_z * slice thickness, to sub-voxel precision."""
    shape = (n_xy + 20, n_xy + 20, n_z + 16)
    mask = box_mask({20: (slice(10, 10 + n_xy), slice(10, 10 + n_xy), slice(8, 8 + n_z))}, shape, spacing_mm,
                    origin_mm=(3.3, -7.1, 12.9))
    _, (v,) = straighten_vertebrae(mask, centroids_from_mask(mask), spec=SMALL)
    height = n_z * spacing_mm[2]
    assert v.label == 20 and v.cut_by_fov == []
    assert section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm) == pytest.approx(
        dict.fromkeys(SECTIONS, height), abs=0.05)
    # the footprint is the box's, to within a sample at each side
    width = n_xy * spacing_mm[0]
    for axis in (0, 1):
        extent = np.flatnonzero(v.body.any(axis=2).any(axis=1 - axis))
        assert abs(len(extent) - width) <= 2.0


def test_stacked_boxes_are_each_centred_in_their_crop():
    boxes = {19: (slice(10, 40), slice(10, 40), slice(62, 85)), 20: (slice(10, 40), slice(10, 40), slice(36, 53)),
             21: (slice(10, 40), slice(10, 40), slice(5, 30))}
    mask = box_mask(boxes, (50, 50, 92))
    curve, vertebrae = straighten_vertebrae(mask, centroids_from_mask(mask), spec=SMALL)
    assert [v.label for v in vertebrae] == [19, 20, 21]  # cranial to caudal
    np.testing.assert_allclose(curve.frames, np.broadcast_to(np.eye(3), curve.frames.shape), atol=1e-9)
    for v, height in zip(vertebrae, (23.0, 17.0, 25.0)):
        assert v.heights_mm.max() == pytest.approx(height, abs=0.05)
        # the body sits around SI 0 of its own crop and holds no voxel of its neighbours
        si = v.grid.si_mm[np.flatnonzero(v.body.any(axis=(0, 1)))]
        assert abs(si[0] + si[-1]) <= 1.0
        assert si[-1] - si[0] == pytest.approx(height, abs=1.0)


def test_cut_by_fov_only_when_the_body_reaches_the_edge():
    body = (slice(10, 40), slice(20, 50), slice(8, 33))
    # the body runs into the top of the image
    top = box_mask({20: (body[0], body[1], slice(8, 40))}, (50, 60, 40))
    assert list(fov_contact(top, 20)) == ["superior"]
    _, (v,) = straighten_vertebrae(top, centroids_from_mask(top), spec=SMALL)
    assert v.cut_by_fov == ["superior"]
    # a posterior process (behind a canal gap) reaches the image's back; the body is in view
    mask = box_mask({20: body}, (50, 60, 45))
    mask.array[23:27, 0:14, 18:24] = 20
    assert list(fov_contact(mask, 20)) == ["posterior"]
    _, (v,) = straighten_vertebrae(mask, centroids_from_mask(mask), spec=SMALL)
    assert v.cut_by_fov == []


def test_a_label_a_voxel_short_of_the_face_that_cuts_it_is_cut():
    """A segmented label may stop a voxel short of the image face that cuts its vertebra: within
    FOV_MARGIN_MM (1.5 mm) it reaches the face and is cut; two voxels (2 mm) short it is whole."""
    body = (slice(10, 40), slice(20, 50))
    short = box_mask({20: (*body, slice(8, 39))}, (50, 60, 40))  # last plane 38, the face 39
    assert fov_contact(short, 20) == {"superior": 1.0}
    _, (v,) = straighten_vertebrae(short, centroids_from_mask(short), spec=SMALL)
    assert v.cut_by_fov == ["superior"] and v.cut_sections == list(SECTIONS)
    clear = box_mask({20: (*body, slice(8, 38))}, (50, 60, 40))
    assert fov_contact(clear, 20) == {}
    _, (w,) = straighten_vertebrae(clear, centroids_from_mask(clear), spec=SMALL)
    assert w.cut_by_fov == [] and w.cut_sections == []


@pytest.mark.parametrize(
    "soft, body, expected_samples",
    [
        ([0, 0, 0.5, 1, 1, 1, 0.5, 0, 0], None, 4.0),  # boundaries half-way between source voxels
        ([0, 0.25, 0.75, 1, 1, 0.75, 0.25, 0], None, 4.0),  # sub-voxel ramps count in full
        # another label's voxels (the ends) further than two samples from the body do not count
        ([1, 0, 0, 0, 0.5, 1, 1, 0.5, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0], 3.0),
        ([0, 0.4, 0.4, 0.4, 0], None, 0.0),  # never reaches one half: no body, no height
        # a column past a concave wall crosses both endplates' rims but not the waist: its
        # height runs from endplate to endplate
        ([0, 0.5, 1, 0, 0.2, 0, 1, 0.5, 0], None, 6.0),
    ],
)
@pytest.mark.parametrize("step_mm", [0.5, 1.0])
def test_column_heights(soft, body, expected_samples, step_mm):
    column = np.asarray(soft, np.float32)[None, None, :]
    body = column >= 0.5 if body is None else np.asarray(body, bool)[None, None, :]
    heights = column_heights(column, body, step_mm)
    assert heights.shape == (1, 1)
    assert heights[0, 0] == pytest.approx(expected_samples * step_mm)


def test_straight_grid_samples_the_frame_around_the_anchor():
    centroids = {19: np.array([0.0, 0.0, 60.0]), 20: np.array([0.0, 0.0, 30.0]), 21: np.array([0.0, 0.0, 0.0])}
    curve = fit_spine_curve(centroids)
    spec = CropSpec(lr_half_mm=4.0, ap_front_mm=3.0, ap_back_mm=5.0, si_half_mm=2.0)
    grid = straight_grid(curve, 20, spec)
    assert grid.shape == (9, 9, 9)
    assert grid.spacing_mm == (1.0, 1.0, 0.5)
    i0, j0, k0 = 4, 5, 4  # LR 0, AP 0, SI 0
    np.testing.assert_allclose(grid.world_mm[i0, j0, k0], [0.0, 0.0, 30.0], atol=1e-6)
    np.testing.assert_allclose(grid.world_mm[i0 + 1, j0, k0] - grid.world_mm[i0, j0, k0], [1.0, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(grid.world_mm[i0, j0 + 1, k0] - grid.world_mm[i0, j0, k0], [0.0, 1.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(grid.world_mm[i0, j0, k0 + 1] - grid.world_mm[i0, j0, k0], [0.0, 0.0, 0.5], atol=1e-9)
    curved = straight_grid(curve, 20, spec, curved=True)  # on a straight spine the two agree
    np.testing.assert_allclose(curved.world_mm, grid.world_mm, atol=1e-6)
    with pytest.raises(ValueError, match="label 22"):
        straight_grid(curve, 22, spec)


@pytest.mark.parametrize("field", ["lr_half_mm", "ap_front_mm", "ap_back_mm", "si_half_mm", "si_step_mm"])
def test_crop_spec_rejects_non_positive_sizes(field):
    with pytest.raises(ValueError, match=field):
        CropSpec(**{field: 0.0})


def _slab_mask(tilt_deg: float, shape=(60, 70, 70), half=(15.0, 15.0, 12.5), centre=(30.0, 35.0, 35.0),
               label: int = 20) -> np.ndarray:
    """A box body (LR, AP, SI half-sizes in mm, 1 mm voxels) turned by ``tilt_deg`` about the LR axis."""
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    x, y, z = i - centre[0], j - centre[1], k - centre[2]
    t = np.radians(tilt_deg)
    yr, zr = np.cos(t) * y + np.sin(t) * z, -np.sin(t) * y + np.cos(t) * z
    inside = (np.abs(x) <= half[0]) & (np.abs(yr) <= half[1]) & (np.abs(zr) <= half[2])
    return np.where(inside, label, 0).astype(np.uint8)


@pytest.mark.parametrize("tilt", [0.0, 12.0, 25.0])
def test_a_body_tilted_in_the_curves_frame_is_measured_in_its_own(tilt):
    """A lone vertebra's curve runs straight SI; a body tilted against it is turned upright
    (its mid-plane normal becomes SI) and measures its real height in every section."""
    mask = box_mask({}, (60, 70, 70))
    mask.array[:] = _slab_mask(tilt)
    _, (v,) = straighten_vertebrae(mask, centroids_from_mask(mask), spec=SMALL)
    assert v.tilt_deg == pytest.approx(tilt, abs=1.5)
    assert section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm) == pytest.approx(
        dict.fromkeys(SECTIONS, 25.0), abs=0.6)


def test_a_body_cut_across_by_the_image_is_not_turned():
    """The 25-degree slab, its front cut off by the image: whole, it is turned upright; cut
    across, it keeps the curve's frame (a cut face can pass for an endplate: a ragged real T12
    cut by the top of its CT was turned 31 degrees to a fragment that no longer reached the
    edge) and all its sections are cut."""
    whole = box_mask({}, (60, 70, 70))
    whole.array[:] = _slab_mask(25.0)
    cut = box_mask({}, (60, 44, 70))
    cut.array[:] = whole.array[:, :44, :]
    assert fov_contact(cut, 20) == {"anterior": 1.0}
    (_, (w,)), (_, (c,)) = (straighten_vertebrae(m, centroids_from_mask(m), spec=SMALL) for m in (whole, cut))
    assert w.tilt_deg == pytest.approx(25.0, abs=1.5)
    assert c.tilt_deg == 0.0 and c.cut_by_fov == ["anterior"] and c.cut_sections == list(SECTIONS)


def test_a_body_touching_an_edge_is_whole_and_measures_as_when_padded():
    """A cylindrical body whose anterior wall touches the image's edge (a tight crop) is whole:
    same heights as the same body with 10 voxels of background around it; a flat cut is not."""
    shape, r = (40, 40, 34), 15.0
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    cyl = ((i - 20) ** 2 + (j - (39 - r)) ** 2 <= r * r) & (k >= 4) & (k < 29)  # tip on the last AP row
    tight = box_mask({}, shape)
    tight.array[:] = np.where(cyl, 20, 0)
    padded = box_mask({}, tuple(n + 20 for n in shape), origin_mm=(-10.0, -10.0, -10.0))
    padded.array[10:-10, 10:-10, 10:-10] = tight.array
    assert list(fov_contact(tight, 20)) == ["anterior"] and list(fov_contact(padded, 20)) == []
    (_, (a,)), (_, (b,)) = (straighten_vertebrae(m, centroids_from_mask(m), spec=SMALL) for m in (tight, padded))
    assert a.cut_by_fov == [] and a.cut_sections == [] and a.touches_fov == ["anterior"]
    np.testing.assert_allclose(a.heights_mm, b.heights_mm, atol=1e-4)
    # the same body cut 8 mm behind its anterior wall
    cut = box_mask({}, (40, 32, 34))
    cut.array[:] = tight.array[:, :32]
    _, (c,) = straighten_vertebrae(cut, centroids_from_mask(cut), spec=SMALL)
    assert c.cut_by_fov == ["anterior"] and c.cut_sections == list(SECTIONS)


def test_a_section_whose_columns_run_into_the_edge_is_cut():
    """The anterior part of a wedge-topped body reaches the top of the image; only the
    anterior section's columns end there, so only it is cut."""
    shape = (40, 50, 40)
    i, j, k = np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij")
    top = 30 + 9.0 * (j - 10) / 30  # the top rises anteriorly, reaching the last row (39) at j = 40
    body = (np.abs(i - 20) <= 15) & (j >= 10) & (j <= 40) & (k >= 8) & (k <= np.minimum(top, 39))
    mask = box_mask({}, shape)
    mask.array[:] = np.where(body, 20, 0)
    faces = list(fov_contact(mask, 20))
    assert "superior" in faces
    _, (v,) = straighten_vertebrae(mask, centroids_from_mask(mask), spec=SMALL)
    assert v.cut_sections == ["anterior"] and "superior" in v.cut_by_fov


def test_body_axis_keeps_a_body_centre_that_jumps_between_passes(monkeypatch):
    """The curve is fitted again through the bodies found in the crops along the last one; a
    body isolation gone wrong in a later pass (sub-verse007's T10 from its CT: 22 mm to the
    front, after T11's label gained 3 % of bone) bent the curve, and the crop along it missed
    the body (T10 measured 10 mm in front, graded 3). A centre that moves more than 10 mm
    from the pass before keeps its place."""
    from healthivert.geometry import straighten

    labels = range(18, 23)
    passes = []

    def centres(mask, curve):
        passes.append(curve)
        out = {lab: np.array([0.0, 10.0, -30.0 * k]) for k, lab in enumerate(labels)}
        if len(passes) == 2:
            out[20] = out[20] + np.array([0.0, 22.0, 0.0])
        return out

    monkeypatch.setattr(straighten, "body_centres", centres)
    curve = straighten.fit_body_axis(None, {lab: np.array([0.0, 0.0, -30.0 * k]) for k, lab in enumerate(labels)})
    assert len(passes) == 2
    nearest = np.linalg.norm(curve.points - np.array([0.0, 10.0, -60.0]), axis=1).min()
    assert nearest < 1.0


def test_a_labels_core_is_its_body_whatever_arch_it_holds():
    """A body (40 x 30 x 24 mm) with a 5 mm plate of arch 30 mm behind it and above it in the
    same label (a neighbour's arch, as identification can leave it): the whole-label centroid
    moves back and up by several millimetres; the core's centre stays at the body's."""
    from healthivert.geometry.straighten import core_centres
    from healthivert.io.volume import Volume

    array = np.zeros((60, 90, 70), np.uint8)  # 1 mm voxels, RAS: i right, j anterior, k superior
    array[10:50, 50:80, 20:44] = 24  # the body: centre (29.5, 64.5, 31.5)
    array[5:55, 15:20, 30:65] = 24  # a plate of arch behind it, reaching above it
    array[10:50, 50:80, 48:68] = 23  # the body above, alone
    mask = Volume(array, np.eye(4))
    centroid = np.argwhere(array == 24).mean(axis=0)
    assert np.linalg.norm(centroid - [29.5, 64.5, 31.5]) > 10.0  # the arch drags the centroid
    cores = core_centres(mask, [23, 24, 25])
    assert set(cores) == {23, 24}  # L6 is not in the mask
    assert cores[24] == pytest.approx([29.5, 64.5, 31.5], abs=0.5)
    assert cores[23] == pytest.approx([29.5, 64.5, 57.5], abs=0.5)
