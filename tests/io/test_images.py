"""Loading CTs and masks (NIfTI, DICOM) in RAS+, and writing them back on the input's grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pydicom
import pytest

from healthivert.errors import InputError
from healthivert.io import Volume, check_overlap, load_ct, load_mask, write_volume
from healthivert.io.images import nonfinite_voxels

# ---------------------------------------------------------------- synthetic NIfTI helpers


def _affine_for(axcodes: str, spacing=(0.8, 1.1, 2.5), origin=(-30.0, 12.5, 40.0)) -> np.ndarray:
    """A non-oblique voxel-to-RAS affine whose array axes point along ``axcodes`` (nibabel's "towards")."""
    unit = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
    aff = np.eye(4)
    aff[:3, :3] = 0
    for col, (code, step) in enumerate(zip(axcodes, spacing)):
        row, sign = unit[code]
        aff[row, col] = sign * step
    aff[:3, 3] = origin
    return aff


def _save(path, array, affine) -> None:
    nib.save(nib.Nifti1Image(array, affine), str(path))


def _nifti_data(path) -> np.ndarray:
    return np.asanyarray(nib.load(str(path)).dataobj)


# ---------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def dicom_ct(dicom_dir) -> Volume:
    return load_ct(dicom_dir)


@pytest.mark.realdata
def test_dicom_series_spacing_from_slice_positions(dicom_ct, dicom_dir):
    # the files claim 3 mm slices; their positions step 2 mm, and that is the spacing
    first = pydicom.dcmread(next(iter(sorted(dicom_dir.iterdir()))), stop_before_pixels=True)
    assert float(first.SliceThickness) == 3.0
    assert dicom_ct.shape == (512, 512, 20)
    np.testing.assert_allclose(dicom_ct.spacing_mm, [0.9765625, 0.9765625, 2.0], atol=1e-4)
    np.testing.assert_allclose(dicom_ct.spacing_mm, [0.977, 0.977, 2.0], atol=1e-3)


@pytest.mark.realdata
def test_dicom_series_hu_range(dicom_ct):
    assert dicom_ct.array.dtype == np.float32
    assert dicom_ct.array.min() == -1024
    assert dicom_ct.array.max() > 1000


@pytest.mark.realdata
@pytest.mark.parametrize("position", [0, 9, 19])  # slices by position: first, middle, last
def test_dicom_series_hu_equal_rescaled_pixels(dicom_ct, dicom_dir, position):
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(dicom_dir.iterdir())]
    files = sorted(dicom_dir.iterdir())
    order = np.argsort([float(h.ImagePositionPatient[2]) for h in headers])
    ds = pydicom.dcmread(files[order[position]])
    hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    # DICOM: pixel (r, c) sits at IPP + c * dc * row_dir + r * dr * col_dir, in LPS mm
    row_dir = np.array(ds.ImageOrientationPatient[:3], float)
    col_dir = np.array(ds.ImageOrientationPatient[3:], float)
    dr, dc = (float(s) for s in ds.PixelSpacing)
    r, c = np.meshgrid(np.arange(ds.Rows), np.arange(ds.Columns), indexing="ij")
    lps = (np.array(ds.ImagePositionPatient, float) + c[..., None] * dc * row_dir
           + r[..., None] * dr * col_dir)
    ras = lps * np.array([-1.0, -1.0, 1.0])  # load_ct's world is RAS, its array axes R, A, S
    ijk = dicom_ct.world_to_voxel(ras.reshape(-1, 3))
    np.testing.assert_allclose(ijk, np.round(ijk), atol=1e-3)  # pixel centres land on voxel centres
    ijk = np.round(ijk).astype(int)
    assert len(np.unique(ijk[:, 2])) == 1  # one axial slice of the volume
    np.testing.assert_array_equal(dicom_ct.array[tuple(ijk.T)], hu.ravel())


@pytest.mark.realdata
def test_totalsegmentator_mask_maps_to_verse_labels(totalseg_mask_path):
    mask = load_mask(totalseg_mask_path)
    assert mask.array.dtype == np.uint8
    assert set(np.unique(mask.array).tolist()) - {0} == {18, 19, 20, 21, 22, 23, 24, 26}
    # the mapping moves labels, not voxels: L5 (TotalSegmentator 27) becomes VerSe 24 in place
    raw = np.asanyarray(nib.as_closest_canonical(nib.load(str(totalseg_mask_path))).dataobj)
    np.testing.assert_array_equal(mask.array == 24, raw == 27)


