"""A volume that carries its geometry: voxel array in RAS+ axis order and its affine in mm.

Internally every image is held with array axis 0 pointing Right, axis 1 Anterior and
axis 2 Superior (RAS+, what MONAI's ``Orientationd(axcodes="RAS")`` gives), and ``affine``
maps voxel indices to RAS world millimetres (the NIfTI / nibabel convention). The geometry
of the file it came from (``source``) is kept so results can be written back on the input's
own grid and overlay on it in ITK-SNAP or 3D Slicer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import SimpleITK as sitk

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0])


@dataclass(frozen=True)
class SourceGeometry:
    """Grid of the file an image was read from (SimpleITK / LPS conventions)."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: tuple[float, ...]

    @property
    def orientation(self) -> str:
        """Axis codes of the source grid, e.g. ``"IPL"`` (nibabel's "towards" convention)."""
        return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(self.direction)

    @classmethod
    def of(cls, image: sitk.Image) -> SourceGeometry:
        return cls(
            tuple(int(s) for s in image.GetSize()),
            tuple(float(s) for s in image.GetSpacing()),
            tuple(float(s) for s in image.GetOrigin()),
            tuple(float(d) for d in image.GetDirection()),
        )

    def apply_to(self, image: sitk.Image) -> None:
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)


@dataclass(frozen=True, eq=False)
class Volume:
    """A 3-D image in RAS+ axis order.

    Attributes:
        array: voxel values, shape (nx, ny, nz), axes pointing R, A, S.
        affine: 4x4 voxel-index to RAS world (mm) matrix.
        source: the grid of the file it was read from, or None for an image made in memory.
    """

    array: np.ndarray
    affine: np.ndarray
    source: SourceGeometry | None = field(default=None)

    def __post_init__(self) -> None:
        if self.array.ndim != 3:
            raise ValueError(f"a Volume is 3-D; got shape {self.array.shape}")
        if self.affine.shape != (4, 4):
            raise ValueError(f"affine must be 4x4; got {self.affine.shape}")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape)  # type: ignore[return-value]

    @property
    def spacing_mm(self) -> np.ndarray:
        """Voxel size along the array axes (mm)."""
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    def with_array(self, array: np.ndarray) -> Volume:
        """The same geometry with other voxel values (same shape)."""
        if array.shape != self.array.shape:
            raise ValueError(f"shape {array.shape} differs from {self.array.shape}")
        return Volume(array, self.affine, self.source)

    def voxel_to_world(self, ijk: np.ndarray) -> np.ndarray:
        """Voxel indices (..., 3) to RAS world mm (..., 3)."""
        ijk = np.asarray(ijk, dtype=float)
        return ijk @ self.affine[:3, :3].T + self.affine[:3, 3]

    def world_to_voxel(self, xyz: np.ndarray) -> np.ndarray:
        """RAS world mm (..., 3) to (fractional) voxel indices (..., 3)."""
        inv = np.linalg.inv(self.affine)
        xyz = np.asarray(xyz, dtype=float)
        return xyz @ inv[:3, :3].T + inv[:3, 3]

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned RAS bounding box of the voxel centres (mm): (min, max)."""
        corners = np.array(np.meshgrid(*[[0, n - 1] for n in self.shape], indexing="ij"))
        world = self.voxel_to_world(corners.reshape(3, -1).T)
        return world.min(axis=0), world.max(axis=0)


def affine_from_sitk(image: sitk.Image) -> np.ndarray:
    """4x4 voxel-to-RAS affine of a SimpleITK image (which stores LPS geometry)."""
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    spacing = np.array(image.GetSpacing(), dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = _LPS_TO_RAS @ direction @ np.diag(spacing)
    affine[:3, 3] = _LPS_TO_RAS @ np.array(image.GetOrigin(), dtype=float)
    return affine


def sitk_from_array(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image from an (x, y, z) array and its voxel-to-RAS affine."""
    return _place(sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0)))), affine)


def empty_sitk_image(shape: tuple[int, ...], affine: np.ndarray, pixel: int = sitk.sitkUInt8) -> sitk.Image:
    """An empty SimpleITK image of (x, y, z) ``shape`` placed by a voxel-to-RAS affine: a
    reference grid for resampling or reorienting, without allocating a NumPy array."""
    return _place(sitk.Image([int(n) for n in shape], pixel), affine)


def _place(image: sitk.Image, affine: np.ndarray) -> sitk.Image:
    """Set an image's spacing, direction and origin (LPS) from a voxel-to-RAS affine."""
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = _LPS_TO_RAS @ affine[:3, :3] / spacing
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(d) for d in direction.ravel()))
    image.SetOrigin(tuple(float(o) for o in _LPS_TO_RAS @ affine[:3, 3]))
    return image


def volume_from_sitk(image: sitk.Image, keep_source: bool = True) -> Volume:
    """Reorient a SimpleITK image to RAS+ and wrap it as a :class:`Volume`."""
    source = SourceGeometry.of(image) if keep_source else None
    ras = sitk.DICOMOrient(image, "RAS")
    array = np.transpose(sitk.GetArrayFromImage(ras), (2, 1, 0))
    return Volume(array, affine_from_sitk(ras), source)


def to_source_grid(volume: Volume, interpolation: str = "nearest") -> sitk.Image:
    """The volume as a SimpleITK image on the grid of the file it was read from.

    Permuted or flipped axes are undone exactly; an oblique source grid is resampled
    (``interpolation`` "nearest" for labels, "linear" for intensities).
    """
    image = sitk_from_array(volume.array, volume.affine)
    src = volume.source
    if src is None:
        return image
    back = sitk.DICOMOrient(image, src.orientation)
    if (
        back.GetSize() == src.size
        and np.allclose(back.GetSpacing(), src.spacing, atol=1e-5)
        and np.allclose(back.GetOrigin(), src.origin, atol=1e-3)
        and np.allclose(back.GetDirection(), src.direction, atol=1e-6)
    ):
        # exact: restore the source's own float values bit for bit
        src.apply_to(back)
        return back
    reference = sitk.Image(src.size, back.GetPixelID())
    src.apply_to(reference)
    interp = sitk.sitkNearestNeighbor if interpolation == "nearest" else sitk.sitkLinear
    return sitk.Resample(back, reference, sitk.Transform(), interp, 0.0, back.GetPixelID())
