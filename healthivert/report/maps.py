"""Height-loss maps and straightened crops as NIfTI (on the vertebra's own plane, so they
overlay on the CT) and PNG heat maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
from matplotlib.figure import Figure  # no pyplot: no global figure state, no GUI backend

from healthivert.geometry.straighten import StraightGrid
from healthivert.io.atomic import atomic_write
from healthivert.io.volume import sitk_from_array


def _step(w: np.ndarray, axis: int) -> np.ndarray:
    """World displacement (mm) of one step along a grid axis."""
    if w.shape[axis] < 2:
        return np.zeros(3)
    idx1 = [0, 0, 0]
    idx1[axis] = 1
    return w[tuple(idx1)] - w[0, 0, 0]


def grid_affine(grid: StraightGrid, si_index: int = 0) -> np.ndarray:
    """Voxel-to-RAS affine of a rigid straightened grid, starting at SI sample ``si_index``."""
    w = grid.world_mm
    aff = np.eye(4)
    aff[:3, :3] = np.stack([_step(w, a) for a in range(3)], axis=1)
    if w.shape[2] < 2:
        aff[:3, 2] = np.cross(aff[:3, 0], aff[:3, 1]) / np.linalg.norm(aff[:3, 0])
    aff[:3, 3] = w[0, 0, si_index]
    return aff


def write_crop(array: np.ndarray, grid: StraightGrid, path: Path) -> Path:
    """A straightened crop (n_lr, n_ap, n_si) as NIfTI with its true world placement."""
    image = sitk_from_array(array, grid_affine(grid))
    return atomic_write(path, lambda tmp: sitk.WriteImage(image, str(tmp), useCompression=True))


def write_loss_map_nifti(loss: np.ndarray, grid: StraightGrid, path: Path) -> Path:
    """A height-loss map (n_lr, n_ap) as a one-slice NIfTI on the vertebra's mid plane.

    NaN (off the body) is written as 0.
    """
    aff = grid_affine(grid, grid.world_mm.shape[2] // 2)
    image = sitk_from_array(np.nan_to_num(loss, nan=0.0)[:, :, None].astype(np.float32), aff)
    return atomic_write(path, lambda tmp: sitk.WriteImage(image, str(tmp), useCompression=True))


def write_loss_map_png(
    loss_mm: np.ndarray, loss_fraction: np.ndarray, grid: StraightGrid, title: str, path: Path
) -> Path:
    """Side-by-side heat maps (mm and %) of a body's height loss, viewed from above.

    Radiological convention: patient's right on the image's left, anterior at the top.
    """
    extent = (grid.lr_mm[-1], grid.lr_mm[0], grid.ap_mm[0], grid.ap_mm[-1])
    body = np.isfinite(loss_mm)
    fig = Figure(figsize=(8.5, 4.0))  # fixed margins: a layout engine costs ~0.4 s a map
    axes = fig.subplots(1, 2, gridspec_kw={"left": 0.08, "right": 0.93, "bottom": 0.13, "top": 0.88,
                                           "wspace": 0.45})
    panels = ((loss_mm, "height loss (mm)", max(5.0, float(np.nanmax(np.abs(loss_mm))) if body.any() else 5.0)),
              (100 * loss_fraction, "height loss (%)", 60.0))
    for ax, (data, label, vmax) in zip(axes, panels):
        im = ax.imshow(data.T, origin="lower", extent=extent, cmap="RdYlBu_r", vmin=-vmax / 3, vmax=vmax)
        ax.set_xlabel("R  <-  LR (mm)  ->  L")
        ax.set_ylabel("posterior  <-  AP (mm)  ->  anterior")
        if body.any():
            rows = np.flatnonzero(body.any(axis=0))
            cols = np.flatnonzero(body.any(axis=1))
            ax.set_ylim(grid.ap_mm[rows[0]] - 3, grid.ap_mm[rows[-1]] + 3)
            ax.set_xlim(grid.lr_mm[cols[-1]] + 3, grid.lr_mm[cols[0]] - 3)
        fig.colorbar(im, ax=ax, label=label, shrink=0.85)
    fig.suptitle(title)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