@pytest.mark.realdata
@pytest.mark.parametrize(
    "fixture, loader, axcodes",
    [
        ("verse007_mask_path", load_mask, ("I", "P", "L")),
        ("totalseg_ct_path", load_ct, ("R", "A", "S")),
        ("totalseg_mask_path", load_mask, ("R", "A", "S")),
    ],
)
def test_real_file_written_back_on_its_own_grid(request, tmp_path, fixture, loader, axcodes):
    src = request.getfixturevalue(fixture)
    out = write_volume(loader(src), tmp_path / "back.nii.gz")
    a, b = nib.load(str(src)), nib.load(str(out))
    assert nib.aff2axcodes(a.affine) == axcodes
    assert nib.aff2axcodes(b.affine) == axcodes
    np.testing.assert_allclose(b.affine, a.affine, atol=1e-4)
    if loader is load_mask and fixture == "totalseg_mask_path":
        # labels come back in VerSe numbering, voxel for voxel where TotalSegmentator had a vertebra
        assert set(np.unique(_nifti_data(out)).tolist()) == {0, 18, 19, 20, 21, 22, 23, 24, 26}
        np.testing.assert_array_equal(_nifti_data(out) > 0, _nifti_data(src) > 0)
    else:
        np.testing.assert_array_equal(_nifti_data(out), _nifti_data(src))


# ---------------------------------------------------------------- synthetic round trips


@pytest.mark.parametrize(
    "axcodes, spacing",
    [
        ("RAS", (1.0, 1.0, 1.0)),
        ("LPS", (0.7, 0.7, 3.0)),
        ("IPL", (2.0, 0.9, 0.9)),
        ("PIR", (0.8, 2.5, 1.2)),
        ("LAS", (0.6, 0.6, 1.5)),
        ("RPI", (1.0, 0.5, 2.0)),
    ],
)
def test_mask_round_trip_in_any_axis_order(tmp_path, axcodes, spacing):
    rng = np.random.default_rng(0)
    array = rng.choice(np.array([0, 19, 20, 21], np.uint8), size=(9, 7, 5))
    affine = _affine_for(axcodes, spacing)
    _save(tmp_path / "in.nii.gz", array, affine)
    mask = load_mask(tmp_path / "in.nii.gz")
    # inside, the array runs R, A, S whatever the file's order
    assert nib.aff2axcodes(mask.affine) == ("R", "A", "S")
    assert np.all(np.diag(mask.affine)[:3] > 0)
    out = write_volume(mask, tmp_path / "out.nii.gz")
    back = nib.load(str(out))
    assert nib.aff2axcodes(back.affine) == tuple(axcodes)
    np.testing.assert_allclose(back.affine, affine, atol=1e-4)
    np.testing.assert_array_equal(_nifti_data(out), array)


@pytest.mark.parametrize("axcodes", ["RAS", "LPS", "IPL"])
def test_ct_round_trip_keeps_hu_and_world_positions(tmp_path, axcodes):
    rng = np.random.default_rng(1)
    array = rng.integers(-1024, 2000, size=(6, 8, 10)).astype(np.int16)
    affine = _affine_for(axcodes)
    _save(tmp_path / "ct.nii.gz", array, affine)
    ct = load_ct(tmp_path / "ct.nii.gz")
    # every voxel keeps its value at its world position
    ijk_file = np.argwhere(np.ones(array.shape, bool))
    world = ijk_file @ affine[:3, :3].T + affine[:3, 3]
    ijk_ras = np.round(ct.world_to_voxel(world)).astype(int)
    np.testing.assert_array_equal(ct.array[tuple(ijk_ras.T)], array[tuple(ijk_file.T)])
    out = write_volume(ct, tmp_path / "out.nii.gz")
    np.testing.assert_allclose(nib.load(str(out)).affine, affine, atol=1e-4)
    np.testing.assert_array_equal(_nifti_data(out), array)


@pytest.mark.parametrize("phantom", ["fractured_phantom", "random_phantom"])
@pytest.mark.parametrize("part, loader", [("mask", load_mask), ("ct", load_ct), ("body_mask", load_mask)])
def test_phantom_files_round_trip(request, tmp_path, phantom, part, loader):
    written = request.getfixturevalue(phantom)
    src = written.paths[part]
    assert nib.aff2axcodes(nib.load(str(src)).affine) == tuple(written.truth["orientation"])
    out = write_volume(loader(src), tmp_path / "out.nii.gz")
    np.testing.assert_allclose(nib.load(str(out)).affine, nib.load(str(src)).affine, atol=1e-4)
    np.testing.assert_array_equal(_nifti_data(out), _nifti_data(src))


def test_fractured_phantom_is_written_in_a_non_ras_orientation(fractured_phantom):
    assert nib.aff2axcodes(nib.load(str(fractured_phantom.paths["mask"])).affine) == ("I", "P", "L")


def test_in_memory_volume_is_written_in_ras(tmp_path):
    affine = _affine_for("RAS", (0.5, 0.5, 2.0))
    array = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6)
    out = write_volume(Volume(array, affine), tmp_path / "v.nii.gz")
    np.testing.assert_allclose(nib.load(str(out)).affine, affine, atol=1e-5)
    np.testing.assert_array_equal(_nifti_data(out), array)


# ---------------------------------------------------------------- bad input (library level)


