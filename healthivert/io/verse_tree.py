"""A VerSe download tree: list its studies and say what each one lacks.

Layout (VerSe 2019 / 2020, BIDS-like)::

    rawdata/sub-X/sub-X_ct.nii.gz
    derivatives/sub-X/sub-X_seg-vert_msk.nii.gz
    derivatives/sub-X/sub-X_seg-subreg_ctd.json

Some releases nest a session folder or put files directly in the subject folder; files are
found by their suffix anywhere under the subject's folders. A subject folder may hold several
scans (VerSe 2019's ``sub-verse400_split-verse090_ct.nii.gz`` beside ``..._split-verse155_...``,
VerSe 2020's ``_dir-ax`` and ``_dir-sag``): each scan is then a study of its own, named by its
files' common stem (``sub-verse400_split-verse090``), its CT, mask and centroids paired by that
stem. A folder with one file of each kind is one study named by the folder, as before.
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
    """One study of a VerSe tree: a subject, or one scan of a subject folder holding several
    (``subject`` is then the scan's stem, ``sub-verse400_split-verse090``); paths are None where
    the file is missing."""

    subject: str
    ct: Path | None = None
    mask: Path | None = None
    centroids: Path | None = None
    extras: dict[str, Path] = field(default_factory=dict)

    def in_folder(self, name: str) -> bool:
        """Whether this study is subject ``name`` or one of its scans (``name`` + ``_...``)."""
        return self.subject == name or self.subject.startswith(f"{name}_")

    @property
    def missing(self) -> list[str]:
        """Names of the missing parts ("ct", "mask", "centroids")."""
        return [name for name in ("ct", "mask", "centroids") if getattr(self, name) is None]


def _find_all(folder: Path, suffix: str) -> dict[str, Path]:
    """Files ending in ``suffix`` anywhere under ``folder``, by stem (the name less the suffix)."""
    if not folder.is_dir():
        return {}
    return {p.name[: -len(suffix)]: p for p in sorted(folder.rglob(f"*{suffix}"))}


_PARTS = {"ct": CT_SUFFIX, "mask": MASK_SUFFIX, "centroids": CENTROID_SUFFIX}


def _subject_studies(raw: Path, deriv: Path, sub: str) -> list[VerseStudy]:
    """The studies of one subject folder: one, named by the folder, when it holds at most one
    file of each kind; else one per scan stem."""
    found = {part: _find_all(raw / sub if part == "ct" else deriv / sub, suffix) for part, suffix in _PARTS.items()}
    body = _find_all(deriv / sub, BODY_SUFFIX)
    truth = sorted((deriv / sub).rglob(TRUTH_NAME)) if (deriv / sub).is_dir() else []
    if all(len(files) <= 1 for files in (*found.values(), body)):
        extras = {name: hits[0] for name, hits in (("body_mask", list(body.values())), ("truth", truth)) if hits}
        return [VerseStudy(sub, *(next(iter(found[part].values()), None) for part in _PARTS), extras=extras)]
    stems = sorted(set().union(*found.values()))
    return [VerseStudy(stem, *(found[part].get(stem) for part in _PARTS),
                       extras={"body_mask": body[stem]} if stem in body else {}) for stem in stems]


def read_verse_tree(root: str | Path) -> list[VerseStudy]:
    """List the studies of a VerSe tree, sorted by subject (one per scan where a subject
    folder holds several).

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
    return sorted((study for sub in subjects for study in _subject_studies(raw, deriv, sub)), key=lambda s: s.subject)


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
