"""Images of a study for the viewer and the report, drawn with matplotlib in RAS.

Radiological display: the patient's right on the screen's left (coronal, axial); sagittal
views show anterior on the left; superior is always up. Distances are in mm.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from healthivert.io.images import load_ct, load_mask  # noqa: E402
from healthivert.io.volume import Volume  # noqa: E402
from healthivert.labels import VERSE_NAMES  # noqa: E402
from healthivert.review.studies import Study  # noqa: E402
from healthivert.sections import CENTRAL_LR_FRACTION  # noqa: E402

#: Window presets (width, level) in HU.
WINDOWS: dict[str, tuple[float, float]] = {"bone": (1800.0, 400.0), "soft tissue": (400.0, 40.0)}
#: Planes and the RAS array axis each one slices along.
PLANES: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}
GRADE_COLOURS: dict[int, str] = {0: "#2e7d32", 1: "#f9a825", 2: "#ef6c00", 3: "#c62828"}


@dataclass(frozen=True)
class StudyImages:
    """A study's CT and mask in RAS (either may be missing)."""

    ct: Volume | None
    mask: Volume | None

    @property
    def display(self) -> Volume | None:
        """The grid images are drawn on: the CT's, else the mask's."""
        return self.ct if self.ct is not None else self.mask


def load_study_images(study: Study) -> StudyImages:
    """Read a study's recorded CT and mask (those that still exist) in RAS."""
    ct_path, mask_path = study.input_path("ct"), study.input_path("mask")
    return StudyImages(load_ct(ct_path) if ct_path else None, load_mask(mask_path) if mask_path else None)


def _slice(volume: Volume, plane: str, index: int) -> np.ndarray:
    axis = PLANES[plane]
    index = int(np.clip(index, 0, volume.shape[axis] - 1))
    return np.take(volume.array, index, axis=axis)


def labels_on_slice(images: StudyImages, plane: str, index: int) -> np.ndarray | None:
    """The mask's labels on a slice of the display grid (nearest neighbour when grids differ)."""
    grid, mask = images.display, images.mask
    if mask is None or grid is None:
        return None
    if grid is mask or (grid.shape == mask.shape and np.allclose(grid.affine, mask.affine, atol=1e-3)):
        return _slice(mask, plane, index)
    axis = PLANES[plane]
    other = [a for a in range(3) if a != axis]
    ij = np.meshgrid(*[np.arange(grid.shape[a]) for a in other], indexing="ij")
    ijk = np.zeros((*ij[0].shape, 3))
    ijk[..., axis] = index
    ijk[..., other[0]], ijk[..., other[1]] = ij
    vox = np.rint(mask.world_to_voxel(grid.voxel_to_world(ijk))).astype(int)
    inside = np.all((vox >= 0) & (vox < np.array(mask.shape)), axis=-1)
    out = np.zeros(ij[0].shape, dtype=np.uint8)
    v = vox[inside]
    out[inside] = mask.array[v[:, 0], v[:, 1], v[:, 2]]
    return out


def default_slices(images: StudyImages) -> dict[str, int]:
    """Slice indices through the middle of the labelled spine (or of the image)."""
    grid = images.display
    if grid is None:
        return {}
    centre = (np.array(grid.shape) - 1) / 2
    if images.mask is not None and images.mask.array.any():
        idx = np.argwhere(images.mask.array > 0)
        centre = grid.world_to_voxel(images.mask.voxel_to_world(idx.mean(axis=0)))
    return {p: int(np.clip(round(float(centre[a])), 0, grid.shape[a] - 1)) for p, a in PLANES.items()}


def _label_colours() -> np.ndarray:
    cmap = plt.get_cmap("tab20")
    return np.array([cmap(i % 20) for i in range(256)])


