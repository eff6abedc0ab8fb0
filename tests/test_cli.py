"""The command line, in-process: `info`, `phantom`, and the one-line contract for bad input."""

from __future__ import annotations

import gzip
import json
import shutil

import nibabel as nib
import numpy as np
import pydicom
import pytest

from healthivert.cli import main
from healthivert.io import read_verse_tree
from tests.helpers import assert_one_line_error, shared_path

# ---------------------------------------------------------------- info on real data


@pytest.mark.realdata
def test_info_on_a_dicom_folder(dicom_dir, capfd):
    assert main(["info", str(dicom_dir)]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert "(DICOM series)" in out
    assert "512 x 512 x 20 voxels" in out
    assert "spacing:     0.9766 x 0.9766 x 2 mm" in out  # from slice positions, not SliceThickness (3)
    assert "CT, HU range -1024 .." in out


@pytest.mark.realdata
def test_info_json_on_a_dicom_folder(dicom_dir, capfd):
    assert main(["info", str(dicom_dir), "--json"]) == 0
    info = json.loads(capfd.readouterr().out)
    assert info["kind"] == "ct"
    np.testing.assert_allclose(info["spacing_mm"], [0.977, 0.977, 2.0], atol=1e-3)
    assert info["hu_range"][0] == -1024 and info["hu_range"][1] > 1000
    assert info["nan_voxels"] == 0


@pytest.mark.realdata
def test_info_on_a_totalsegmentator_mask(totalseg_mask_path, capfd):
    assert main(["info", str(totalseg_mask_path)]) == 0
    out, err = capfd.readouterr()
    assert err == ""
    assert "spacing:     3 x 3 x 3 mm" in out
    assert "label mask (TotalSegmentator numbering), 8 labels" in out
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.startswith("  ")}
    assert rows == {"26": "S1", "27": "L5", "28": "L4", "29": "L3", "30": "L2", "31": "L1", "32": "T12", "33": "T11"}


@pytest.mark.realdata
def test_info_json_on_a_verse_mask(verse007_mask_path, capfd):
    assert main(["info", str(verse007_mask_path), "--json"]) == 0
    info = json.loads(capfd.readouterr().out)
    assert info["orientation"] == "IPL"
    assert info["spacing_mm"] == [1.0, 1.0, 1.0]
    assert info["label_format"] == "VerSe"
    assert {int(k): v["name"] for k, v in info["labels"].items()} == {
        16: "T9", 17: "T10", 18: "T11", 19: "T12", 20: "L1", 21: "L2", 22: "L3", 23: "L4", 24: "L5"}


def test_info_warns_about_nan_voxels(tmp_path, capfd):
    array = np.zeros((4, 5, 6), np.float32)
    array[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(array, np.eye(4)), str(tmp_path / "nan.nii.gz"))
    assert main(["info", str(tmp_path / "nan.nii.gz")]) == 0
    assert "warning:     1 NaN/infinite voxels" in capfd.readouterr().out


# ---------------------------------------------------------------- bad images: one line, exit 2


def _valid_gzip_nifti(path):
    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.integers(-1000, 1000, (32, 32, 32)).astype(np.int16), np.eye(4)), str(path))
    return path


def _missing(d):
    return d / "missing.nii.gz"


def _text_named_nifti(d):
    (d / "x.nii.gz").write_text("this is not gzip\n")
    return d / "x.nii.gz"


def _text_file(d):
    (d / "notes.txt").write_text("neither NIfTI nor DICOM\n")
    return d / "notes.txt"


