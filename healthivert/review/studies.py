"""One study's results as the viewer sees them: result.json (read-only) and its files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthivert.report.contract import RESULT_FILE
from healthivert.report.record import VertebraRecord
from healthivert.review.paths import ResultsFolder, UnsafePathError, is_safe_name

GRADE_NAMES: dict[int, str] = {0: "normal", 1: "mild", 2: "moderate", 3: "severe"}
#: (shown as, result.json ``study`` key): what identifies a study, in the order shown.
STUDY_FIELDS: tuple[tuple[str, str], ...] = (
    ("patient ID", "patient_id"), ("patient name", "patient_name"), ("study date", "study_date"),
    ("study", "study_description"), ("series", "series_description"), ("modality", "modality"),
    ("manufacturer", "manufacturer"), ("slice thickness (file)", "slice_thickness_mm"),
    ("slice spacing (positions)", "slice_spacing_mm"), ("pixel spacing", "pixel_spacing_mm"),
    ("series UID", "series_uid"),
)
NOT_DICOM = "not DICOM: no study metadata"


def _shown(key: str, value) -> str:
    if value is None:
        return "(not in the file)"
    if value == "":
        return "(blank in the file)"
    if key == "study_date" and len(value) == 8 and value.isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:]}"
    if key == "pixel_spacing_mm":
        return " x ".join(f"{v:g}" for v in value) + " mm"
    if key.endswith("_mm"):
        return f"{value:g} mm"
    return str(value)


def study_metadata(study: dict | None) -> tuple[list[tuple[str, str]], list[str]]:
    """result.json's ``study`` object as (field, value) pairs to show (dates as YYYY-MM-DD, blank
    and missing tags said so) and its notes; without one, one pair: the input was not DICOM."""
    if not study:
        return [("source", NOT_DICOM)], []
    return [(shown, _shown(key, study.get(key))) for shown, key in STUDY_FIELDS], list(study.get("notes") or [])
CROP_KINDS: tuple[str, ...] = ("original", "pseudo_healthy", "ct")


@dataclass(frozen=True)
class Study:
    """A study's result, read once; the viewer never writes it.

    Attributes:
        study_id: from result.json.
        folder: resolved result folder (inside the results folder).
        result: the parsed result.json, checked against the result contract (its ``vertebrae``
            as :class:`VertebraRecord`).
        folders: the results folder it belongs to (for path checks).
    """

    study_id: str
    folder: Path
    result: dict
    folders: ResultsFolder

    @classmethod
    def load(cls, folders: ResultsFolder, study_id: object) -> Study:
        """Load a discovered study.

        Raises:
            UnknownStudyError: any other id.
            ResultContractError: its result.json cannot be read or does not follow the result
                contract (a ``ValueError``).
        """
        path = folders.study_file(study_id, RESULT_FILE)
        result = folders.read_result(path)
        return cls(result["study_id"], path.parent, result, folders)

    @property
    def vertebrae(self) -> list[VertebraRecord]:
        return list(self.result.get("vertebrae") or [])

    def vertebra(self, label: int) -> VertebraRecord:
        """The record of a vertebra label (``KeyError`` when absent)."""
        for v in self.vertebrae:
            if v.label == int(label):
                return v
        raise KeyError(f"study {self.study_id} has no vertebra label {label}")

    @property
    def metadata(self) -> tuple[list[tuple[str, str]], list[str]]:
        """The study's DICOM metadata as (field, value) pairs to show, and its notes; a study
        not read from DICOM has one pair saying so."""
        return study_metadata(self.result.get("study"))

    @property
    def labels(self) -> dict:
        """How the vertebra labels were found (result.json ``labels``); empty for older results."""
        return dict(self.result.get("labels") or {})

    @property
    def labels_anchored(self) -> bool | None:
        """False when the labels are a guess or their anchors disagree; None when not recorded."""
        anchored = self.labels.get("anchored")
        return None if anchored is None else bool(anchored)

    @property
    def synthesizer(self) -> str | None:
        """The pseudo-healthy method the study asked for (``"prior"``, ``"gan"``)."""
        return self.result.get("synthesizer")

    @property
    def graded(self) -> list[VertebraRecord]:
        """Vertebrae the algorithm graded."""
        return [v for v in self.vertebrae if v.graded]

    @property
    def worst_grade(self) -> int | None:
        grades = [v.genant_grade for v in self.graded]
        return max(grades) if grades else None

    def input_path(self, kind: str) -> Path | None:
        """A recorded input (``"ct"``, ``"mask"``) when it exists on disk, else None.

        These are the study's own data, read exactly as recorded in result.json; relative
        paths are taken from the study folder's parent, then the working directory.
        """
        recorded = (self.result.get("inputs") or {}).get(kind)
        if not recorded:
            return None
        path = Path(recorded).expanduser()
        tries = [path] if path.is_absolute() else [self.folder.parent / path, Path.cwd() / path]
        return next((p for p in tries if p.exists()), None)

    def _file(self, *parts: str) -> Path | None:
        try:
            path = self.folders.study_file(self.study_id, *parts)
        except UnsafePathError:
            return None
        return path if path.is_file() else None

    def loss_map(self, name: str, kind: str = "png") -> Path | None:
        """``height_loss/<name>.png`` (kind "png"), ``.nii.gz`` ("mm") or ``_fraction.nii.gz``."""
        if not is_safe_name(name):
            return None
        suffix = {"png": ".png", "mm": ".nii.gz", "fraction": "_fraction.nii.gz"}[kind]
        return self._file("height_loss", f"{name}{suffix}")

    def crop(self, name: str, kind: str) -> Path | None:
        """``straightened/<name>_<kind>.nii.gz`` for kind in original, pseudo_healthy, ct."""
        if not is_safe_name(name) or kind not in CROP_KINDS:
            return None
        return self._file("straightened", f"{name}_{kind}.nii.gz")


def review_status(n_reviewable: int, n_reviewed: int) -> str:
    """``unreviewed``, ``partly`` or ``reviewed`` from counts of vertebrae."""
    if n_reviewed == 0:
        return "unreviewed"
    return "reviewed" if n_reviewed >= n_reviewable else "partly"
