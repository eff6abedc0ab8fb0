"""Rasterise a phantom spine into a CT (HU), a vertebra mask and a body mask.

Tissues are painted at voxel centres on a fine grid (slices at most 1 mm apart), blurred by
a Gaussian point-spread function and decimated to the study's slice spacing, so thick
slices carry a real slice profile; labels are taken at the final voxel centres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from healthivert.phantom.anatomy import VertebraShape, posterior_elements
from healthivert.phantom.fracture import Fracture, endplates
from healthivert.phantom.spine import Centreline

HU = {
    "air": -1000.0, "fat": -100.0, "muscle": 45.0, "lung": -850.0, "disc": 90.0, "csf": 15.0,
    "cortical": 850.0, "posterior": 650.0, "rib": 600.0,
}


@dataclass(frozen=True)
class Texture:
    """Real-like tissue texture (``PhantomConfig.real_contrast``): one spatially correlated
    Gaussian field (correlation ``correlation_mm``, a Gaussian kernel's sigma in mm) of unit
    SD, scaled to ``bone_sd_hu`` on bone and ``soft_sd_hu`` on soft tissue (-200..300 HU)."""

    bone_sd_hu: float
    soft_sd_hu: float
    correlation_mm: float


@dataclass(frozen=True)
class PlacedVertebra:
    """A vertebra in the world: shape, fracture, body centre (RAS mm), local axes, HU."""

    shape: VertebraShape
    fracture: Fracture | None
    centre: np.ndarray
    axes: np.ndarray  # columns: right, anterior, superior
    trabecular_hu: float
    disc_above: float


@dataclass(frozen=True)
class Grid:
    """An axis-aligned RAS grid: voxel (i, j, k) sits at origin + (i, j, k) * spacing (mm)."""

    origin: np.ndarray
    spacing: np.ndarray
    shape: tuple[int, int, int]

    @property
    def affine(self) -> np.ndarray:
        aff = np.diag([*self.spacing, 1.0])
        aff[:3, 3] = self.origin
        return aff

    def axis(self, k: int) -> np.ndarray:
        return self.origin[k] + self.spacing[k] * np.arange(self.shape[k])


def _box(grid: Grid, centre: np.ndarray, half: np.ndarray) -> tuple[slice, slice, slice]:
    lo = np.floor((centre - half - grid.origin) / grid.spacing).astype(int)
    hi = np.ceil((centre + half - grid.origin) / grid.spacing).astype(int) + 1
    return tuple(slice(max(0, a), min(n, b)) for a, b, n in zip(lo, hi, grid.shape))  # type: ignore[return-value]


def _local_coords(
    grid: Grid, box: tuple[slice, ...], v: PlacedVertebra
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(l, a, u) local coordinates (mm) of the voxels in ``box``, as three float32 arrays."""
    xs, ys, zs = ((grid.axis(k)[box[k]] - v.centre[k]).astype(np.float32) for k in range(3))
    r = v.axes.astype(np.float32)
    return tuple(  # type: ignore[return-value]
        xs[:, None, None] * r[0, i] + ys[None, :, None] * r[1, i] + zs[None, None, :] * r[2, i]
        for i in range(3)
    )


def paint_background(grid: Grid, curve: Centreline, diaphragm_z: float | None,
                     tone: dict[str, float] | None = None) -> np.ndarray:
    """Air, torso (fat ring over muscle) and, above the diaphragm, lungs (HU); ``tone``
    overrides the HU of ``HU``."""
    tone = {**HU, **(tone or {})}
    x, y, z = (grid.axis(k) for k in range(3))
    xs, ys = curve.xy_at_z(z)
    dx = x[:, None, None] - xs[None, None, :]
    dy = y[None, :, None] - ys[None, None, :]
    torso = (dx / 160.0) ** 2 + ((dy - 50.0) / 125.0) ** 2
    hu = np.where(torso <= 1.0, tone["muscle"], tone["air"]).astype(np.float32)
    hu[(torso <= 1.0) & (torso > 0.86)] = tone["fat"]
    if diaphragm_z is not None:
        above = (z > diaphragm_z)[None, None, :]
        for side in (-1.0, 1.0):
            lung = ((dx - side * 72.0) / 52.0) ** 2 + ((dy - 40.0) / 62.0) ** 2 <= 1.0
            hu[lung & above] = tone["lung"]
    return hu


def paint_vertebra_soft(hu: np.ndarray, grid: Grid, v: PlacedVertebra, tone: dict[str, float] | None = None) -> None:
    """Discs above and below and the canal's contents around one vertebra; ``tone`` overrides
    the HU of ``HU``."""
    tone = {**HU, **(tone or {})}
    s = v.shape
    reach = s.height / 2 + max(v.disc_above, s.disc_below) + 4
    box = _box(grid, v.centre, np.array([s.width, s.depth + 30, reach + 5]))
    l, a, u = _local_coords(grid, box, v)
    big = ((a / (s.depth / 2 * 1.03)) ** 2 + (l / (s.width / 2 * 1.03)) ** 2 <= 1) & (a >= s.posterior_wall)
    zone = big & (u <= s.height / 2 + 0.65 * v.disc_above + 1) & (u >= -s.height / 2 - 0.65 * s.disc_below - 1)
    canal = ((l / s.canal_lr) ** 2 + ((a - s.posterior_wall + s.canal_ap) / s.canal_ap) ** 2 <= 1) & (
        np.abs(u) <= reach
    )
    view = hu[box]
    view[zone] = tone["disc"]
    view[canal] = tone["csf"]


def paint_vertebra_bone(
    hu: np.ndarray, label: np.ndarray, body: np.ndarray, grid: Grid, v: PlacedVertebra,
    mask_label: int, ribs: bool, bone_hu: dict[str, float] | None = None, bone: np.ndarray | None = None,
) -> None:
    """Body (cortical shell over trabecular bone), posterior elements and ribs of one vertebra;
    ``bone_hu`` overrides the cortical / posterior / rib HU of ``HU``; ``bone`` (bool, the
    grid's shape), when given, is set wherever bone is painted."""
    tone = {**HU, **(bone_hu or {})}
    s = v.shape
    half = np.array([s.width / 2 + (75 if ribs else 40), s.depth + 60, s.height / 2 + 30])
    box = _box(grid, v.centre, half)
    lau = _local_coords(grid, box, v)
    l, a, u = lau
    inside, top, bottom = endplates(s, v.fracture, a, l)
    in_body = inside & (u <= top) & (u >= bottom)
    rho = np.sqrt((a / (s.depth / 2)) ** 2 + (l / (s.width / 2)) ** 2)
    depth_mm = np.minimum.reduce([top - u, u - bottom, (1 - rho) * min(s.depth, s.width) / 2,
                                  a - s.posterior_wall])
    part, rib = posterior_elements(s, lau, ribs)
    part &= ~in_body
    view_hu, view_label, view_body = hu[box], label[box], body[box]
    view_hu[rib] = tone["rib"]
    view_hu[part] = tone["posterior"]
    view_hu[in_body] = np.where(depth_mm[in_body] < 1.0, tone["cortical"], v.trabecular_hu)
    view_label[part | in_body] = mask_label
    view_body[in_body] = mask_label
    if bone is not None:
        bone[box] |= rib | part | in_body


def _ellipsoid_bone(hu: np.ndarray, label: np.ndarray, grid: Grid, v: PlacedVertebra, centre: np.ndarray,
                    semi: np.ndarray, mask_label: int, side: float = 1.0, cortical_hu: float = 0.8 * HU["cortical"],
                    bone: np.ndarray | None = None) -> None:
    """An ellipsoid of bone in ``v``'s frame (centre and semi-axes as (l, a, u) mm; ``side``
    mirrors l): a 1.5 mm cortical shell (``cortical_hu``) over trabecular bone, labelled
    ``mask_label``; ``bone``, when given, is set where it is painted."""
    local = np.asarray(centre, float) * np.array([side, 1.0, 1.0])
    world = v.centre + v.axes @ local
    box = _box(grid, world, np.full(3, float(np.max(semi)) + 2.0))
    l, a, u = _local_coords(grid, box, v)
    r = np.sqrt(((l - local[0]) / semi[0]) ** 2 + ((a - local[1]) / semi[1]) ** 2 + ((u - local[2]) / semi[2]) ** 2)
    inside = r <= 1.0
    shell = inside & (r > 1.0 - 1.5 / float(np.min(semi)))
    view_hu, view_label = hu[box], label[box]
    view_hu[inside] = np.where(shell[inside], cortical_hu, v.trabecular_hu)
    view_label[inside] = mask_label
    if bone is not None:
        bone[box] |= inside


def paint_pelvis(hu: np.ndarray, label: np.ndarray, grid: Grid, sacrum: PlacedVertebra, sacrum_label: int,
                 cortical_hu: float = 0.8 * HU["cortical"], bone: np.ndarray | None = None) -> None:
    """Alae and the lower sacrum (S2-S4, curving back), labelled as the sacrum, and the iliac
    wings beside them (bone, background label): a real sacrum is no tilted lumbar body, and
    the pelvis is bone a segmenter must leave out. Shells read ``cortical_hu``; ``bone``, when
    given, is set where bone is painted."""
    s = sacrum.shape
    kw = {"cortical_hu": cortical_hu, "bone": bone}
    for side in (-1.0, 1.0):
        _ellipsoid_bone(hu, label, grid, sacrum, np.array([s.width / 2 + 10, -4.0, 2.0]),
                        np.array([16.0, 13.0, s.height / 2]), sacrum_label, side, **kw)
        _ellipsoid_bone(hu, label, grid, sacrum, np.array([s.width / 2 + 32, -8.0, 18.0]),
                        np.array([7.0, 38.0, 42.0]), 0, side, **kw)
    for k in (1, 2, 3):
        _ellipsoid_bone(hu, label, grid, sacrum, np.array([0.0, -7.0 * k, -s.height / 2 - 14.0 * k]),
                        np.array([s.width / 2 * (1 - 0.2 * k), 12.0 - 2 * k, 8.0]), sacrum_label, **kw)


def finish_ct(
    hu_fine: np.ndarray, fine: Grid, z_factor: int, blur_mm: float, noise_hu: float,
    rng: np.random.Generator, bone: np.ndarray | None = None, texture: Texture | None = None,
) -> np.ndarray:
    """Trabecular texture, point-spread blur, slice decimation and noise; int16 HU.

    By default the texture is white noise smoothed over 0.8 voxel, times 120 HU, wherever the
    painted HU exceed 100. With ``texture`` (real-like contrast) the field is smoothed over
    ``texture.correlation_mm``, scaled to unit SD and then to its bone and soft-tissue SDs;
    ``bone`` (bool, the fine grid's shape) says where bone was painted (dim real trabecular
    bone reads below 100 HU). Either way the same random numbers are drawn."""
    white = rng.standard_normal(hu_fine.shape).astype(np.float32)
    if texture is None:
        bone = hu_fine > 100
        hu_fine = hu_fine + bone * ndimage.gaussian_filter(white, 0.8) * 120.0
    else:
        bone = hu_fine > 100 if bone is None else bone
        field = ndimage.gaussian_filter(white, texture.correlation_mm / fine.spacing)
        field /= max(float(field[::3, ::3, ::3].std()), 1e-6)
        soft = ~bone & (hu_fine > -200) & (hu_fine < 300)
        hu_fine = hu_fine + field * (bone * np.float32(texture.bone_sd_hu) + soft * np.float32(texture.soft_sd_hu))
    sigma = [blur_mm / fine.spacing[0], blur_mm / fine.spacing[1],
             max(blur_mm, 0.42 * fine.spacing[2] * z_factor) / fine.spacing[2]]
    blurred = ndimage.gaussian_filter(hu_fine, sigma)
    ct = blurred[:, :, z_factor // 2::z_factor]
    ct = ct + rng.normal(0.0, noise_hu, ct.shape).astype(np.float32)
    return np.clip(np.round(ct), -1024, 3071).astype(np.int16)