def _truncated(d):
    data = _valid_gzip_nifti(d / "whole.nii.gz").read_bytes()
    (d / "whole.nii.gz").unlink()
    (d / "cut.nii.gz").write_bytes(data[: len(data) // 2])
    return d / "cut.nii.gz"


def _corrupt(d):
    data = bytearray(_valid_gzip_nifti(d / "whole.nii.gz").read_bytes())
    (d / "whole.nii.gz").unlink()
    mid = len(data) // 2
    data[mid:mid + 64] = bytes(b ^ 0xFF for b in data[mid:mid + 64])
    (d / "bad.nii.gz").write_bytes(bytes(data))
    return d / "bad.nii.gz"


def _uncompressed_garbage(d):
    (d / "junk.nii").write_bytes(b"\x00" * 10 + b"not a nifti header" * 30)
    return d / "junk.nii"


def _gzip_of_garbage(d):
    with gzip.open(d / "junk.nii.gz", "wb") as fh:
        fh.write(b"not a nifti header" * 30)
    return d / "junk.nii.gz"


def _two_d(d):
    nib.save(nib.Nifti1Image(np.zeros((10, 12), np.int16), np.eye(4)), str(d / "slice.nii.gz"))
    return d / "slice.nii.gz"


def _one_slice(d):
    nib.save(nib.Nifti1Image(np.zeros((10, 12, 1), np.int16), np.eye(4)), str(d / "slab.nii.gz"))
    return d / "slab.nii.gz"


def _four_d(d):
    nib.save(nib.Nifti1Image(np.zeros((10, 12, 8, 3), np.int16), np.eye(4)), str(d / "series.nii.gz"))
    return d / "series.nii.gz"


def _no_dicom(d):
    (d / "folder").mkdir()
    (d / "folder" / "readme.txt").write_text("no images here\n")
    return d / "folder"


def _empty_folder(d):
    (d / "empty").mkdir()
    return d / "empty"


BAD_IMAGES = [
    ("missing file", _missing, "missing.nii.gz: no such file or folder"),
    ("text named .nii.gz", _text_named_nifti, "x.nii.gz: corrupt or truncated gzip file"),
    ("text file", _text_file, "notes.txt: not a NIfTI file or a DICOM series folder"),
    ("truncated gzip", _truncated, "cut.nii.gz: corrupt or truncated gzip file"),
    ("corrupt gzip", _corrupt, "bad.nii.gz: corrupt or truncated gzip file"),
    ("garbage .nii", _uncompressed_garbage, "junk.nii: not a readable NIfTI/DICOM image"),
    ("gzip of garbage", _gzip_of_garbage, "junk.nii.gz: not a readable NIfTI/DICOM image"),
    ("2-D image", _two_d, "a 3-D image is needed; got a 2-D image of size 10x12"),
    ("one slice", _one_slice, "a 3-D image is needed; got a 2-D image of size 10x12x1"),
    ("4-D image", _four_d, "a 3-D image is needed; got a 4-D image of size 10x12x8x3"),
    ("folder without DICOM", _no_dicom, "folder: folder holds no DICOM series"),
    ("empty folder", _empty_folder, "empty: folder holds no DICOM series"),
]


@pytest.mark.parametrize("make, message", [c[1:] for c in BAD_IMAGES], ids=[c[0] for c in BAD_IMAGES])
@pytest.mark.parametrize("as_json", [False, True])
def test_info_bad_image(tmp_path, capfd, make, message, as_json):
    work = tmp_path / "in"
    work.mkdir()
    path = make(work)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    rc = main(["info", str(path)] + (["--json"] if as_json else []))
    assert_one_line_error(rc, capfd.readouterr(), message)
    # nothing written anywhere (no stray output or temp files)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.fixture(scope="module")
def two_series_dicom(tmp_path_factory):
    """The real DICOM slices copied, with the first and second half put in two series."""
    src = shared_path("real/totalseg_dicom")
    folder = tmp_path_factory.mktemp("two_series")
    headers = {f: pydicom.dcmread(f, stop_before_pixels=True) for f in sorted(src.iterdir())}
    ordered = sorted(headers, key=lambda f: float(headers[f].ImagePositionPatient[2]))
    uids = ("1.2.826.0.1.3680043.8.498.101", "1.2.826.0.1.3680043.8.498.202")
    for n, f in enumerate(ordered):
        ds = pydicom.dcmread(f)
        ds.SeriesInstanceUID = uids[n * 2 // len(ordered)]
        ds.save_as(folder / f.name)
    return folder, uids


@pytest.mark.realdata
def test_info_on_a_folder_with_two_series_names_both(two_series_dicom, capfd):
    folder, uids = two_series_dicom
    line = assert_one_line_error(main(["info", str(folder)]), capfd.readouterr(),
                                 "holds 2 DICOM series", "--series")
    for uid in uids:
        assert f"{uid} (10 files)" in line


@pytest.mark.realdata
def test_info_names_a_blank_series_uid(tmp_path, capfd):
    """Half the slices moved to a new series; the rest keep the real data's blank UID."""
    src = shared_path("real/totalseg_dicom")
    for n, f in enumerate(sorted(src.iterdir())):
        ds = pydicom.dcmread(f)
        if n % 2:
            ds.SeriesInstanceUID = "1.2.826.0.1.3680043.8.498.303"
        ds.save_as(tmp_path / f.name)
    assert_one_line_error(main(["info", str(tmp_path)]), capfd.readouterr(), "holds 2 DICOM series",
                          "<blank> (10 files)", "1.2.826.0.1.3680043.8.498.303 (10 files)", "--series UID")


@pytest.mark.realdata
def test_info_picks_one_series_with_series_option(two_series_dicom, capfd):
    folder, uids = two_series_dicom
    assert main(["info", str(folder), "--series", uids[1], "--json"]) == 0
    info = json.loads(capfd.readouterr().out)
    assert info["size"] == [512, 512, 10]
    np.testing.assert_allclose(info["spacing_mm"][2], 2.0)
    rc = main(["info", str(folder), "--series", "1.2.3"])
    assert_one_line_error(rc, capfd.readouterr(), "no DICOM series '1.2.3'", uids[0], uids[1])


@pytest.mark.realdata
def test_dicom_folder_with_a_missing_slice_is_refused(tmp_path, capfd):
    """ITK would only warn and stack 19 slices at a 2.1 mm mean step; the loader refuses.

    (A truncated slice file ends the same way, but GDCM takes several seconds to give up on it.)
    """
    folder = tmp_path / "dicom"
    shutil.copytree(shared_path("real/totalseg_dicom"), folder)
    by_position = sorted(folder.iterdir(),
                         key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).ImagePositionPatient[2]))
    by_position[7].unlink()
    rc = main(["info", str(folder)])
    assert_one_line_error(rc, capfd.readouterr(), str(folder),
                          "DICOM slices are not evenly spaced (steps 2 to 4 mm in 19 slices)")


# ---------------------------------------------------------------- phantom command


@pytest.mark.slow
def test_phantom_command_writes_a_verse_tree(tmp_path, capfd):
    out_dir = tmp_path / "cohort"
    rc = main(["phantom", "--out", str(out_dir), "--n", "3", "--top", "T12", "--bottom", "L2", "--slice-mm", "1.0"])
    out, err = capfd.readouterr()
    assert rc == 0
    assert f"wrote 3 phantom studies in the VerSe layout under {out_dir}" in out
    assert [line.split()[1] for line in err.splitlines()] == ["[1/3]", "[2/3]", "[3/3]"]  # progress
    studies = read_verse_tree(out_dir)
    assert [s.subject for s in studies] == ["sub-phantom0000", "sub-phantom0001", "sub-phantom0002"]
    for s in studies:
        assert s.missing == []
        assert set(s.extras) == {"body_mask", "truth"}
        truth = json.loads(s.extras["truth"].read_text())
        assert truth["subject"] == s.subject
        assert [v["name"] for v in truth["vertebrae"]] == ["T12", "L1", "L2"]
        assert truth["spacing_mm"][2] == 1.0
        assert nib.load(str(s.ct)).shape == nib.load(str(s.mask)).shape
    # no temporary files left behind
    assert not [p for p in out_dir.rglob("*") if ".part" in p.name]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--top", "L2", "--bottom", "T12"], "vertebra range must run cranial to caudal within T1..L5; got L2-T12"),
        (["--top", "C3"], "vertebra range must run cranial to caudal within T1..L5; got C3-L5"),
        (["--top", "X9"], "unknown vertebra name 'X9'"),
        (["--n", "0"], "n must be at least 1; got 0"),
        (["--orientation", "XYZ"], "orientation must be three axis codes"),
        (["--slice-mm", "-1"], "slice_mm must be a positive voxel size in mm; got -1.0"),
        (["--in-plane-mm", "0"], "in_plane_mm must be a positive voxel size in mm; got 0.0"),
    ],
)
def test_phantom_command_bad_arguments(tmp_path, capfd, args, message):
    out_dir = tmp_path / "cohort"
    rc = main(["phantom", "--out", str(out_dir), *args])
    assert_one_line_error(rc, capfd.readouterr(), message)
    assert not out_dir.exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("healthivert ")
