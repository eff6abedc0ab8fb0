"""benchmarks/acquisition_ct.py's re-gridding of a CT and its mask, on volumes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.acquisition_ct import new_grid, thick_slices, variant
from healthivert.io.volume import Volume, affine_from_sitk


def _oblique(degrees: float = 0.0, spacing=(2.0, 1.0, 1.0), shape=(30, 60, 60)) -> np.ndarray:
    """An affine whose first and third axes are turned by ``degrees`` about the second (RAS A)."""
    t = np.radians(degrees)
    rot = np.array([[np.cos(t), 0.0, np.sin(t)], [0.0, 1.0, 0.0], [-np.sin(t), 0.0, np.cos(t)]])
    affine = np.eye(4)
    affine[:3, :3] = rot * np.asarray(spacing)
    affine[:3, 3] = (-10.0, 20.0, -30.0)
    return affine


def _block(affine: np.ndarray, shape=(30, 60, 60)) -> tuple[Volume, Volume]:
    """A CT of -1024 HU air with a 1000 HU block (20 x 20 x 20 mm) in the middle, and its mask."""
    ct = np.full(shape, -1024.0, np.float32)
    mask = np.zeros(shape, np.uint8)
    ct[10:20, 20:40, 20:40] = 1000.0
    mask[10:20, 20:40, 20:40] = 20
    return Volume(ct, affine), Volume(mask, affine)


def test_the_ct_on_1_mm_in_its_own_directions_keeps_its_box_and_block():
    """An 8-degree oblique CT of 2 x 1 x 1 mm voxels on 1 mm: the box's centre and its own
    directions are kept, its LR axis gains a sample per 1 mm, the block keeps its volume."""
    ct, mask = _block(_oblique(8.0))
    grid, axis = new_grid(ct, 0.0, 0.0, 1.0, False)
    assert axis == 2
    assert grid.GetSize() == (59, 60, 60)
    np.testing.assert_allclose(affine_from_sitk(grid)[:3, :3], _oblique(8.0)[:3, :3] / [2.0, 1.0, 1.0], atol=1e-9)
    image, truth = variant(ct, mask, (0.0, 0.0, 1.0, False))
    np.testing.assert_allclose(image.voxel_to_world((np.array(image.shape) - 1) / 2),
                               ct.voxel_to_world((np.array(ct.shape) - 1) / 2), atol=1e-6)
    assert (truth.array == 20).sum() == pytest.approx(20 * 20 * 20, rel=0.06)  # mm^3 at 1 mm voxels
    assert image.array[truth.array == 20].mean() > 900.0


def test_onto_the_worlds_axes_the_box_grows_and_its_wedges_are_outside():
    """The same CT put onto the world's axes: the grid is axis-aligned, larger than the box
    (it holds the turned box whole), and its corners outside the scan read -1024 HU."""
    ct, mask = _block(_oblique(8.0))
    grid, _ = new_grid(ct, 0.0, 0.0, 1.0, True)
    np.testing.assert_allclose(affine_from_sitk(grid)[:3, :3], np.eye(3), atol=1e-12)
    assert grid.GetSize()[0] > 59 and grid.GetSize()[2] > 60
    image, truth = variant(ct, mask, (0.0, 0.0, 1.0, True))
    assert image.array[0, 0, 0] == pytest.approx(-1024.0)
    assert (truth.array == 20).sum() == pytest.approx(20 * 20 * 20, rel=0.06)


def test_a_turned_grid_turns_about_the_boxs_centre():
    ct, _ = _block(_oblique(0.0, spacing=(1.0, 1.0, 1.0), shape=(40, 40, 40)), shape=(40, 40, 40))
    grid, axis = new_grid(ct, 12.0, 6.0, 1.0, False)
    affine = affine_from_sitk(grid)
    assert np.degrees(np.arccos(affine[2, 2])) == pytest.approx(np.degrees(np.arccos(
        np.cos(np.radians(12.0)) * np.cos(np.radians(6.0)))), abs=0.01)
    centre = affine[:3, :3] @ ((np.array(grid.GetSize()) - 1) / 2) + affine[:3, 3]
    np.testing.assert_allclose(centre, ct.voxel_to_world(np.array([19.5, 19.5, 19.5])), atol=1e-6)
    assert axis == 2


def test_thick_slices_average_over_their_thickness():
    """A 1 mm plate of 1000 HU in air, on 5 mm slices' profile (FWHM 5 mm): its integral along
    the slice axis is kept and its peak falls to about a fifth."""
    array = np.full((4, 4, 41), -1000.0, np.float32)
    array[:, :, 20] = 1000.0
    thick = thick_slices(Volume(array, np.eye(4)), 2, 5.0).array
    assert (thick[0, 0] + 1000.0).sum() == pytest.approx(2000.0, rel=1e-3)
    assert 0.15 < (thick[0, 0, 20] + 1000.0) / 2000.0 < 0.25
