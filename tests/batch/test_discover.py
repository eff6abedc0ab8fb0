"""Finding the studies of a batch INPUT: VerSe tree, plain folder, manifest CSV."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthivert.batch import StudySpec, discover_studies
from healthivert.errors import InputError


def _touch(path: Path, content: bytes = b"") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _dicom_file(path: Path) -> Path:
    return _touch(path, b"\0" * 128 + b"DICM" + b"\0" * 16)


def test_verse_tree(tmp_path):
    _touch(tmp_path / "rawdata" / "sub-a" / "sub-a_ct.nii.gz")
    _touch(tmp_path / "derivatives" / "sub-a" / "sub-a_seg-vert_msk.nii.gz")
    _touch(tmp_path / "derivatives" / "sub-a" / "sub-a_seg-subreg_ctd.json")
    _touch(tmp_path / "rawdata" / "sub-b" / "sub-b_ct.nii.gz")
    specs = discover_studies(tmp_path)
    d = tmp_path / "derivatives" / "sub-a"
    assert specs == [
        StudySpec("sub-a", mask=d / "sub-a_seg-vert_msk.nii.gz", ct=tmp_path / "rawdata/sub-a/sub-a_ct.nii.gz",
                  centroids=d / "sub-a_seg-subreg_ctd.json"),
        StudySpec("sub-b", ct=tmp_path / "rawdata/sub-b/sub-b_ct.nii.gz"),  # CT alone: still a study
    ]


def test_plain_folder_pairs_files_by_stem(tmp_path):
    for name in ("a_seg-vert_msk.nii.gz", "a_ct.nii.gz", "a_seg-subreg_ctd.json", "a_seg-body_msk.nii.gz",
                 "b_msk.nii.gz", "b_ctd.json", "c_ct.nii", "d.nii.gz", "orphan_ctd.json", "notes.txt",
                 "other.json", ".hidden_ct.nii.gz"):
        _touch(tmp_path / name)
    _dicom_file(tmp_path / "e" / "IM0001")
    _touch(tmp_path / "e_seg-vert_msk.nii.gz")
    _touch(tmp_path / "not_dicom" / "readme.txt", b"hello")
    got = {s.study_id: {k: Path(v).name for k, v in s.inputs.items() if v} for s in discover_studies(tmp_path)}
    assert got == {
        "a": {"mask": "a_seg-vert_msk.nii.gz", "ct": "a_ct.nii.gz", "centroids": "a_seg-subreg_ctd.json"},
        "b": {"mask": "b_msk.nii.gz", "centroids": "b_ctd.json"},
        "c": {"ct": "c_ct.nii"},
        "d": {"ct": "d.nii.gz"},
        "e": {"mask": "e_seg-vert_msk.nii.gz", "ct": "e"},
    }


def test_manifest_resolves_relative_paths_against_its_folder(tmp_path):
    data = tmp_path / "data"
    _touch(data / "m1.nii.gz")
    csv = _touch(data / "list.csv", b"")
    csv.write_text("study_id,mask,ct,centroids\n"
                   "s1,m1.nii.gz,,\n"
                   f"s2,{tmp_path / 'abs_msk.nii.gz'},sub/ct.nii.gz,c.json\n"
                   ",,,\n", encoding="utf-8")
    specs = discover_studies(csv)
    assert specs == [StudySpec("s1", mask=(data / "m1.nii.gz").resolve()),
                     StudySpec("s2", mask=tmp_path / "abs_msk.nii.gz", ct=(data / "sub/ct.nii.gz").resolve(),
                               centroids=(data / "c.json").resolve())]


def test_manifest_without_centroids_column(tmp_path):
    csv = _touch(tmp_path / "list.csv")
    csv.write_text("\ufeffstudy_id, ct\nx,x.nii.gz\n", encoding="utf-8")  # BOM and spaces, as Excel writes
    assert discover_studies(csv) == [StudySpec("x", ct=tmp_path / "x.nii.gz")]


@pytest.mark.parametrize(
    "files, source, fragment",
    [
        ({"list.csv": "id,mask\nx,m.nii.gz\n"}, "list.csv", "needs columns study_id"),
        ({"list.csv": "study_id,mask\nx,a.nii.gz\nx,b.nii.gz\n"}, "list.csv", "'x' appears more than once"),
        ({"list.csv": "study_id,mask\n../up,a.nii.gz\n"}, "list.csv",
         "line 2: study id '../up' must be 1-128 letters"),
        ({"list.csv": "study_id,mask\n.x,a.nii.gz\n"}, "list.csv", "starting with a letter or digit"),
        ({"list.csv": "study_id,mask\nmy study,a.nii.gz\n"}, "list.csv", "study id 'my study' must be"),
        ({"list.csv": ""}, "list.csv", "needs columns study_id"),
        ({"table.xlsx": ""}, "table.xlsx", "must be a VerSe tree"),
        ({"a_ct.nii.gz": "", "a_ct.nii": ""}, ".", "study 'a' has two ct inputs"),
        ({"a_seg-vert_msk.nii.gz": "", "a_msk.nii.gz": ""}, ".", "study 'a' has two mask inputs"),
        ({"notes.txt": "", "x_ctd.json": ""}, ".", "no studies found"),
        ({"my scan_ct.nii.gz": ""}, ".", "study id 'my scan' must be"),
    ],
)
def test_bad_input(tmp_path, files, source, fragment):
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as info:
        discover_studies(tmp_path / source)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_input(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        discover_studies(tmp_path / "nope")
