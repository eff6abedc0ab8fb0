"""Reading CTs and vertebra masks (NIfTI or a DICOM series) and writing results back.

SimpleITK reads both formats; DICOM rescale slope / intercept are applied by its series
reader, so CT values are Hounsfield units. Every failure a user can cause raises
:class:`~healthivert.errors.InputError` with a one-line message.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write
from healthivert.io.volume import Volume, sitk_from_array, to_source_grid, volume_from_sitk
from healthivert.labels import VERTEBRA_LABELS, looks_like_totalseg, totalseg_to_verse

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def _check_gzip(path: Path) -> None:
    """Read a .gz file through to its end: a truncated or corrupt one fails here, clearly."""
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def nonfinite_voxels(path: str | Path) -> int:
    """Number of NaN / infinite voxels in a floating-point NIfTI file (0 for anything else).

    ITK's NIfTI reader (niftilib) silently turns them into 0, so they are counted in the file
    itself, with nibabel; integer files (most CTs) are not read twice.
    """
    import nibabel as nib  # here: only floating-point NIfTI files need it

    path = Path(path)
    if not path.is_file() or not _is_nifti(path):
        return 0
    try:
        image = nib.load(str(path))
        if image.get_data_dtype().kind != "f":
            return 0
        return int((~np.isfinite(np.asanyarray(image.dataobj))).sum())
    except (nib.filebasedimages.ImageFileError, OSError, EOFError, ValueError):
        return 0  # unreadable for nibabel: SimpleITK's own error will say why


@contextmanager
def _itk_warnings_off() -> Iterator[None]:
    """ITK prints multi-line warnings straight to stderr ("No Series were found", "missing
    slices detected"); the callers report those cases in one line of their own."""
    shown = sitk.ProcessObject.GetGlobalWarningDisplay()
    sitk.ProcessObject.SetGlobalWarningDisplay(False)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalWarningDisplay(shown)


def dicom_series(folder: Path) -> dict[str, list[str]]:
    """The DICOM series in a folder: series UID -> its files, sorted by slice position."""
    with _itk_warnings_off():
        ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
        return {sid: list(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder), sid)) for sid in ids}


def _check_even_slices(folder: Path, reader: sitk.ImageSeriesReader, image: sitk.Image) -> None:
    """Refuse a series whose slice positions are not evenly spaced (a missing or unreadable
    slice): ITK would only warn and stack the slices at their mean step, distorting heights."""
    n = image.GetSize()[2]
    if n < 3 or n != len(reader.GetFileNames()):  # a multi-frame file has one position
        return
    if not all(reader.HasMetaDataKey(i, "0020|0032") for i in range(n)):
        return
    try:
        positions = np.array([[float(v) for v in reader.GetMetaData(i, "0020|0032").split("\\")]
                              for i in range(n)])
    except ValueError:
        return
    if positions.shape != (n, 3):
        return
    normal = np.array(image.GetDirection(), dtype=float).reshape(3, 3)[:, 2]
    steps = np.diff(positions @ normal)
    median = float(np.median(np.abs(steps)))
    if median > 0 and np.abs(np.abs(steps) - median).max() <= 0.1 * median:
        return
    raise InputError(
        f"{folder}: DICOM slices are not evenly spaced (steps {np.abs(steps).min():.3g} to "
        f"{np.abs(steps).max():.3g} mm in {n} slices): a slice is missing, duplicated or unreadable"
    )


def _read_dicom_folder(folder: Path, series_uid: str | None) -> sitk.Image:
    series = dicom_series(folder)
    if not series:
        raise InputError(f"{folder}: folder holds no DICOM series (and is not a NIfTI file)")
    if series_uid is None:
        if len(series) > 1:
            listing = ", ".join(f"{uid or '<blank>'} ({len(f)} files)" for uid, f in series.items())
            raise InputError(
                f"{folder}: holds {len(series)} DICOM series: {listing}; choose one with --series UID"
            )
        series_uid = next(iter(series))
    elif series_uid not in series:
        raise InputError(f"{folder}: no DICOM series {series_uid!r}; found {', '.join(series)}")
    files = series[series_uid]
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(files)
    reader.MetaDataDictionaryArrayUpdateOn()  # slice positions, to check their spacing
    # Spacing along the slices comes from the slice positions, not from SliceThickness
    # (which anonymised or reformatted series often get wrong).
    try:
        with _itk_warnings_off():
            image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"{folder}: cannot read DICOM series ({_first_line(exc)})") from None
    _check_even_slices(folder, reader, image)
    return image


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


