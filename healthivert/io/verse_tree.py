"""A VerSe download tree: list its studies and say what each one lacks.

Layout (VerSe 2019 / 2020, BIDS-like)::

    rawdata/sub-X/sub-X_ct.nii.gz
    derivatives/sub-X/sub-X_seg-vert_msk.nii.gz
    derivatives/sub-X/sub-X_seg-subreg_ctd.json

Some releases nest a session folder or put files directly in the subject folder; files are
found by their suffix anywhere under the subject's folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from healthivert.errors import InputError

CT_SUFFIX = "_ct.nii.gz"
MASK_SUFFIX = "_seg-vert_msk.nii.gz"
CENTROID_SUFFIX = "_seg-subreg_ctd.json"
BODY_SUFFIX = "_seg-body_msk.nii.gz"
TRUTH_NAME = "truth.json"


@dataclass(frozen=True)
class VerseStudy:
    """One subject of a VerSe tree; paths are None where the file is missing."""

    subject: str
    ct: Path | None = None
    mask: Path | None = None
    centroids: Path | None = None
    extras: dict[str, Path] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        """Names of the missing parts ("ct", "mask", "centroids")."""
        return [name for name in ("ct", "mask", "centroids") if getattr(self, name) is None]


def _find(folder: Path, suffix: str) -> Path | None:
    if not folder.is_dir():
        return None
    hits = sorted(folder.rglob(f"*{suffix}"))
    return hits[0] if hits else None


def read_verse_tree(root: str | Path) -> list[VerseStudy]:
    """List the studies of a VerSe tree, sorted by subject.

    Raises:
        InputError: ``root`` is not a folder or has neither ``rawdata/`` nor ``derivatives/``.
    """
    root = Path(root)
    raw, deriv = root / "rawdata", root / "derivatives"
    if not root.is_dir():
        raise InputError(f"{root}: no such folder")
    if not raw.is_dir() and not deriv.is_dir():
        raise InputError(f"{root}: not a VerSe tree (no rawdata/ or derivatives/ folder)")
    subjects = sorted(
        {p.name for base in (raw, deriv) if base.is_dir() for p in base.iterdir()
         if p.is_dir() and p.name.startswith("sub-")}
    )
    studies = []
    for sub in subjects:
        extras = {}
        for name, suffix in (("body_mask", BODY_SUFFIX), ("truth", TRUTH_NAME)):
            found = _find(deriv / sub, suffix)
            if found is not None:
                extras[name] = found
        studies.append(
            VerseStudy(
                subject=sub,
                ct=_find(raw / sub, CT_SUFFIX),
                mask=_find(deriv / sub, MASK_SUFFIX),
                centroids=_find(deriv / sub, CENTROID_SUFFIX),
                extras=extras,
            )
        )
    return studies


def study_paths(root: str | Path, subject: str) -> dict[str, Path]:
    """Where a study's files go in a VerSe tree (for writers)."""
    root = Path(root)
    return {
        "ct": root / "rawdata" / subject / f"{subject}{CT_SUFFIX}",
        "mask": root / "derivatives" / subject / f"{subject}{MASK_SUFFIX}",
        "centroids": root / "derivatives" / subject / f"{subject}{CENTROID_SUFFIX}",
        "body_mask": root / "derivatives" / subject / f"{subject}{BODY_SUFFIX}",
        "truth": root / "derivatives" / subject / TRUTH_NAME,
    }