def draw_slice(
    ax, images: StudyImages, plane: str, index: int, window: str = "bone",
    show_mask: bool = True, show_labels: bool = True, grades: dict[int, int | None] | None = None,
) -> None:
    """Draw one CT slice (or the mask alone) with the labelled overlay on ``ax``."""
    grid = images.display
    if grid is None:
        ax.text(0.5, 0.5, "no image", ha="center", va="center")
        ax.set_axis_off()
        return
    axis = PLANES[plane]
    other = [a for a in range(3) if a != axis]
    sx, sy = grid.spacing_mm[other[0]], grid.spacing_mm[other[1]]
    nx, ny = grid.shape[other[0]], grid.shape[other[1]]
    extent = (-0.5 * sx, (nx - 0.5) * sx, -0.5 * sy, (ny - 0.5) * sy)
    labels = labels_on_slice(images, plane, index)
    if images.ct is not None:
        width, level = WINDOWS[window]
        ax.imshow(_slice(images.ct, plane, index).T, cmap="gray", origin="lower", extent=extent,
                  vmin=level - width / 2, vmax=level + width / 2, interpolation="bilinear")
    else:
        ax.imshow(np.zeros((ny, nx)), cmap="gray", origin="lower", extent=extent, vmin=0, vmax=1)
    if labels is not None and show_mask:
        rgba = _label_colours()[labels]
        rgba[..., 3] = np.where(labels > 0, 0.45 if images.ct is not None else 0.9, 0.0)
        ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower", extent=extent, interpolation="nearest")
    if labels is not None and show_labels:
        for lab in np.unique(labels[labels > 0]):
            pts = np.argwhere(labels == lab)
            x, y = pts[:, 0].mean() * sx, pts[:, 1].mean() * sy
            text = VERSE_NAMES.get(int(lab), str(lab))
            grade = (grades or {}).get(int(lab))
            colour = GRADE_COLOURS.get(grade, "white") if grade is not None else "white"
            if grade is not None:
                text += f" G{grade}"
            ax.text(x, y, text, color=colour, fontsize=8, fontweight="bold", ha="center", va="center",
                    bbox={"facecolor": "black", "alpha": 0.55, "pad": 1, "edgecolor": "none"})
    ax.set_xlim(extent[1], extent[0])  # radiological: patient right (or anterior) on the left
    ax.set_ylim(extent[2], extent[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    left, right = {"sagittal": ("A", "P"), "coronal": ("R", "L"), "axial": ("R", "L")}[plane]
    top, bottom = ("A", "P") if plane == "axial" else ("S", "I")
    for (x, y, s) in ((0.02, 0.5, left), (0.98, 0.5, right), (0.5, 0.97, top), (0.5, 0.03, bottom)):
        ax.text(x, y, s, transform=ax.transAxes, color="yellow", fontsize=8, ha="center", va="center")
    ax.set_title(f"{plane} {index + 1}/{grid.shape[axis]}", fontsize=9)


def slice_figure(images: StudyImages, plane: str, index: int, window: str = "bone", show_mask: bool = True,
                 show_labels: bool = True, grades: dict[int, int | None] | None = None,
                 size_in: float = 4.0) -> Figure:
    """A figure of one slice; see :func:`draw_slice`."""
    fig, ax = plt.subplots(figsize=(size_in, size_in), constrained_layout=True)
    draw_slice(ax, images, plane, index, window, show_mask, show_labels, grades)
    return fig


@dataclass(frozen=True)
class Crop:
    """A straightened crop in its vertebra frame: array (n_lr, n_ap, n_si), spacing mm.

    Axis 1 grows anteriorly, axis 2 superiorly (the frame of ``healthivert.geometry``)."""

    array: np.ndarray
    spacing_mm: tuple[float, float, float]


def read_crop(path: Path) -> Crop:
    """Read a ``straightened/*.nii.gz`` crop in its own grid order (not reoriented)."""
    image = sitk.ReadImage(str(path))
    return Crop(np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0)), tuple(image.GetSpacing()))


def column_heights_mm(body: Crop) -> np.ndarray:
    """Height (mm) of each (LR, AP) column of a body crop."""
    return (body.array > 0).sum(axis=2) * body.spacing_mm[2]


def height_profile(original: Crop, healthy: Crop | None) -> dict[str, np.ndarray]:
    """Mean column height along AP over the central LR band of the body (as the sections use).

    Returns:
        ``ap_mm`` (0 at the posterior-most voxel of the crop), ``original`` and ``pseudo_healthy``
        heights (mm, NaN off the body).
    """
    h = column_heights_mm(original)
    footprint = h > 0
    cols = np.flatnonzero(footprint.any(axis=1))
    if cols.size == 0:
        cols = np.arange(h.shape[0])
    mid, half = (cols[0] + cols[-1]) / 2, max(1.0, CENTRAL_LR_FRACTION * (cols[-1] - cols[0]) / 2)
    band = np.abs(np.arange(h.shape[0]) - mid) <= half
    out = {"ap_mm": np.arange(h.shape[1]) * original.spacing_mm[1]}
    for key, crop in (("original", original), ("pseudo_healthy", healthy)):
        if crop is None:
            out[key] = np.full(h.shape[1], np.nan)
            continue
        hh = column_heights_mm(crop)[band]
        counts = (hh > 0).sum(axis=0)
        out[key] = np.where(counts > 0, hh.sum(axis=0) / np.maximum(counts, 1), np.nan)
    return out