def test_ct_with_nan_voxels_is_refused(tmp_path):
    array = np.zeros((5, 5, 5), np.float32)
    array[1, 2, 3] = np.nan
    array[0, 0, 0] = np.inf
    _save(tmp_path / "nan.nii.gz", array, np.eye(4))
    path = tmp_path / "nan.nii.gz"
    with pytest.raises(InputError) as info:
        load_ct(path)
    assert str(info.value) == f"{path}: 2 voxels are NaN or infinite; a CT must hold finite HU values"


@pytest.mark.parametrize(
    "dtype, bad, expected",
    [(np.float32, [np.nan, np.inf, -np.inf], 3), (np.float64, [np.nan], 1), (np.float32, [], 0), (np.int16, [], 0)],
)
def test_nonfinite_voxels_are_counted_in_the_file(tmp_path, dtype, bad, expected):
    # ITK's NIfTI reader turns NaN into 0, so the count must come from the file itself
    array = np.ones((3, 4, 5), dtype)
    array.flat[: len(bad)] = bad
    _save(tmp_path / "v.nii.gz", array, np.eye(4))
    assert nonfinite_voxels(tmp_path / "v.nii.gz") == expected
    assert nonfinite_voxels(tmp_path) == 0  # a folder: DICOM holds integers


_NO_VERTEBRAE = "expected VerSe 1-25/28 or TotalSegmentator 27-50"


@pytest.mark.parametrize(
    "values, dtype, message",
    [
        ([0], np.uint8, f"mask has no vertebra labels (found only background); {_NO_VERTEBRAE}"),
        ([0, 26], np.uint8, f"mask has no vertebra labels (found [26]); {_NO_VERTEBRAE}"),
        ([0, 1, 5], np.uint8, None),  # VerSe C1, C5: fine
        ([0, 27, 31], np.uint8, None),  # TotalSegmentator L5, L1: fine
        ([0, 20.5], np.float32, "a label mask must hold whole numbers; this one has fractions"),
        ([0, -3], np.int16, "label values must lie in 0..255; found -3..0"),
        ([0, 300], np.int16, "label values must lie in 0..255; found 0..300"),
        ([0, np.nan], np.float32, "mask holds NaN or infinite values"),
    ],
)
def test_load_mask_checks_labels(tmp_path, values, dtype, message):
    array = np.zeros((4, 4, 4), dtype)
    array.flat[: len(values)] = values
    path = tmp_path / "m.nii.gz"
    _save(path, array, np.eye(4))
    if message is None:
        assert set(np.unique(load_mask(path).array).tolist()) - {0}
        return
    with pytest.raises(InputError) as info:
        load_mask(path)
    assert str(info.value) == f"{path}: {message}"


def test_load_mask_rejects_an_unknown_label_format(tmp_path):
    _save(tmp_path / "m.nii.gz", np.ones((3, 3, 3), np.uint8) * 20, np.eye(4))
    with pytest.raises(ValueError, match="label_format must be auto, verse or totalseg; got 'nnunet'"):
        load_mask(tmp_path / "m.nii.gz", label_format="nnunet")


def _grid(shape, origin, spacing=1.0) -> np.ndarray:
    aff = np.diag([spacing, spacing, spacing, 1.0])
    aff[:3, 3] = origin
    return aff


@pytest.mark.parametrize(
    "mask_origin, inside",
    [
        ((0.0, 0.0, 0.0), None),  # same grid
        ((2.0, -1.0, 3.0), None),  # shifted by a few mm: vertebra still inside
        ((0.0, 0.0, 9.0), None),  # half the vertebra beyond the CT's top: still accepted
        ((1000.0, 0.0, 0.0), "0%"),  # another study altogether
        ((0.0, 0.0, 14.0), "10%"),  # one slice of ten inside
    ],
)
def test_check_overlap(mask_origin, inside):
    ct = Volume(np.zeros((20, 20, 20), np.float32), _grid((20, 20, 20), (0.0, 0.0, 0.0)))
    labels = np.zeros((20, 20, 20), np.uint8)
    labels[5:15, 5:15, 5:15] = 20
    mask = Volume(labels, _grid((20, 20, 20), mask_origin))
    if inside is None:
        check_overlap(ct, mask)
        return
    with pytest.raises(InputError) as info:
        check_overlap(ct, mask)
    assert str(info.value) == (f"CT and mask do not overlap: only {inside} of the mask's vertebra voxels fall "
                               "inside the CT's field of view; are they from the same study?")


def test_check_overlap_on_a_coarser_mask_grid():
    # a mask on its own (coarser, shifted) grid that lies inside the CT passes
    ct = Volume(np.zeros((40, 40, 40), np.float32), _grid((40, 40, 40), (0.0, 0.0, 0.0), 0.5))
    labels = np.zeros((10, 10, 10), np.uint8)
    labels[3:7, 3:7, 3:7] = 21
    check_overlap(ct, Volume(labels, _grid((10, 10, 10), (1.0, 1.0, 1.0), 1.5)))
    with pytest.raises(InputError, match="do not overlap"):
        check_overlap(ct, Volume(labels, _grid((10, 10, 10), (-40.0, 1.0, 1.0), 1.5)))
