"""Centroid JSON: the three on-disk variants, round trips, real VerSe files and malformed input."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from healthivert.errors import InputError
from healthivert.io import Volume, centroids_from_mask, load_mask, read_centroids, write_centroids

# ---------------------------------------------------------------- a small mask with known centres


def _ras_affine(spacing=(1.0, 1.5, 2.0), origin=(-10.0, 20.0, -300.0)) -> np.ndarray:
    aff = np.diag([*spacing, 1.0])
    aff[:3, 3] = origin
    return aff


def _box_mask() -> Volume:
    """A 20 x 24 x 28 RAS mask: L1 (20) fills [4:9, 6:13, 10:17], L2 (21) [12:17, 3:8, 2:5]."""
    array = np.zeros((20, 24, 28), np.uint8)
    array[4:9, 6:13, 10:17] = 20  # centre voxel (6, 9, 13)
    array[12:17, 3:8, 2:5] = 21  # centre voxel (14, 5, 3)
    return Volume(array, _ras_affine())


BOX_CENTRES_IJK = {20: np.array([6.0, 9.0, 13.0]), 21: np.array([14.0, 5.0, 3.0])}


def _stored_as(mask: Volume, axcodes: str | None, tmp_path) -> Volume:
    """The mask as held in memory (None) or loaded from a file stored in ``axcodes`` order."""
    if axcodes is None:
        return mask
    img = nib.as_closest_canonical(nib.Nifti1Image(mask.array, mask.affine))
    target = nib.orientations.axcodes2ornt(tuple(axcodes))
    xform = nib.orientations.ornt_transform(nib.orientations.io_orientation(img.affine), target)
    img = img.as_reoriented(xform)
    assert nib.aff2axcodes(img.affine) == tuple(axcodes)
    nib.save(img, str(tmp_path / "mask.nii.gz"))
    return load_mask(tmp_path / "mask.nii.gz")


def test_centroids_from_mask_are_centres_of_mass():
    mask = _box_mask()
    got = centroids_from_mask(mask)
    assert sorted(got) == [20, 21]
    for label, ijk in BOX_CENTRES_IJK.items():
        np.testing.assert_allclose(got[label], mask.voxel_to_world(ijk), atol=1e-9)


@pytest.mark.parametrize("fmt", ["verse", "voxel", "world"])
@pytest.mark.parametrize("stored", [None, "RAS", "LPS", "IPL", "PIR"])
def test_round_trip(tmp_path, fmt, stored):
    mask = _stored_as(_box_mask(), stored, tmp_path)
    # off-grid positions, so rounding or an axis swap cannot go unnoticed
    centroids = {20: np.array([-3.217, 33.5011, -274.12]), 21: np.array([4.9, 27.25, -294.004])}
    path = write_centroids(centroids, tmp_path / "ctd.json", reference=mask, fmt=fmt)
    back = read_centroids(path, reference=mask if fmt != "world" else None)
    assert sorted(back) == [20, 21]
    for label in centroids:
        np.testing.assert_allclose(back[label], centroids[label], atol=1e-3)


@pytest.mark.parametrize(
    "fmt, check",
    [
        ("verse", lambda doc: doc[0] == {"direction": ["P", "I", "R"]} and doc[1]["label"] == 20),
        ("voxel", lambda doc: isinstance(doc, list) and set(doc[0]) == {"label", "X", "Y", "Z"}),
        ("world", lambda doc: doc["coordinate_system"] == "RAS" and doc["units"] == "mm"),
    ],
)
def test_written_layout(tmp_path, fmt, check):
    mask = _box_mask()
    path = write_centroids(centroids_from_mask(mask), tmp_path / "ctd.json", reference=mask, fmt=fmt)
    assert check(json.loads(path.read_text()))


@pytest.mark.parametrize("stored", [None, "LPS", "IPL", "RAS"])
def test_verse20_direction_entry_is_interpreted(tmp_path, stored):
    """A VerSe'20 file: voxel indices of the image reoriented to P, I, R, whatever its storage order."""
    mask = _box_mask()
    nx, ny, nz = mask.shape
    doc = [{"direction": ["P", "I", "R"]}]
    for label, (i, j, k) in BOX_CENTRES_IJK.items():
        # P runs against RAS axis 1, I against axis 2, R along axis 0
        doc.append({"label": label, "X": ny - 1 - j, "Y": nz - 1 - k, "Z": i})
    (tmp_path / "ctd.json").write_text(json.dumps(doc))
    got = read_centroids(tmp_path / "ctd.json", reference=_stored_as(mask, stored, tmp_path))
    for label, ijk in BOX_CENTRES_IJK.items():
        np.testing.assert_allclose(got[label], mask.voxel_to_world(ijk), atol=1e-4)
    # and they sit in their own label
    for label, xyz in got.items():
        assert mask.array[tuple(np.round(mask.world_to_voxel(xyz)).astype(int))] == label


def test_plain_voxel_list_uses_the_files_own_axes(tmp_path):
    """Without a direction entry, X/Y/Z index the mask file's stored array (here IPL)."""
    mask = _stored_as(_box_mask(), "IPL", tmp_path)
    stored = nib.load(str(tmp_path / "mask.nii.gz"))
    ijk_file = np.argwhere(np.asanyarray(stored.dataobj) == 21).mean(axis=0)
    (tmp_path / "ctd.json").write_text(json.dumps([{"label": 21, "X": ijk_file[0], "Y": ijk_file[1],
                                                    "Z": ijk_file[2]}]))
    got = read_centroids(tmp_path / "ctd.json", reference=mask)
    expected = nib.affines.apply_affine(stored.affine, ijk_file)
    np.testing.assert_allclose(got[21], expected, atol=1e-4)
    np.testing.assert_allclose(got[21], _box_mask().voxel_to_world(BOX_CENTRES_IJK[21]), atol=1e-4)