def straightened_figure(study: Study, name: str) -> Figure | None:
    """Original and pseudo-healthy body, mid-sagittal in the straightened frame, on the CT crop."""
    paths = {k: study.crop(name, k) for k in ("original", "pseudo_healthy", "ct")}
    if paths["original"] is None:
        return None
    crops = {k: read_crop(p) for k, p in paths.items() if p is not None}
    ref = crops["original"]
    lr = ref.array.shape[0] // 2
    if (ref.array > 0).any():
        lr = int(round(np.argwhere(ref.array > 0)[:, 0].mean()))
    sa, ss = ref.spacing_mm[1], ref.spacing_mm[2]
    extent = (-0.5 * sa, (ref.array.shape[1] - 0.5) * sa, -0.5 * ss, (ref.array.shape[2] - 0.5) * ss)
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4), constrained_layout=True, sharey=True)
    colours = {"original": (0.95, 0.3, 0.2), "pseudo_healthy": (0.2, 0.6, 1.0)}
    for ax, key, title in zip(axes, ("original", "pseudo_healthy"), ("original", "pseudo-healthy")):
        if "ct" in crops:
            w, lev = WINDOWS["bone"]
            ax.imshow(crops["ct"].array[lr].T, cmap="gray", origin="lower", extent=extent,
                      vmin=lev - w / 2, vmax=lev + w / 2)
        if key in crops:
            body = crops[key].array[lr].T > 0
            rgba = np.zeros((*body.shape, 4))
            rgba[..., :3] = colours[key]
            rgba[..., 3] = np.where(body, 0.45 if "ct" in crops else 0.9, 0)
            ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
            if body.any():
                ax.contour(body.astype(float), levels=[0.5], colors=[colours[key]], linewidths=1,
                           extent=extent, origin="lower")
        ax.set_xlim(extent[1], extent[0])  # anterior on the left
        ax.set_aspect("equal")
        ax.set_title(f"{name} {title}", fontsize=9)
        ax.set_xlabel("A  <-  AP (mm)  ->  P", fontsize=8)
    axes[0].set_ylabel("SI (mm), straightened", fontsize=8)
    return fig


def height_profile_figure(study: Study, name: str) -> Figure | None:
    """Height (mm) against AP position for the original and the pseudo-healthy body."""
    orig, healthy = study.crop(name, "original"), study.crop(name, "pseudo_healthy")
    if orig is None:
        return None
    prof = height_profile(read_crop(orig), read_crop(healthy) if healthy else None)
    fig, ax = plt.subplots(figsize=(5.0, 2.8), constrained_layout=True)
    ax.plot(prof["ap_mm"], prof["original"], color="#d84315", label="original")
    ax.plot(prof["ap_mm"], prof["pseudo_healthy"], color="#1e88e5", ls="--", label="pseudo-healthy")
    ax.fill_between(prof["ap_mm"], prof["original"], prof["pseudo_healthy"],
                    where=np.isfinite(prof["original"]) & np.isfinite(prof["pseudo_healthy"]),
                    color="#d84315", alpha=0.15, label="height loss")
    ax.invert_xaxis()  # anterior on the left, as in the sagittal views
    ax.set_xlabel("anterior  <-  AP position (mm)  ->  posterior")
    ax.set_ylabel("body height (mm)")
    ax.set_title(f"{name}: height profile (central {CENTRAL_LR_FRACTION:.0%} of LR)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def loss_map_figure(study: Study, name: str) -> Figure | None:
    """The height-loss map (mm) re-rendered from its NIfTI, with a colour bar (viewed from above)."""
    path = study.loss_map(name, "mm")
    if path is None:
        return None
    image = sitk.ReadImage(str(path))
    loss = np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))[:, :, 0].astype(float)
    footprint = None
    orig = study.crop(name, "original")
    if orig is not None:
        crop = read_crop(orig)
        if crop.array.shape[:2] == loss.shape:
            footprint = (crop.array > 0).any(axis=2)
    loss = np.where(footprint if footprint is not None else loss != 0, loss, np.nan)
    sx, sy = image.GetSpacing()[:2]
    extent = (-0.5 * sx, (loss.shape[0] - 0.5) * sx, -0.5 * sy, (loss.shape[1] - 0.5) * sy)
    vmax = max(5.0, float(np.nanmax(np.abs(loss)))) if np.isfinite(loss).any() else 5.0
    fig, ax = plt.subplots(figsize=(4.2, 3.4), constrained_layout=True)
    im = ax.imshow(loss.T, origin="lower", extent=extent, cmap="RdYlBu_r", vmin=-vmax / 3, vmax=vmax)
    ax.set_xlim(extent[1], extent[0])  # patient right on the left
    ax.set_xlabel("R  <-  LR (mm)  ->  L")
    ax.set_ylabel("posterior  <-  AP (mm)  ->  anterior")
    ax.set_title(f"{name}: height loss", fontsize=9)
    fig.colorbar(im, ax=ax, label="height loss (mm)")
    return fig


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure (closed afterwards)."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return buf.getvalue()
