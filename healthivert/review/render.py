"""Images of a study for the viewer and the report, drawn with matplotlib in RAS.

Radiological display: the patient's right on the screen's left (coronal, axial); sagittal
views show anterior on the left; superior is always up. Distances are in mm.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import ndimage  # noqa: E402

from healthivert.geometry.vertebrae import column_extent  # noqa: E402
from healthivert.grading.rule import THRESHOLDS  # noqa: E402
from healthivert.io.images import load_ct, load_mask  # noqa: E402
from healthivert.io.volume import Volume  # noqa: E402
from healthivert.labels import VERSE_NAMES  # noqa: E402
from healthivert.review.studies import Study  # noqa: E402
from healthivert.sections import CENTRAL_LR_FRACTION  # noqa: E402

#: Window presets (width, level) in HU.
WINDOWS: dict[str, tuple[float, float]] = {"bone": (1800.0, 400.0), "soft tissue": (400.0, 40.0)}
#: A window: a preset's name or (width, level) in HU.
Window = str | tuple[float, float]
#: Planes and the RAS array axis each one slices along.
PLANES: dict[str, int] = {"sagittal": 0, "coronal": 1, "axial": 2}
GRADE_COLOURS: dict[int, str] = {0: "#2e7d32", 1: "#f9a825", 2: "#ef6c00", 3: "#c62828"}
#: Height-loss colour scale: diverging, its neutral middle (near white) at zero loss, red for loss.
LOSS_CMAP = "RdBu_r"
REAL_BODY_COLOUR, HEALTHY_OUTLINE_COLOUR = (0.95, 0.3, 0.2), (0.0, 0.9, 1.0)
LABEL_GAP_MM = 4.0  # between the spine and its level labels
#: Fixed margins of the vertebra figures (a layout engine would cost more than the drawing).
TITLE = {"fontsize": 9, "y": 1.01}  # placed: matplotlib need not measure the ticks to place it
FIGURE_MARGINS = {"left": 0.09, "right": 0.98, "bottom": 0.13, "top": 0.92, "wspace": 0.08}


def window_range(window: Window) -> tuple[float, float]:
    """(vmin, vmax) in HU of a preset name or a (width, level) pair."""
    width, level = WINDOWS[window] if isinstance(window, str) else (float(window[0]), float(window[1]))
    if width <= 0:
        raise ValueError(f"a window's width must be positive; got {width}")
    return level - width / 2, level + width / 2


def zoom_limits(lo: float, hi: float, centre: float | None, zoom: float) -> tuple[float, float]:
    """The view range along one axis at ``zoom`` (1: all of ``lo``-``hi``), around ``centre`` and
    kept inside ``lo``-``hi``."""
    if zoom < 1:
        raise ValueError(f"zoom is 1 or more; got {zoom}")
    half = (hi - lo) / (2 * zoom)
    c = (lo + hi) / 2 if centre is None else float(np.clip(centre, lo + half, hi - half))
    return c - half, c + half


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
    return volume.array[(slice(None),) * axis + (index,)]  # a view, not a copy


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


def label_centres(images: StudyImages) -> dict[int, np.ndarray]:
    """Each labelled vertebra's centre (of its bounding box) as a voxel index of the display grid,
    for zooming to it."""
    grid, mask = images.display, images.mask
    if grid is None or mask is None:
        return {}
    boxes = ndimage.find_objects(mask.array.astype(np.int32, copy=False))
    centres = {lab + 1: np.array([(b.start + b.stop - 1) / 2 for b in box]) for lab, box in enumerate(boxes)
               if box is not None}
    return {lab: grid.world_to_voxel(mask.voxel_to_world(c)) for lab, c in centres.items()}


@functools.cache
def _label_colours() -> np.ndarray:
    return matplotlib.colormaps["tab20"](np.arange(256) % 20)


@dataclass(frozen=True)
class LabelMark:
    """Where a level label goes: ``text`` (x, y mm) beside the spine, a leader line to ``anchor``
    (the vertebra's edge on that side), ``ha`` its horizontal alignment on screen."""

    label: int
    anchor: tuple[float, float]
    text: tuple[float, float]
    ha: str


def _spread(ys: list[float], gap: float) -> list[float]:
    """``ys`` (sorted) moved apart to at least ``gap``, pushing upwards."""
    out: list[float] = []
    for y in ys:
        out.append(max(y, out[-1] + gap) if out else y)
    return out


def label_marks(labels: np.ndarray, spacing: tuple[float, float], view_x: tuple[float, float],
                view_y: tuple[float, float], gap_mm: float = LABEL_GAP_MM) -> list[LabelMark]:
    """Level labels in a column beside the labelled spine of a slice, not over it.

    Args:
        labels: the mask's labels on the slice, shape (nx, ny) (x: the slice's first axis).
        spacing: mm per pixel along x and y.
        view_x, view_y: the visible range (mm, increasing) of each axis.
        gap_mm: space between the spine and the labels.

    The column goes on the side of the spine with more room in view (either side in the
    radiological display); the labels keep the vertebrae's order, spread apart so they never
    overlap (at least 4 % of the view's height). Vertebrae whose centre is out of view get none.
    """
    present = [int(x) for x in np.unique(labels) if x > 0]
    if not present:
        return []
    xs = np.flatnonzero((labels > 0).any(axis=1)) * spacing[0]
    lo, hi = float(xs.min()), float(xs.max())
    low_side = (lo - view_x[0]) >= (view_x[1] - hi)  # more room at low x
    x_text = lo - gap_mm if low_side else hi + gap_mm
    x_text = float(np.clip(x_text, view_x[0], view_x[1]))
    marks = []
    for lab in present:
        pts = np.argwhere(labels == lab)
        y = float(pts[:, 1].mean() * spacing[1])
        edge = pts[:, 0].min() if low_side else pts[:, 0].max()
        if view_y[0] <= y <= view_y[1]:  # zoomed: only the vertebrae in view
            marks.append((y, lab, float(edge * spacing[0])))
    marks.sort()
    ys = _spread([m[0] for m in marks], 0.04 * (view_y[1] - view_y[0]))
    # ha on screen: x is drawn reversed, so low x lies on the right and its text runs rightwards
    ha = "left" if low_side else "right"
    return [LabelMark(lab, (edge, y0), (x_text, y), ha) for (y0, lab, edge), y in zip(marks, ys)]


def _grid_extent(grid: Volume, plane: str) -> tuple[float, float, float, float]:
    other = [a for a in range(3) if a != PLANES[plane]]
    sx, sy = grid.spacing_mm[other[0]], grid.spacing_mm[other[1]]
    nx, ny = grid.shape[other[0]], grid.shape[other[1]]
    return -0.5 * sx, (nx - 0.5) * sx, -0.5 * sy, (ny - 0.5) * sy


#: Screen letters of each plane's (left, right, top, bottom) edge.
EDGE_LETTERS: dict[str, tuple[str, str, str, str]] = {
    "sagittal": ("A", "P", "S", "I"), "coronal": ("R", "L", "S", "I"), "axial": ("R", "L", "A", "P")}
MAX_ASPECT = 1.6  # a slice taller than this (height / width) is padded at the sides


@dataclass(frozen=True)
class PlaneView:
    """Where a slice's mm coordinates (x, y: the slice's two axes, as in :func:`focus_on`) land
    on its image: x runs right-to-left (radiological display), y bottom-to-top (superior up).

    ``view`` (x0, x1, y0, y1) is the visible range in mm, ``scale`` pixels per mm (the same along
    both axes: the voxel spacing gives the aspect), ``offset_px`` the padding left of the slice,
    ``size_px`` (width, height) of the whole image.
    """

    plane: str
    index: int
    view: tuple[float, float, float, float]
    scale: float
    offset_px: float
    size_px: tuple[int, int]

    def to_px(self, x_mm, y_mm):
        """Image pixel (column, row; 0 at the top-left edge) of a point in mm."""
        return self.offset_px + (self.view[1] - x_mm) * self.scale, (self.view[3] - y_mm) * self.scale

    def to_mm(self, px, py):
        """The point in mm under image pixel (column, row); inverse of :meth:`to_px`."""
        return self.view[1] - (px - self.offset_px) / self.scale, self.view[3] - py / self.scale


def plane_view(images: StudyImages, plane: str, index: int, width_px: int = 600, zoom: float = 1.0,
               focus_mm: tuple[float, float] | None = None) -> PlaneView:
    """The geometry of a slice's image ``width_px`` wide, zoomed around ``focus_mm``."""
    extent = _grid_extent(images.display, plane)
    focus = focus_mm or (None, None)
    view = (*zoom_limits(extent[0], extent[1], focus[0], zoom), *zoom_limits(extent[2], extent[3], focus[1], zoom))
    width_mm, height_mm = view[1] - view[0], view[3] - view[2]
    scale = width_px / width_mm
    if height_mm * scale > MAX_ASPECT * width_px:  # tall: fit the height, pad the sides
        scale = MAX_ASPECT * width_px / height_mm
    content = width_mm * scale
    return PlaneView(plane, index, view, scale, max(0.0, (width_px - content) / 2),
                     (max(width_px, int(round(content))), int(round(height_mm * scale))))


@dataclass(frozen=True)
class SliceImage:
    """A rendered slice: ``png``, its geometry ``view``, ``title``, the level labels written on
    it and ``boxes``: (label, (left, top, right, bottom) pixels) of each level name drawn."""

    png: bytes
    view: PlaneView
    title: str
    labels: tuple[str, ...]
    boxes: tuple[tuple[int, tuple[float, float, float, float]], ...] = ()


_FONT_DIR = Path(matplotlib.get_data_path()) / "fonts" / "ttf"


@functools.cache
def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    return ImageFont.truetype(str(_FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")), size)


def _resample(values: np.ndarray, spacing: tuple[float, float], pv: PlaneView, resample: int):
    """A slice (nx, ny) as a Pillow image of ``pv``'s visible part (8-bit values), radiological
    (high x on the left, high y on the top), with Pillow's ``resample`` filter."""
    from PIL import Image

    nx, ny = values.shape
    shown = Image.fromarray(np.ascontiguousarray(values.T[::-1, ::-1]))
    x0, x1, y0, y1 = pv.view
    box = (nx - 0.5 - x1 / spacing[0], ny - 0.5 - y1 / spacing[1], nx - 0.5 - x0 / spacing[0],
           ny - 0.5 - y0 / spacing[1])
    return shown.resize((int(round((x1 - x0) * pv.scale)), pv.size_px[1]), resample, box=box)


def render_slice(
    images: StudyImages, plane: str, index: int, window: Window = "bone", show_mask: bool = True,
    show_labels: bool = True, grades: dict[int, int | None] | None = None, *, names: dict[int, str] | None = None,
    zoom: float = 1.0, focus_mm: tuple[float, float] | None = None, width_px: int = 600,
) -> SliceImage:
    """One CT slice (or the mask alone) with the labelled overlay, windowed with NumPy and drawn
    with Pillow (no plotting library: tens of ms).

    Radiological display (patient right / anterior on the left, superior up), square pixels in mm
    (the voxel spacing gives the aspect), level names in a column beside the spine with leader
    lines (:func:`label_marks`) coloured by grade, the edges' orientation letters in yellow.

    Args:
        window: a preset name (``WINDOWS``) or (width, level) in HU.
        grades: label -> grade, written beside the level name in the grade's colour.
        names: label -> the name to show (a reviewer's relabelling); default VerSe's.
        zoom: 1 shows the whole slice; 2 half of each axis, around ``focus_mm``.
        focus_mm: the point (mm along the slice's two axes) to zoom to; default the middle.
        width_px: the image's width.
    """
    from PIL import Image, ImageDraw

    grid = images.display
    if grid is None:
        raise ValueError("no image to draw: neither a CT nor a mask")
    axis = PLANES[plane]
    index = int(np.clip(index, 0, grid.shape[axis] - 1))
    other = [a for a in range(3) if a != axis]
    spacing = (float(grid.spacing_mm[other[0]]), float(grid.spacing_mm[other[1]]))
    pv = plane_view(images, plane, index, width_px, zoom, focus_mm)
    w, h = pv.size_px
    if images.ct is not None:
        vmin, vmax = window_range(window)
        grey = np.clip((_slice(images.ct, plane, index) - vmin) * (255.0 / (vmax - vmin)), 0, 255).astype(np.uint8)
    else:
        grey = np.zeros((grid.shape[other[0]], grid.shape[other[1]]), np.uint8)
    rgb = np.asarray(_resample(grey, spacing, pv, Image.Resampling.BILINEAR).convert("RGB"), dtype=np.float32)
    labels = labels_on_slice(images, plane, index)
    if labels is not None and show_mask:
        on = np.asarray(_resample(labels.astype(np.uint8), spacing, pv, Image.Resampling.NEAREST)).astype(np.intp)
        alpha = np.where(on > 0, 0.35 if images.ct is not None else 0.9, 0.0)[..., None].astype(np.float32)
        rgb = rgb * (1 - alpha) + 255 * _label_colours()[on][..., :3].astype(np.float32) * alpha
    image = Image.new("RGBA", (w, h), (0, 0, 0, 255))
    image.paste(Image.fromarray(rgb.astype(np.uint8), "RGB"), (int(round(pv.offset_px)), 0))
    layer = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    shown: list[str] = []
    boxes: list[tuple[int, tuple[float, float, float, float]]] = []
    if labels is not None and show_labels:
        font, names, grades = _font(max(11, w // 46), bold=True), names or {}, grades or {}
        for m in label_marks(labels, spacing, pv.view[:2], pv.view[2:]):
            text = names.get(m.label, VERSE_NAMES.get(m.label, str(m.label)))
            grade = grades.get(m.label)
            colour = GRADE_COLOURS.get(grade, "#ffffff") if grade is not None else "#ffffff"
            if grade is not None:
                text += f" G{grade}"
            shown.append(text)
            at, align = pv.to_px(*m.text), "lm" if m.ha == "left" else "rm"  # "left": the text starts at x
            draw.line([pv.to_px(*m.anchor), at], fill=colour, width=1)
            box = draw.textbbox(at, text, font=font, anchor=align)
            box = (box[0] - 2, box[1] - 2, box[2] + 2, box[3] + 2)
            boxes.append((m.label, tuple(float(v) for v in box)))
            draw.rectangle(box, fill=(0, 0, 0, 153))
            draw.text(at, text, fill=colour, font=font, anchor=align)
    small = _font(max(10, w // 50))
    left, right, top, bottom = EDGE_LETTERS[plane]
    for xy, s in (((0.02 * w, h / 2), left), ((0.98 * w, h / 2), right), ((w / 2, 0.03 * h), top),
                  ((w / 2, 0.97 * h), bottom)):
        draw.text(xy, s, fill="yellow", font=small, anchor="mm")
    buf = io.BytesIO()
    Image.alpha_composite(image, layer).convert("RGB").save(buf, format="PNG", compress_level=1)
    zoomed = f" · zoom {zoom:g}x" if zoom > 1 else ""
    return SliceImage(buf.getvalue(), pv, f"{plane} {index + 1}/{grid.shape[axis]}{zoomed}", tuple(shown),
                      tuple(boxes))


def label_at(images: StudyImages, drawn: SliceImage, px: float, py: float, max_mm: float = 30.0) -> int | None:
    """The vertebra a click at image pixel (``px``, ``py``) of a drawn slice points at: the one
    whose level name was clicked, else the one under the click, else the one whose centre is
    nearest on the slice's plane (within ``max_mm``); None off the spine (or without a mask).

    The pixel is mapped back through the slice's geometry (``drawn.view``): zoom, the
    radiological flip and the voxel spacing are undone.
    """
    for label, (x0, y0, x1, y1) in drawn.boxes:
        if x0 <= px <= x1 and y0 <= py <= y1:
            return label
    grid, pv = images.display, drawn.view
    labels = labels_on_slice(images, pv.plane, pv.index)
    if grid is None or labels is None:
        return None
    other = [a for a in range(3) if a != PLANES[pv.plane]]
    spacing = np.array([grid.spacing_mm[other[0]], grid.spacing_mm[other[1]]], float)
    at = np.array(pv.to_mm(px, py))
    i, j = np.rint(at / spacing).astype(int)
    if 0 <= i < labels.shape[0] and 0 <= j < labels.shape[1] and labels[i, j] > 0:
        return int(labels[i, j])
    centres = label_centres(images)
    if not centres:
        return None
    found = {lab: float(np.hypot(*(np.array([c[other[0]], c[other[1]]]) * spacing - at))) for lab, c in centres.items()}
    nearest = min(found, key=found.get)
    return nearest if found[nearest] <= max_mm else None


def focus_on(images: StudyImages, plane: str, voxel: np.ndarray | None) -> tuple[float, float] | None:
    """A display-grid voxel as the (x, y) mm of ``plane``'s slices (for ``render_slice``'s focus)."""
    grid = images.display
    if grid is None or voxel is None:
        return None
    other = [a for a in range(3) if a != PLANES[plane]]
    return (float(voxel[other[0]] * grid.spacing_mm[other[0]]), float(voxel[other[1]] * grid.spacing_mm[other[1]]))


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
    """Height (mm) of each (LR, AP) column of a body crop, from its first to its last body voxel
    along SI (as the measurement counts a column past a concave wall: endplate to endplate)."""
    present, first, last = column_extent(body.array > 0)
    return np.where(present, last - first + 1, 0) * body.spacing_mm[2]


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


def mid_sagittal(crops: dict[str, Crop]) -> dict[str, np.ndarray]:
    """The mid-sagittal plane (through the real body's LR centre) of each crop, shape (n_ap, n_si)."""
    ref = crops["original"]
    lr = ref.array.shape[0] // 2
    if (ref.array > 0).any():
        lr = int(round(np.argwhere(ref.array > 0)[:, 0].mean()))
    return {k: c.array[min(lr, c.array.shape[0] - 1)] for k, c in crops.items()}


def draw_body_overlay(ax, real: np.ndarray, healthy: np.ndarray | None, extent: tuple, on_ct: bool = True) -> None:
    """The real body as a translucent fill and the pseudo-healthy body as an outline (a contour,
    never a second fill) over it; arrays (n_ap, n_si)."""
    body = real.T > 0
    rgba = np.zeros((*body.shape, 4))
    rgba[..., :3] = REAL_BODY_COLOUR
    rgba[..., 3] = np.where(body, 0.35 if on_ct else 0.8, 0)
    ax.imshow(rgba, origin="lower", extent=extent, interpolation="nearest")
    if healthy is not None and (healthy > 0).any():
        ax.contour((healthy.T > 0).astype(float), levels=[0.5], colors=[HEALTHY_OUTLINE_COLOUR], linewidths=1.6,
                   linestyles="--", extent=extent, origin="lower")


def straightened_panels(sections: dict[str, np.ndarray], spacing_mm: tuple[float, float], name: str) -> Figure:
    """The straightened CT (bone window) beside the same plane with the real body filled and the
    pseudo-healthy body outlined; ``sections`` from :func:`mid_sagittal`, ``spacing_mm`` (AP, SI)."""
    sa, ss = spacing_mm
    ref = sections["original"]
    extent = (-0.5 * sa, (ref.shape[0] - 0.5) * sa, -0.5 * ss, (ref.shape[1] - 0.5) * ss)
    fig = Figure(figsize=(7.6, 4.2))
    axes = fig.subplots(1, 2, sharey=True, gridspec_kw=FIGURE_MARGINS)
    vmin, vmax = window_range("bone")
    for ax in axes:
        if "ct" in sections:
            ax.imshow(sections["ct"].T, cmap="gray", origin="lower", extent=extent, vmin=vmin, vmax=vmax)
        ax.set_xlim(extent[1], extent[0])  # anterior on the left
        ax.set_aspect("equal")
        ax.set_xlabel("A  <-  AP (mm)  ->  P", fontsize=8)
    draw_body_overlay(axes[1], ref, sections.get("pseudo_healthy"), extent, on_ct="ct" in sections)
    axes[0].set_title(f"{name} straightened CT", **TITLE)
    axes[1].set_title(f"{name}: real body (fill), pseudo-healthy (dashed outline)", **TITLE)
    axes[0].set_ylabel("SI (mm), straightened", fontsize=8)
    return fig


def straightened_figure(study: Study, name: str) -> Figure | None:
    """:func:`straightened_panels` of a vertebra's crops (None without its original body crop)."""
    paths = {k: study.crop(name, k) for k in ("original", "pseudo_healthy", "ct")}
    if paths["original"] is None:
        return None
    crops = {k: read_crop(p) for k, p in paths.items() if p is not None}
    spacing = crops["original"].spacing_mm
    return straightened_panels(mid_sagittal(crops), (spacing[1], spacing[2]), name)


def height_profile_figure(study: Study, name: str) -> Figure | None:
    """Height (mm) against AP position for the original and the pseudo-healthy body."""
    orig, healthy = study.crop(name, "original"), study.crop(name, "pseudo_healthy")
    if orig is None:
        return None
    prof = height_profile(read_crop(orig), read_crop(healthy) if healthy else None)
    fig = Figure(figsize=(5.0, 2.8))
    ax = fig.subplots(gridspec_kw={**FIGURE_MARGINS, "left": 0.12, "bottom": 0.17})
    ax.plot(prof["ap_mm"], prof["original"], color="#d84315", label="original")
    ax.plot(prof["ap_mm"], prof["pseudo_healthy"], color="#1e88e5", ls="--", label="pseudo-healthy")
    ax.fill_between(prof["ap_mm"], prof["original"], prof["pseudo_healthy"],
                    where=np.isfinite(prof["original"]) & np.isfinite(prof["pseudo_healthy"]),
                    color="#d84315", alpha=0.15, label="height loss")
    ax.invert_xaxis()  # anterior on the left, as in the sagittal views
    ax.set_xlabel("anterior  <-  AP position (mm)  ->  posterior")
    ax.set_ylabel("body height (mm)")
    ax.set_title(f"{name}: height profile (central {CENTRAL_LR_FRACTION:.0%} of LR)", **TITLE)
    ax.legend(fontsize=8, loc="lower center")  # a fixed place: "best" costs a search
    ax.grid(alpha=0.3)
    return fig


def diverging_norm(values: np.ndarray, floor: float, cap: float | None = None, percentile: float = 98.0) -> Normalize:
    """A colour scale symmetric about zero (zero maps to the colour map's neutral middle), as wide
    as the ``percentile`` of ``|values|`` (NaN ignored; a few wall columns with extreme values
    do not wash the map out), at least +-``floor`` and at most +-``cap``."""
    finite = np.abs(np.asarray(values, float)[np.isfinite(values)])
    vmax = max(floor, float(np.percentile(finite, percentile))) if finite.size else floor
    return Normalize(-min(vmax, cap) if cap else -vmax, min(vmax, cap) if cap else vmax)


@dataclass(frozen=True)
class LossMap:
    """A height-loss map viewed from above: ``mm`` and ``fraction`` (n_lr, n_ap), NaN off the body;
    ``spacing_mm`` (LR, AP)."""

    mm: np.ndarray
    fraction: np.ndarray | None
    spacing_mm: tuple[float, float]


def _map_panel(fig, ax, values: np.ndarray, extent: tuple, norm: Normalize, label: str, title: str):
    im = ax.imshow(values.T, origin="lower", extent=extent, cmap=LOSS_CMAP, norm=norm, interpolation="nearest")
    ax.set_xlim(extent[1], extent[0])  # patient right on the left
    ax.set_aspect("equal")
    ax.set_xlabel("R  <-  LR (mm)  ->  L", fontsize=8)
    ax.set_title(title, **TITLE)
    return fig.colorbar(im, ax=ax, label=label, shrink=0.9, extend="both")


def _body_box(values: np.ndarray, margin: int = 3) -> tuple[slice, slice]:
    """The rows and columns around the finite (on-body) part of a map, with a margin."""
    idx = np.argwhere(np.isfinite(values))
    if idx.size == 0:
        return slice(None), slice(None)
    lo, hi = np.maximum(idx.min(axis=0) - margin, 0), idx.max(axis=0) + margin + 1
    return slice(int(lo[0]), int(hi[0])), slice(int(lo[1]), int(hi[1]))


def loss_map_panels(loss: LossMap, name: str) -> Figure:
    """The map in mm and in % of the pseudo-healthy height, each on a diverging scale centred on
    zero (blue: taller than pseudo-healthy, red: height lost); the % scale marks the Genant
    thresholds."""
    sx, sy = loss.spacing_mm
    box = _body_box(loss.mm)
    mm = loss.mm[box]
    x0, y0 = box[0].start or 0, box[1].start or 0
    extent = ((x0 - 0.5) * sx, (x0 + mm.shape[0] - 0.5) * sx, (y0 - 0.5) * sy, (y0 + mm.shape[1] - 0.5) * sy)
    panels = 2 if loss.fraction is not None else 1
    fig = Figure(figsize=(4.6 * panels, 4.0))
    axes = fig.subplots(1, panels, squeeze=False, gridspec_kw={**FIGURE_MARGINS, "wspace": 0.45})
    _map_panel(fig, axes[0, 0], mm, extent, diverging_norm(mm, 5.0), "height loss (mm)",
               f"{name}: height loss (mm)")
    axes[0, 0].set_ylabel("posterior  <-  AP (mm)  ->  anterior", fontsize=8)
    if loss.fraction is not None:
        pct = 100 * loss.fraction[box]
        bar = _map_panel(fig, axes[0, 1], pct, extent, diverging_norm(pct, 50.0, cap=100.0),
                         "height loss (% of pseudo-healthy)", f"{name}: height loss (%)")
        marks = [100 * t for t in THRESHOLDS]
        for t in marks:
            bar.ax.axhline(t, color="black", lw=0.8)
        lo, hi = bar.norm.vmin, bar.norm.vmax
        bar.set_ticks(sorted({float(t) for t in np.round(bar.get_ticks(), 1) if lo <= t <= hi} | set(marks)))
    return fig


def _read_map(path: Path) -> tuple[np.ndarray, tuple[float, float]]:
    image = sitk.ReadImage(str(path))
    return np.transpose(sitk.GetArrayFromImage(image), (2, 1, 0))[:, :, 0].astype(float), image.GetSpacing()[:2]


def read_loss_map(study: Study, name: str) -> LossMap | None:
    """A vertebra's height-loss maps (mm, and fraction when written), off-body columns NaN."""
    path = study.loss_map(name, "mm")
    if path is None:
        return None
    mm, spacing = _read_map(path)
    frac_path = study.loss_map(name, "fraction")
    fraction = _read_map(frac_path)[0] if frac_path is not None else None
    footprint = mm != 0
    orig = study.crop(name, "original")
    if orig is not None:
        crop = read_crop(orig)
        if crop.array.shape[:2] == mm.shape:
            footprint = (crop.array > 0).any(axis=2)
    if fraction is not None and fraction.shape != mm.shape:
        fraction = None
    off = ~footprint
    return LossMap(np.where(off, np.nan, mm), None if fraction is None else np.where(off, np.nan, fraction),
                   (float(spacing[0]), float(spacing[1])))


def loss_map_figure(study: Study, name: str) -> Figure | None:
    """:func:`loss_map_panels` of a vertebra's maps read from their NIfTI files (None without)."""
    loss = read_loss_map(study, name)
    return None if loss is None else loss_map_panels(loss, name)


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """PNG bytes of a figure, drawn on its own Agg canvas (pyplot keeps no reference to it)."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()
