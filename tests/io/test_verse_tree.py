"""Listing a VerSe tree and joining a manifest to it."""

from __future__ import annotations

import pandas as pd
import pytest

from healthivert.errors import InputError
from healthivert.io import join_manifest_to_tree, read_verse_tree


def _touch(path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


@pytest.fixture
def tree(tmp_path):
    """sub-a complete; sub-b without a mask; sub-c with files in a session folder and no centroids;
    sub-d only in derivatives (no CT)."""
    raw, der = tmp_path / "rawdata", tmp_path / "derivatives"
    _touch(raw / "sub-a" / "sub-a_ct.nii.gz")
    _touch(der / "sub-a" / "sub-a_seg-vert_msk.nii.gz")
    _touch(der / "sub-a" / "sub-a_seg-subreg_ctd.json")
    _touch(der / "sub-a" / "sub-a_seg-body_msk.nii.gz")
    _touch(der / "sub-a" / "truth.json")
    _touch(raw / "sub-b" / "sub-b_ct.nii.gz")
    _touch(der / "sub-b" / "sub-b_seg-subreg_ctd.json")
    _touch(raw / "sub-c" / "ses-1" / "sub-c_ses-1_ct.nii.gz")
    _touch(der / "sub-c" / "ses-1" / "sub-c_ses-1_seg-vert_msk.nii.gz")
    _touch(der / "sub-d" / "sub-d_seg-vert_msk.nii.gz")
    _touch(der / "sub-d" / "sub-d_seg-subreg_ctd.json")
    (raw / "README.txt").write_text("not a subject")
    (raw / "notes").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    "subject, missing, extras",
    [
        ("sub-a", [], {"body_mask", "truth"}),
        ("sub-b", ["mask"], set()),
        ("sub-c", ["centroids"], set()),
        ("sub-d", ["ct"], set()),
    ],
)
def test_read_verse_tree_reports_missing_parts(tree, subject, missing, extras):
    studies = {s.subject: s for s in read_verse_tree(tree)}
    assert list(studies) == ["sub-a", "sub-b", "sub-c", "sub-d"]
    study = studies[subject]
    assert study.missing == missing
    assert set(study.extras) == extras
    for part in ("ct", "mask", "centroids"):
        path = getattr(study, part)
        assert (path is None) == (part in missing)
        if path is not None:
            assert path.is_file() and path.name.startswith(subject)


def test_read_verse_tree_finds_files_in_session_folders(tree):
    sub_c = next(s for s in read_verse_tree(tree) if s.subject == "sub-c")
    assert sub_c.ct == tree / "rawdata" / "sub-c" / "ses-1" / "sub-c_ses-1_ct.nii.gz"


def test_a_subject_folder_with_several_scans_gives_a_study_per_scan(tmp_path):
    """VerSe 2019's split scans share a subject folder: each is a study named by its stem, its
    CT, mask and centroids paired by that stem (before: the first CT with the first mask, and
    the other scan dropped); one scan's missing mask is said, not filled from the other."""
    raw, der = tmp_path / "rawdata" / "sub-verse400", tmp_path / "derivatives" / "sub-verse400"
    for stem in ("sub-verse400_split-verse090", "sub-verse400_split-verse155"):
        _touch(raw / f"{stem}_ct.nii.gz")
        _touch(der / f"{stem}_seg-subreg_ctd.json")
    _touch(der / "sub-verse400_split-verse155_seg-vert_msk.nii.gz")
    _touch(tmp_path / "rawdata" / "sub-verse008" / "sub-verse008_ct.nii.gz")
    studies = {s.subject: s for s in read_verse_tree(tmp_path)}
    assert list(studies) == ["sub-verse008", "sub-verse400_split-verse090", "sub-verse400_split-verse155"]
    first, second = studies["sub-verse400_split-verse090"], studies["sub-verse400_split-verse155"]
    assert first.missing == ["mask"] and second.missing == []
    assert first.ct.name == "sub-verse400_split-verse090_ct.nii.gz"
    assert second.mask.name == "sub-verse400_split-verse155_seg-vert_msk.nii.gz"
    assert second.centroids.name == "sub-verse400_split-verse155_seg-subreg_ctd.json"
    assert first.in_folder("sub-verse400") and not studies["sub-verse008"].in_folder("sub-verse400")


def test_read_verse_tree_errors(tmp_path):
    with pytest.raises(InputError, match="nowhere: no such folder"):
        read_verse_tree(tmp_path / "nowhere")
    (tmp_path / "flat").mkdir()
    with pytest.raises(InputError, match=r"flat: not a VerSe tree \(no rawdata/ or derivatives/ folder\)"):
        read_verse_tree(tmp_path / "flat")


def test_join_manifest_to_tree(tree):
    manifest = pd.DataFrame({
        "subject": ["sub-a", "sub-a", "sub-b", "sub-z"],
        "vertebra_label": [19, 20, 20, 21],
        "vertebra": ["T12", "L1", "L1", "L2"],
        "genant_grade": [0, 2, 1, 3],
        "split": ["train", "train", "val", "test"],
    })
    joined = join_manifest_to_tree(manifest, tree)
    assert list(joined.columns) == [*manifest.columns, "ct", "mask", "centroids", "missing"]
    assert len(joined) == 4
    pd.testing.assert_frame_equal(joined[manifest.columns], manifest)
    assert joined["missing"].tolist() == ["", "", "mask", "study"]
    assert joined.loc[0, "ct"] == str(tree / "rawdata" / "sub-a" / "sub-a_ct.nii.gz")
    assert joined.loc[2, "mask"] == ""
    assert joined.loc[2, "centroids"].endswith("sub-b_seg-subreg_ctd.json")
    assert (joined.loc[3, ["ct", "mask", "centroids"]] == "").all()
