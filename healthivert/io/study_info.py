"""What identifies a study to a radiologist, from a DICOM series' header (SimpleITK).

The values are kept as the file gives them (the project does not anonymise): a blank tag stays
blank ("") and is listed in ``notes``; the slice thickness is the file's SliceThickness, which can
disagree with the spacing of the slice positions (the images use the positions): both are given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from healthivert.io.images import _itk_warnings_off, dicom_series

#: result.json ``study`` key -> DICOM tag (group|element), as SimpleITK names them.
DICOM_TAGS: dict[str, str] = {
    "patient_id": "0010|0020",
    "patient_name": "0010|0010",
    "study_date": "0008|0020",
    "study_description": "0008|1030",
    "series_description": "0008|103e",
    "modality": "0008|0060",
    "manufacturer": "0008|0070",
    "slice_thickness_mm": "0018|0050",
    "pixel_spacing_mm": "0028|0030",
    "series_uid": "0020|000e",
    "study_uid": "0020|000d",
}
_NUMBERS = ("slice_thickness_mm", "pixel_spacing_mm")


def _header(path: str) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    reader.LoadPrivateTagsOff()
    with _itk_warnings_off():
        reader.ReadImageInformation()
    return reader


def _tag(reader: sitk.ImageFileReader, tag: str) -> str | None:
    return reader.GetMetaData(tag).strip() if reader.HasMetaDataKey(tag) else None


def _numbers(text: str | None) -> list[float] | None:
    try:
        return [float(v) for v in text.split("\\")] if text else None
    except ValueError:
        return None


def _slice_step(first: sitk.ImageFileReader, last: sitk.ImageFileReader, n: int) -> float | None:
    """The mean spacing of the slice positions along the slices' normal (mm), from the first and
    the last file of the series."""
    orient = _numbers(_tag(first, "0020|0037"))
    p0, p1 = _numbers(_tag(first, "0020|0032")), _numbers(_tag(last, "0020|0032"))
    if n < 2 or not orient or len(orient) != 6 or not p0 or not p1 or len(p0) != 3 or len(p1) != 3:
        return None
    normal = np.cross(orient[:3], orient[3:])
    return abs(float(np.dot(np.subtract(p1, p0), normal))) / (n - 1)


def dicom_study_info(path: str | Path, series_uid: str | None = None) -> dict | None:
    """The ``study`` object of result.json for a DICOM series folder (None for anything else, or a
    folder whose series cannot be told apart without ``series_uid``).

    Keys: ``source`` ("DICOM"), ``files``, each of ``DICOM_TAGS`` (text as in the first file's
    header, "" when blank, None when absent; ``slice_thickness_mm`` a number and
    ``pixel_spacing_mm`` [row, column] numbers when readable), ``slice_spacing_mm`` (from the slice
    positions), and ``notes`` (blank identifiers; a SliceThickness that disagrees with the positions).
    """
    path = Path(path)
    if not path.is_dir():
        return None
    series = dicom_series(path)
    if series_uid is None and len(series) == 1:
        series_uid = next(iter(series))
    files = series.get(series_uid) if series_uid is not None else None
    if not files:
        return None
    first = _header(files[0])
    info: dict = {"source": "DICOM", "files": len(files)}
    for key, tag in DICOM_TAGS.items():
        text = _tag(first, tag)
        if key in _NUMBERS:
            values = _numbers(text)
            info[key] = None if values is None else (values[0] if key == "slice_thickness_mm" else values)
        else:
            info[key] = text
    step = _slice_step(first, _header(files[-1]), len(files)) if len(files) > 1 else None
    info["slice_spacing_mm"] = None if step is None else round(step, 4)
    notes = [f"{key.replace('_', ' ')} is blank in the file" for key in ("patient_id", "series_uid", "study_uid")
             if info[key] == ""]
    thickness = info["slice_thickness_mm"]
    if thickness is not None and step and abs(thickness - step) > 0.1 * step:
        notes.append(f"SliceThickness in the file ({thickness:g} mm) differs from the spacing of the slice "
                     f"positions ({step:.3g} mm), which the images use")
    info["notes"] = notes
    return info
