"""What one study of a batch is: an id and the files it is read from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from healthivert.errors import InputError
from healthivert.io.ids import is_safe_name


def check_study_id(study_id: str, where: str = "") -> str:
    """Return ``study_id`` if it can name a result folder; else raise :class:`InputError`.

    An id names ``DIR/studies/<id>/``: 1-128 letters, digits, ``.``, ``_`` or ``-``, starting
    with a letter or digit (dot-names are the temporary ``.part`` folders of unfinished writes).
    """
    if not is_safe_name(study_id):
        prefix = f"{where}: " if where else ""
        raise InputError(f"{prefix}study id {study_id!r} must be 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return study_id


@dataclass(frozen=True)
class StudySpec:
    """One study to process: its id and input paths (None where absent).

    ``ct`` is a NIfTI file or a DICOM series folder; ``mask`` a VerSe-labelled vertebra mask;
    ``centroids`` a centroid JSON (computed from the mask when absent).
    """

    study_id: str
    mask: Path | None = None
    ct: Path | None = None
    centroids: Path | None = None

    def __post_init__(self) -> None:
        check_study_id(self.study_id)
        for name in ("mask", "ct", "centroids"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                object.__setattr__(self, name, Path(value))

    @property
    def inputs(self) -> dict[str, str]:
        """Input paths as strings ("" where absent), keyed mask / ct / centroids."""
        return {name: str(getattr(self, name) or "") for name in ("mask", "ct", "centroids")}

    def describe(self) -> str:
        """One line: which inputs the study has."""
        have = [f"{name}={getattr(self, name)}" for name in ("mask", "ct", "centroids") if getattr(self, name)]
        return "; ".join(have) if have else "no input files"


def check_unique(specs: list[StudySpec], where: str = "") -> list[StudySpec]:
    """Raise :class:`InputError` when two specs share a study id; returns ``specs``."""
    seen: set[str] = set()
    for spec in specs:
        if spec.study_id in seen:
            prefix = f"{where}: " if where else ""
            raise InputError(f"{prefix}study id {spec.study_id!r} appears more than once")
        seen.add(spec.study_id)
    return specs
