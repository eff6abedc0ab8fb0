"""Test helpers: the reference-data location and the CLI's bad-input contract."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT / ".." / "shared" / "data"


def shared_path(relative: str) -> Path:
    """A file or folder under ``../shared/data``, or skip the test saying what is missing.

    The data is never copied into the repository; a fresh clone has no ``../shared``.
    """
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data folder {SHARED_DATA.resolve()} is absent (no ../shared next to the project)")
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"reference data {relative} is absent from {SHARED_DATA.resolve()}")
    return path


def assert_one_line_error(rc: int, captured, *fragments: str) -> str:
    """The CLI's contract for bad input: exit 2, one stderr line "healthivert: error: ...",
    no traceback, nothing on stdout. Returns the line."""
    out, err = captured
    assert rc == 2, (rc, out, err)
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith("healthivert: error:"), lines[0]
    assert out == ""
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


#: phantom_verse_tree's cohorts, written once per (top, bottom, slice_mm) in this process and
#: copied for each caller (the same seeds give the same studies; several tests ask for the same)
_VERSE_TREES: dict[tuple[str, str, float], tuple[Path, list[str]]] = {}


def _written_verse_tree(top: str, bottom: str, slice_mm: float) -> tuple[Path, list[str]]:
    import atexit
    import shutil
    import tempfile

    from healthivert.phantom import PhantomConfig, write_cohort

    key = (top, bottom, slice_mm)
    if key not in _VERSE_TREES:
        folder = Path(tempfile.mkdtemp(prefix="healthivert-verse-tree-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        subjects = write_cohort(folder, 2, 40, PhantomConfig(top=top, bottom=bottom, slice_mm=slice_mm))
        _VERSE_TREES[key] = folder, subjects
    return _VERSE_TREES[key]


def phantom_verse_tree(root: Path, top: str, bottom: str, slice_mm: float) -> tuple[Path, Path, list[str]]:
    """Two phantom studies written as a VerSe download tree, and a manifest that puts the
    first in the "train" split and the second in "val" (every vertebra grade 0):
    (tree, manifest, subjects). The tree is the caller's own copy of one written once per
    process for these arguments."""
    import shutil

    from healthivert.labels import VERSE_NAMES, verse_label

    tree = root / "verse"
    written, subjects = _written_verse_tree(top, bottom, slice_mm)
    shutil.copytree(written, tree)
    subjects = list(subjects)
    rows = ["subject,vertebra_label,vertebra,genant_grade,split"]
    labels = range(verse_label(top), verse_label(bottom) + 1)
    for subject, split in zip(subjects, ("train", "val")):
        rows += [f"{subject},{lab},{VERSE_NAMES[lab]},0,{split}" for lab in labels]
    manifest = root / "manifest.csv"
    manifest.write_text("\n".join(rows) + "\n")
    return tree, manifest, subjects
