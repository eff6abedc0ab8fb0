"""Find the studies of a batch INPUT: a VerSe tree, a plain folder, or a manifest CSV.

- **VerSe tree** (a folder with ``rawdata/`` or ``derivatives/``): one study per subject,
  read by :func:`healthivert.io.verse_tree.read_verse_tree`.
- **Manifest CSV**: columns ``study_id, mask, ct, centroids`` (``mask``/``ct``/``centroids``
  may be empty or absent); relative paths are resolved against the CSV's folder.
- **Plain folder**: files are paired by stem: masks ``X_seg-vert_msk.nii.gz`` or
  ``X_msk.nii.gz``, CTs ``X_ct.nii.gz`` (or any other NIfTI ``X.nii.gz``), centroids
  ``X_seg-subreg_ctd.json`` or ``X_ctd.json``, and DICOM series folders ``X/`` (CTs). Every
  stem with a mask or a CT is a study; other segmentations (``X_seg-body_msk``) are ignored.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from healthivert.batch.spec import StudySpec, check_study_id, check_unique
from healthivert.errors import InputError
from healthivert.io.verse_tree import read_verse_tree

MANIFEST_ID_COLUMN = "study_id"
MANIFEST_PATH_COLUMNS = ("mask", "ct", "centroids")
NIFTI_SUFFIXES = (".nii.gz", ".nii")
# Checked in order: the first pattern that matches a file's name gives its role and stem.
_NIFTI_ROLES = (
    (re.compile(r"^(?P<stem>.+)_seg-vert_msk$"), "mask"),
    (re.compile(r"^(?P<stem>.+)_seg-[^_]+_msk$"), None),  # other segmentations: not inputs
    (re.compile(r"^(?P<stem>.+)_msk$"), "mask"),
    (re.compile(r"^(?P<stem>.+)_ct$"), "ct"),
    (re.compile(r"^(?P<stem>.+)$"), "ct"),
)
_JSON_ROLES = (
    (re.compile(r"^(?P<stem>.+)_seg-subreg_ctd\.json$"), "centroids"),
    (re.compile(r"^(?P<stem>.+)_ctd\.json$"), "centroids"),
)


def discover_studies(source: str | Path) -> list[StudySpec]:
    """The studies of a batch INPUT, sorted by study id, with absolute paths.

    Raises:
        InputError: ``source`` is missing, is none of the three kinds, holds no study, or
            names a study twice (or with an id that cannot name a folder).
    """
    source = Path(source).expanduser().absolute()  # workers may run elsewhere: absolute paths
    if not source.exists():
        raise InputError(f"{source}: no such file or folder")
    if source.is_file():
        if source.suffix.lower() != ".csv":
            raise InputError(f"{source}: INPUT must be a VerSe tree, a folder of studies or a manifest .csv file")
        specs = read_study_manifest(source)
    elif (source / "rawdata").is_dir() or (source / "derivatives").is_dir():
        specs = [StudySpec(s.subject, mask=s.mask, ct=s.ct, centroids=s.centroids) for s in read_verse_tree(source)]
    else:
        specs = scan_folder(source)
    if not specs:
        raise InputError(f"{source}: no studies found (no vertebra masks, CTs or DICOM series)")
    return sorted(check_unique(specs, str(source)), key=lambda s: s.study_id)


def read_study_manifest(path: str | Path) -> list[StudySpec]:
    """Studies listed in a CSV with columns study_id, mask, ct, centroids.

    Empty cells mean "absent"; relative paths are resolved against the CSV's folder. A
    missing file is not checked here: that study fails on its own when it runs.
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = [c.strip() for c in reader.fieldnames or []]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable CSV ({' '.join(str(exc).split())})") from None
    if MANIFEST_ID_COLUMN not in header or not any(c in header for c in ("mask", "ct")):
        raise InputError(f"{path}: a study manifest needs columns study_id and mask and/or ct "
                         f"(optionally centroids); found {', '.join(header) or 'none'}")
    specs = []
    for line, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items() if k is not None}
        if not any(row.values()):
            continue
        study_id = check_study_id(row.get(MANIFEST_ID_COLUMN, ""), f"{path}: line {line}")
        paths = {c: _resolve(row.get(c, ""), path.parent) for c in MANIFEST_PATH_COLUMNS}
        specs.append(StudySpec(study_id, **paths))
    return check_unique(specs, str(path))


def _resolve(cell: str, base: Path) -> Path | None:
    if not cell:
        return None
    p = Path(cell).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


def scan_folder(folder: str | Path) -> list[StudySpec]:
    """Pair the NIfTI files, centroid JSONs and DICOM series folders of a plain folder by stem."""
    folder = Path(folder)
    found: dict[str, dict[str, Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        role_stem = _role_of(entry)
        if role_stem is None:
            continue
        role, stem = role_stem
        files = found.setdefault(stem, {})
        if role in files:
            raise InputError(f"{folder}: study {stem!r} has two {role} inputs: {files[role].name} and {entry.name}")
        files[role] = entry
    specs = []
    for stem, files in found.items():
        if "mask" in files or "ct" in files:
            specs.append(StudySpec(check_study_id(stem, str(folder)), **files))
    return specs


def _role_of(entry: Path) -> tuple[str, str] | None:
    name = entry.name
    if entry.is_dir():
        return ("ct", name) if is_dicom_folder(entry) else None
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            base = name[: -len(suffix)]
            for pattern, role in _NIFTI_ROLES:
                m = pattern.match(base)
                if m:
                    return (role, m["stem"]) if role else None
    for pattern, role in _JSON_ROLES:
        m = pattern.match(name)
        if m:
            return role, m["stem"]
    return None


def is_dicom_folder(folder: Path, probe: int = 5) -> bool:
    """True when one of the folder's first files is DICOM (``DICM`` at byte 128, or ``.dcm``)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))[:probe]
    for f in files:
        if f.suffix.lower() == ".dcm":
            return True
        try:
            with f.open("rb") as fh:
                fh.seek(128)
                if fh.read(4) == b"DICM":
                    return True
        except OSError:
            continue
    return False
