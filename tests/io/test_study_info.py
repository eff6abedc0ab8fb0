"""Study metadata from a DICOM series' header: as the file says, blanks and disagreements noted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from healthivert.io.study_info import dicom_study_info
from healthivert.report.schema import RESULT_SCHEMA

TAGS = {"0010|0010": "DOE^JANE", "0010|0020": "P-0042", "0008|0020": "20260314", "0008|1030": "CT spine",
        "0008|103e": "sag bone 1.0", "0008|0060": "CT", "0008|0070": "ACME", "0018|0050": "1.0",
        "0020|000d": "1.2.826.0.1.3680043.8.498.1", "0020|000e": "1.2.826.0.1.3680043.8.498.2"}


def write_series(folder: Path, tags: dict[str, str], n: int = 4, step_mm: float = 2.5) -> Path:
    """A tiny CT series (8 x 8 pixels of 0.7 mm, ``n`` slices ``step_mm`` apart) written by SimpleITK."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    for i in range(n):
        image = sitk.GetImageFromArray(np.full((1, 8, 8), 100 * i, np.int16))
        image.SetSpacing((0.7, 0.7, step_mm))
        image.SetOrigin((-2.8, -2.8, i * step_mm))
        for tag, value in {**tags, "0020|0013": str(i + 1), "0020|0032": f"-2.8\\-2.8\\{i * step_mm}",
                           "0020|0037": "1\\0\\0\\0\\1\\0"}.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"slice{i:03d}.dcm"))
        writer.Execute(image)
    return folder


def _valid(study: dict) -> None:
    from jsonschema import Draft202012Validator

    Draft202012Validator(RESULT_SCHEMA).validate({"study_id": "s", "inputs": {}, "software_version": "0",
                                                  "vertebrae": [], "study": study})


def test_a_series_written_by_simpleitk(tmp_path) -> None:
    info = dicom_study_info(write_series(tmp_path / "series", TAGS))
    assert info["source"] == "DICOM" and info["files"] == 4
    assert (info["patient_id"], info["patient_name"], info["study_date"]) == ("P-0042", "DOE^JANE", "20260314")
    assert (info["study_description"], info["series_description"]) == ("CT spine", "sag bone 1.0")
    assert (info["modality"], info["manufacturer"]) == ("CT", "ACME")
    assert info["series_uid"] == TAGS["0020|000e"] and info["study_uid"] == TAGS["0020|000d"]
    assert info["pixel_spacing_mm"] == pytest.approx([0.7, 0.7]) and info["slice_spacing_mm"] == pytest.approx(2.5)
    assert info["slice_thickness_mm"] == 1.0  # as the file says, not the slices' spacing
    assert any("SliceThickness in the file (1 mm)" in n for n in info["notes"])
    _valid(info)


def test_blank_identifiers_are_kept_blank_and_noted(tmp_path) -> None:
    tags = {**TAGS, "0010|0020": "", "0020|000e": "", "0018|0050": "2.5"}
    info = dicom_study_info(write_series(tmp_path / "blank", tags))
    assert info["patient_id"] == "" and info["series_uid"] == ""
    assert "patient id is blank in the file" in info["notes"] and "series uid is blank in the file" in info["notes"]
    assert not any("SliceThickness" in n for n in info["notes"])  # 2.5 mm agrees with the positions
    _valid(info)


def test_not_dicom_gives_none(tmp_path) -> None:
    nifti = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.Image(4, 4, 4, sitk.sitkInt16), str(nifti))
    assert dicom_study_info(nifti) is None
    assert dicom_study_info(tmp_path) is None  # a folder without DICOM


@pytest.mark.realdata
def test_real_series_blank_uids_and_a_slice_thickness_the_positions_disagree_with(dicom_dir) -> None:
    info = dicom_study_info(dicom_dir)
    assert info["files"] == 20 and info["modality"] == "CT" and info["manufacturer"] == "SIEMENS"
    assert info["study_date"] == "20221208" and info["series_description"] == "CT Body 3.0"
    assert info["series_uid"] == "" and info["patient_id"] == ""
    assert info["slice_thickness_mm"] == 3.0 and info["slice_spacing_mm"] == pytest.approx(2.0)
    assert info["pixel_spacing_mm"] == pytest.approx([0.9765625, 0.9765625])
    assert "series uid is blank in the file" in info["notes"]
    assert any("SliceThickness in the file (3 mm)" in n and "(2 mm)" in n for n in info["notes"])
    _valid(info)


@pytest.mark.slow
def test_a_study_run_on_a_dicom_ct_records_its_study(tmp_path) -> None:
    """The pipeline on a phantom CT written as a DICOM series: result.json carries ``study``
    (checked against the schema by the writer); the same study from NIfTI has none."""
    from healthivert.phantom import PhantomConfig, make_phantom, write_phantom
    from healthivert.pipeline import RunOptions, run_study
    from healthivert.report.contract import read_result

    paths = write_phantom(make_phantom(PhantomConfig(top="L1", bottom="L2", slice_mm=2.0), 3, subject="sub-dcm"),
                          tmp_path / "phantom")
    ct = sitk.Cast(sitk.ReadImage(str(paths["ct"])), sitk.sitkInt16)
    folder = tmp_path / "dicom"
    folder.mkdir()
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = ct.GetDirection()
    for k in range(ct.GetDepth()):
        image = ct[:, :, k]
        origin = ct.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in {**TAGS, "0020|0013": str(k + 1), "0020|0032": "\\".join(f"{v:.4f}" for v in origin),
                           "0020|0037": "\\".join(f"{v:.6f}" for v in (*direction[0::3], *direction[1::3]))}.items():
            image.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"s{k:04d}.dcm"))
        writer.Execute(image)
    opts = RunOptions(grader="rule")
    result = run_study(tmp_path / "out", mask_path=paths["mask"], ct_path=folder, options=opts, study_id="sub-dcm")
    assert result["study"]["patient_id"] == "P-0042" and result["study"]["files"] == ct.GetDepth()
    assert read_result(tmp_path / "out")["study"]["slice_spacing_mm"] == pytest.approx(ct.GetSpacing()[2], rel=1e-3)
    nifti = run_study(tmp_path / "out_nii", mask_path=paths["mask"], ct_path=paths["ct"], options=opts)
    assert "study" not in nifti