def test_write_centroids_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match=r"fmt must be one of \('verse', 'voxel', 'world'\); got 'lps'"):
        write_centroids({20: np.zeros(3)}, tmp_path / "c.json", _box_mask(), fmt="lps")
    with pytest.raises(ValueError, match="voxel-coordinate centroid formats need a reference image"):
        write_centroids({20: np.zeros(3)}, tmp_path / "c.json", None, fmt="voxel")
    assert not (tmp_path / "c.json").exists()


# ---------------------------------------------------------------- real VerSe centroids


@pytest.mark.realdata
def test_verse007_centroids_fall_inside_their_own_labels(verse007_mask_path, verse007_ctd_path):
    mask = load_mask(verse007_mask_path)
    centroids = read_centroids(verse007_ctd_path, reference=mask)
    present = set(np.unique(mask.array).tolist()) - {0}
    assert set(centroids) == set(range(17, 25))
    assert set(centroids) <= present
    idx = np.argwhere(mask.array > 0)
    labels = mask.array[tuple(idx.T)]
    world = mask.voxel_to_world(idx)
    for label, xyz in centroids.items():
        dist = np.linalg.norm(world - xyz, axis=1)
        own, other = dist[labels == label].min(), dist[labels != label].min()
        # two centroids sit in a 1-1.4 mm gap inside their own vertebra, so not "on a voxel"
        assert own <= 2.0, (label, own)
        assert own < other, (label, own, other)
        assert labels[np.argmin(dist)] == label


@pytest.mark.realdata
def test_verse007_centroids_are_the_masks_centres_of_mass(verse007_mask_path, verse007_ctd_path):
    mask = load_mask(verse007_mask_path)
    centroids = read_centroids(verse007_ctd_path, reference=mask)
    coms = centroids_from_mask(mask)
    for label, xyz in centroids.items():
        assert np.linalg.norm(xyz - coms[label]) <= 0.5, label


# ---------------------------------------------------------------- malformed files

_POINT = {"label": 20, "X": 1.0, "Y": 2.0, "Z": 3.0}


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        (json.dumps({"label": 20}), "centroid JSON must be a non-empty list of {label, X, Y, Z}"),
        (json.dumps([]), "centroid JSON must be a non-empty list of {label, X, Y, Z}"),
        (json.dumps("L1"), "centroid JSON must be a non-empty list of {label, X, Y, Z}"),
        (json.dumps([1, 2, 3]), "centroid entries must be objects; found int"),
        (json.dumps([{"label": 20, "Y": 2, "Z": 3}]), "each centroid needs a numeric label, X, Y and Z; got "),
        (json.dumps([{"X": 1, "Y": 2, "Z": 3}]), "each centroid needs a numeric label, X, Y and Z"),
        (json.dumps([{"label": 20, "X": "a", "Y": 2, "Z": 3}]), "each centroid needs a numeric label, X, Y and Z"),
        (json.dumps([{"label": "L1", "X": 1, "Y": 2, "Z": 3}]), "each centroid needs a numeric label, X, Y and Z"),
        (json.dumps([{"label": 20.5, "X": 1, "Y": 2, "Z": 3}]), "centroid label 20.5 is not a whole number"),
        ('[{"label": 1e999, "X": 1, "Y": 2, "Z": 3}]', "each centroid needs a numeric label, X, Y and Z"),
        ('[{"label": 20, "X": NaN, "Y": 2, "Z": 3}]', "centroid of label 20 is not finite"),
        (json.dumps([{"label": 99, "X": 1, "Y": 2, "Z": 3}]), "99 is not a VerSe vertebra label"),
        (json.dumps([{"label": 27, "X": 1, "Y": 2, "Z": 3}]), "27 is not a VerSe vertebra label"),
        (json.dumps([{"direction": ["P", "I"]}, _POINT]),
         "bad direction entry ['P', 'I']; expected e.g. ['P','I','R']"),
        (json.dumps([{"direction": ["P", "I", "X"]}, _POINT]), "bad direction entry ['P', 'I', 'X']"),
        (json.dumps([{"direction": ["P", "A", "R"]}, _POINT]), "bad direction entry ['P', 'A', 'R']"),
        (json.dumps([{"direction": "PIR"}, _POINT]), "bad direction entry 'PIR'"),
        (json.dumps([{"direction": ["P", "I", "R"]}]), "no centroids in file"),
        (json.dumps({"coordinate_system": "LPS", "centroids": [_POINT]}), "world centroids must be RAS in mm"),
        (json.dumps({"units": "cm", "centroids": [_POINT]}), "world centroids must be RAS in mm"),
        (json.dumps({"centroids": []}), "no centroids in file"),
    ],
)
def test_malformed_centroid_json(tmp_path, text, message):
    path = tmp_path / "ctd.json"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_centroids(path, reference=_box_mask())
    # the file, then what is wrong with it (in full, or up to a detail quoted from the file)
    assert str(info.value).startswith(f"{path}: {message}")
    assert "\n" not in str(info.value)


def test_centroid_file_errors_without_a_file_or_reference(tmp_path):
    with pytest.raises(InputError, match="missing.json: no such centroid file"):
        read_centroids(tmp_path / "missing.json")
    (tmp_path / "ctd.json").write_text(json.dumps([_POINT]))
    with pytest.raises(InputError, match="voxel-coordinate centroids need the image they belong to"):
        read_centroids(tmp_path / "ctd.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(InputError, match="not valid JSON"):
        read_centroids(tmp_path / "bin.json")
