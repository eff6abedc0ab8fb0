"""``healthivert info``: what an image file holds (geometry, orientation, HU range, labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from healthivert.io.images import nonfinite_voxels, read_sitk
from healthivert.io.volume import volume_from_sitk
from healthivert.labels import TOTALSEG_TO_VERSE, VERSE_NAMES, looks_like_totalseg

_MAX_LABELS = 64


def describe_image(path: str | Path, series_uid: str | None = None) -> dict:
    """Geometry and content of a CT or mask (NIfTI or DICOM folder), as plain values.

    Returns keys: path, format, size, spacing_mm, orientation, origin_mm (RAS), extent_mm,
    dtype, kind ("mask" or "ct"), and hu_range (CT) or labels (mask: VerSe label -> name, voxels).
    """
    path = Path(path)
    image = read_sitk(path, series_uid)
    volume = volume_from_sitk(image)
    src = volume.source
    array = volume.array
    info = {
        "path": str(path),
        "format": "DICOM series" if path.is_dir() else "NIfTI",
        "size": list(src.size),
        "spacing_mm": [round(s, 4) for s in src.spacing],
        "orientation": src.orientation,
        # the first stored voxel's centre, in RAS (SimpleITK stores LPS)
        "origin_mm": [round(-src.origin[0], 2) + 0.0, round(-src.origin[1], 2) + 0.0, round(src.origin[2], 2) + 0.0],
        "extent_mm": [round(float(n * s), 1) for n, s in zip(src.size, src.spacing)],
        "dtype": str(array.dtype),
    }
    values = np.unique(array) if array.dtype.kind in "iub" else None
    if values is not None and values.min() >= 0 and len(values) <= _MAX_LABELS:
        counts = np.bincount(array.ravel().astype(np.int64))
        totalseg = looks_like_totalseg(set(values.tolist()))
        labels = {}
        for v in values[values > 0].tolist():
            verse = TOTALSEG_TO_VERSE.get(v) if totalseg else v
            labels[int(v)] = {
                "verse_label": verse,
                "name": VERSE_NAMES.get(verse, "not a vertebra") if verse else "not a vertebra",
                "voxels": int(counts[v]),
            }
        info.update(kind="mask", label_format="TotalSegmentator" if totalseg else "VerSe", labels=labels)
    else:
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        info.update(
            kind="ct",
            hu_range=[float(finite.min()), float(finite.max())] if finite.size else None,
            # ITK reads NaN in NIfTI as 0; nonfinite_voxels counts them in the file
            nan_voxels=max(int(array.size - finite.size), nonfinite_voxels(path)),
        )
    return info


def format_info(info: dict) -> str:
    """Human-readable lines for :func:`describe_image`'s result."""
    lines = [
        f"file:        {info['path']} ({info['format']})",
        f"size:        {' x '.join(map(str, info['size']))} voxels",
        f"spacing:     {' x '.join(f'{s:g}' for s in info['spacing_mm'])} mm",
        f"extent:      {' x '.join(f'{s:g}' for s in info['extent_mm'])} mm",
        f"orientation: {info['orientation']} (first voxel at RAS {info['origin_mm']} mm)",
        f"data type:   {info['dtype']}",
    ]
    if info["kind"] == "ct":
        lo, hi = info["hu_range"] or (float("nan"), float("nan"))
        lines.append(f"kind:        CT, HU range {lo:g} .. {hi:g}")
        if info["nan_voxels"]:
            lines.append(f"warning:     {info['nan_voxels']} NaN/infinite voxels")
    else:
        lines.append(f"kind:        label mask ({info['label_format']} numbering), {len(info['labels'])} labels")
        for value, lab in info["labels"].items():
            lines.append(f"  {value:>3}  {lab['name']:<14} {lab['voxels']:>9} voxels")
    return "\n".join(lines)