def read_sitk(path: str | Path, series_uid: str | None = None) -> sitk.Image:
    """Read a NIfTI file or a DICOM series folder as a 3-D SimpleITK image."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    if path.is_dir():
        image = _read_dicom_folder(path, series_uid)
    else:
        if path.name.lower().endswith(".gz"):
            _check_gzip(path)
        if not _is_nifti(path) and not sitk.ImageFileReader().GetImageIOFromFileName(str(path)):
            raise InputError(f"{path}: not a NIfTI file or a DICOM series folder")
        try:
            image = sitk.ReadImage(str(path))
        except RuntimeError as exc:
            raise InputError(f"{path}: not a readable NIfTI/DICOM image ({_first_line(exc)})") from None
    size = image.GetSize()
    if len(size) == 4 and size[3] == 1:
        image, size = image[:, :, :, 0], size[:3]
    n_dims = sum(s > 1 for s in size)
    if len(size) != 3 or n_dims != 3:
        shape = "x".join(str(s) for s in size)
        raise InputError(f"{path}: a 3-D image is needed; got a {n_dims}-D image of size {shape}")
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise InputError(f"{path}: a scalar image is needed; got a multi-component (vector/RGB) image")
    return image


def load_ct(path: str | Path, series_uid: str | None = None) -> Volume:
    """Load a CT (NIfTI or DICOM folder) in RAS+, values in HU (float32).

    Raises:
        InputError: unreadable file, not 3-D, or NaN / infinite voxels.
    """
    image = read_sitk(path, series_uid)
    volume = volume_from_sitk(image)
    array = volume.array.astype(np.float32, copy=False)
    bad = max(int((~np.isfinite(array)).sum()), nonfinite_voxels(path))
    if bad:
        raise InputError(f"{path}: {bad} voxels are NaN or infinite; a CT must hold finite HU values")
    return volume.with_array(array)


def load_mask(path: str | Path, label_format: str = "auto") -> Volume:
    """Load a vertebra mask in RAS+ with VerSe labels (uint8).

    Args:
        path: NIfTI mask (VerSe numbering, or TotalSegmentator v2 multi-label).
        label_format: "verse", "totalseg" or "auto" (TotalSegmentator when its ids are seen).

    Raises:
        InputError: unreadable, not an integer label map, or no vertebra labels.
    """
    if label_format not in {"auto", "verse", "totalseg"}:
        raise ValueError(f"label_format must be auto, verse or totalseg; got {label_format!r}")
    image = read_sitk(path)
    volume = volume_from_sitk(image)
    array = volume.array
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or nonfinite_voxels(path):
            raise InputError(f"{path}: mask holds NaN or infinite values")
        if not np.array_equal(array, np.round(array)):
            raise InputError(f"{path}: a label mask must hold whole numbers; this one has fractions")
    if array.min() < 0 or array.max() > 255:
        raise InputError(f"{path}: label values must lie in 0..255; found {array.min()}..{array.max()}")
    array = array.astype(np.uint8)
    present = set(np.unique(array).tolist()) - {0}
    if label_format == "totalseg" or (label_format == "auto" and looks_like_totalseg(present)):
        array = totalseg_to_verse(array)
        present = set(np.unique(array).tolist()) - {0}
    if not present & VERTEBRA_LABELS:
        raise InputError(
            f"{path}: mask has no vertebra labels (found {sorted(present) or 'only background'}); "
            "expected VerSe 1-25/28 or TotalSegmentator 27-50"
        )
    return volume.with_array(array)


def check_overlap(ct: Volume, mask: Volume, min_fraction: float = 0.5) -> None:
    """Raise InputError unless the mask's labelled voxels lie on the CT's grid.

    The mask may be on another grid (it is resampled later); what matters is that its
    vertebrae fall inside the CT's field of view.
    """
    idx = np.argwhere(mask.array > 0)
    if idx.size == 0:
        return
    step = max(1, len(idx) // 20000)
    world = mask.voxel_to_world(idx[::step])
    vox = ct.world_to_voxel(world)
    inside = np.all((vox > -0.5) & (vox < np.array(ct.shape) - 0.5), axis=1).mean()
    if inside < min_fraction:
        raise InputError(
            f"CT and mask do not overlap: only {inside:.0%} of the mask's vertebra voxels fall "
            "inside the CT's field of view; are they from the same study?"
        )


def check_output_image(path: str | Path) -> Path:
    """``path`` as a NIfTI file to write, or an InputError naming what is wrong with it (a
    folder, or another extension), before any long work that would end by writing it."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: a folder; give the NIfTI file to write, e.g. {path / 'mask.nii.gz'}")
    if not _is_nifti(path):
        raise InputError(f"{path}: give a NIfTI file name ending in .nii.gz or .nii")
    return path


def write_volume(
    volume: Volume, path: str | Path, *, on_source_grid: bool = True, interpolation: str = "nearest"
) -> Path:
    """Write a volume as NIfTI (atomically), on its source file's grid when it has one."""
    path = check_output_image(path)
    if on_source_grid:
        image = to_source_grid(volume, interpolation)
    else:
        image = sitk_from_array(volume.array, volume.affine)
    return atomic_write(path, lambda tmp: sitk.WriteImage(image, str(tmp), useCompression=True))
