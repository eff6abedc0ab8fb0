"""Sampling a volume in a local frame (rigid, right / anterior / superior axes, mm)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from healthivert.io.volume import Volume


def frame_points(
    centre_mm: np.ndarray, axes: np.ndarray, shape: tuple[int, int, int], spacing_mm: float
) -> np.ndarray:
    """World (RAS mm) positions of a grid centred on ``centre_mm`` along ``axes``.

    Args:
        centre_mm: grid centre (3,).
        axes: 3x3, columns are the grid's (lr, ap, si) unit vectors in RAS.
        shape: voxels along (lr, ap, si).
        spacing_mm: isotropic grid step.

    Returns:
        (nl, na, nu, 3) RAS positions.
    """
    offsets = [(np.arange(n) - (n - 1) / 2) * spacing_mm for n in shape]
    grid = np.stack(np.meshgrid(*offsets, indexing="ij"), axis=-1)
    return grid @ np.asarray(axes, float).T + np.asarray(centre_mm, float)


def sample_points(volume: Volume, world_mm: np.ndarray, order: int = 1, cval: float = 0.0) -> np.ndarray:
    """Values of ``volume`` at RAS positions (..., 3): ``order`` 0 nearest, 1 linear."""
    ijk = volume.world_to_voxel(world_mm.reshape(-1, 3)).T
    values = ndimage.map_coordinates(volume.array, ijk, order=order, mode="constant", cval=cval)
    return values.reshape(world_mm.shape[:-1])


def sample_label_in_frame(
    mask: Volume, label: int, centre_mm: np.ndarray, axes: np.ndarray,
    shape: tuple[int, int, int], spacing_mm: float,
) -> np.ndarray:
    """One label of a mask resampled in a frame: its indicator interpolated linearly and
    thresholded at one half, so boundaries fall between the source voxels (sub-voxel)."""
    indicator = mask.with_array((mask.array == label).astype(np.float32))
    return sample_points(indicator, frame_points(centre_mm, axes, shape, spacing_mm), order=1) >= 0.5
