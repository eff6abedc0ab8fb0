"""Vertebra centroids: read and write the JSON variants found in the wild.

Internally centroids are ``{VerSe label: RAS world position in mm}``. On disk:

* ``verse``: VerSe'19 / '20 style, a list whose first entry is ``{"direction": ["P", "I", "R"]}``
  and whose other entries ``{"label", "X", "Y", "Z"}`` are voxel indices of the image
  reoriented to those axis codes (nibabel's "towards" convention).
* ``voxel``: a plain list of ``{"label", "X", "Y", "Z"}`` in voxel indices of the mask's own
  array axes (as shipped with HealthiVert-GAN's VerSe subjects).
* ``world``: a ``{"coordinate_system": "RAS", "units": "mm", "centroids": [...]}`` object with
  world positions, which needs no image to interpret.

Every file is checked: a malformed one raises :class:`InputError` naming what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write_text
from healthivert.io.volume import Volume, empty_sitk_image
from healthivert.io.volume import affine_from_sitk as _affine
from healthivert.labels import VERSE_NAMES

Centroids = dict[int, np.ndarray]
FORMATS = ("verse", "voxel", "world")
_AXIS_CODES = {"L", "R", "A", "P", "S", "I"}
_AXIS_OF_CODE = {"L": 0, "R": 0, "A": 1, "P": 1, "S": 2, "I": 2}


def _source_image(reference: Volume) -> sitk.Image:
    """An empty SimpleITK image on the grid of the reference's source file (RAS grid if none)."""
    src = reference.source
    if src is None:
        return empty_sitk_image(reference.shape, reference.affine)
    image = sitk.Image(src.size, sitk.sitkUInt8)
    src.apply_to(image)
    return image


def _entries(data, path: Path) -> tuple[str | None, list[dict]]:
    if isinstance(data, dict) and "centroids" in data:
        if str(data.get("coordinate_system", "RAS")).upper() != "RAS" or data.get("units", "mm") != "mm":
            raise InputError(f"{path}: world centroids must be RAS in mm")
        return "world", data["centroids"]
    if not isinstance(data, list) or not data:
        raise InputError(f"{path}: centroid JSON must be a non-empty list of {{label, X, Y, Z}}")
    direction = None
    points = []
    for item in data:
        if not isinstance(item, dict):
            raise InputError(f"{path}: centroid entries must be objects; found {type(item).__name__}")
        if "direction" in item:
            direction = item["direction"]
            codes = [str(c).upper() for c in direction] if isinstance(direction, list) else []
            # three codes, one per axis: ["P", "A", "R"] names the AP axis twice
            if len(codes) != 3 or not set(codes) <= _AXIS_CODES or len({_AXIS_OF_CODE[c] for c in codes}) != 3:
                raise InputError(f"{path}: bad direction entry {direction!r}; expected e.g. ['P','I','R']")
            direction = "".join(codes)
        else:
            points.append(item)
    return direction, points


def read_centroids(path: str | Path, reference: Volume | None = None) -> Centroids:
    """Read a centroid JSON file as ``{VerSe label: RAS mm}``.

    Args:
        path: the JSON file (any of the variants in the module docstring).
        reference: the image the voxel coordinates refer to (the mask or CT the file came
            with); needed for the ``verse`` and ``voxel`` variants.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such centroid file")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    kind, points = _entries(data, path)
    if kind != "world" and reference is None:
        raise InputError(f"{path}: voxel-coordinate centroids need the image they belong to")
    if kind == "world":
        to_world = np.eye(4)
    elif kind is None:
        to_world = _affine(_source_image(reference))
    else:
        to_world = _affine(sitk.DICOMOrient(_source_image(reference), kind))
    out: Centroids = {}
    for p in points:
        try:
            label_value = float(p["label"])
            label = int(label_value)
            xyz = np.array([float(p["X"]), float(p["Y"]), float(p["Z"])])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise InputError(f"{path}: each centroid needs a numeric label, X, Y and Z; got {p!r}") from None
        if label != label_value:
            raise InputError(f"{path}: centroid label {p['label']!r} is not a whole number")
        if not np.isfinite(xyz).all():
            raise InputError(f"{path}: centroid of label {label} is not finite")
        if label not in VERSE_NAMES:
            raise InputError(f"{path}: {label} is not a VerSe vertebra label")
        out[label] = xyz @ to_world[:3, :3].T + to_world[:3, 3]
    if not out:
        raise InputError(f"{path}: no centroids in file")
    return out


def write_centroids(
    centroids: Centroids, path: str | Path, reference: Volume | None = None, fmt: str = "verse",
    axcodes: str = "PIR",
) -> Path:
    """Write centroids (RAS mm) as JSON in one of :data:`FORMATS` (atomically)."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}; got {fmt!r}")
    if fmt == "world":
        items = [{"label": int(k), "X": float(v[0]), "Y": float(v[1]), "Z": float(v[2])}
                 for k, v in sorted(centroids.items())]
        doc = {"coordinate_system": "RAS", "units": "mm", "centroids": items}
    else:
        if reference is None:
            raise ValueError("voxel-coordinate centroid formats need a reference image")
        image = _source_image(reference)
        if fmt == "verse":
            image = sitk.DICOMOrient(image, axcodes)
        inv = np.linalg.inv(_affine(image))
        items = []
        for label, xyz in sorted(centroids.items()):
            ijk = inv[:3, :3] @ np.asarray(xyz) + inv[:3, 3]
            items.append({"label": int(label), "X": round(float(ijk[0]), 4),
                          "Y": round(float(ijk[1]), 4), "Z": round(float(ijk[2]), 4)})
        doc = ([{"direction": list(axcodes)}] if fmt == "verse" else []) + items
    return atomic_write_text(path, json.dumps(doc, indent=2) + "\n")


def centroids_from_mask(mask: Volume) -> Centroids:
    """Centre of mass of every vertebra label of a mask (RAS mm)."""
    labels = [int(x) for x in np.unique(mask.array) if x in VERSE_NAMES]
    coms = ndimage.center_of_mass(np.ones(mask.shape), mask.array, labels)
    return {label: mask.voxel_to_world(np.array(c)) for label, c in zip(labels, coms, strict=True)}
