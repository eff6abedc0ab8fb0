"""Where a batch writes, what counts as done, and cleaning up after crashed runs.

::

    DIR/studies/<study_id>/   one result folder per study (the result contract)
    DIR/cohort.csv            every vertebra of every done study
    DIR/failed.csv            studies that failed: study_id, reason, mask, ct, centroids
    DIR/batch.log             the run's log
    DIR/.batch.lock           held while a batch writes (one batch per folder at a time)
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from healthivert.errors import InputError

# healthivert.io.atomic writes under ".<name>.<random>.part[<suffixes>]" and renames when done.
_PART = re.compile(r"^\..+\.part(\..+)?$")


@dataclass(frozen=True)
class BatchLayout:
    """The files of a batch output folder."""

    root: Path

    @property
    def studies(self) -> Path:
        return self.root / "studies"

    @property
    def cohort_csv(self) -> Path:
        return self.root / "cohort.csv"

    @property
    def failed_csv(self) -> Path:
        return self.root / "failed.csv"

    @property
    def log(self) -> Path:
        return self.root / "batch.log"

    @property
    def lock(self) -> Path:
        return self.root / ".batch.lock"

    def study(self, study_id: str) -> Path:
        return self.studies / study_id

    def is_done(self, study_id: str) -> bool:
        """A study is done when its result.json exists: the result folder appears only when complete."""
        return (self.study(study_id) / "result.json").is_file()

    def done_studies(self) -> list[str]:
        """Ids of every done result folder under ``studies/``, sorted."""
        if not self.studies.is_dir():
            return []
        return sorted(p.name for p in self.studies.iterdir()
                      if p.is_dir() and not p.name.startswith(".") and (p / "result.json").is_file())


def stale_parts(layout: BatchLayout) -> list[Path]:
    """Temporary ``.part`` files and folders left in the output folder by interrupted writes."""
    found = []
    for folder in (layout.root, layout.studies):
        if folder.is_dir():
            found += [p for p in folder.iterdir() if _PART.match(p.name)]
    return sorted(found)


def remove_stale_parts(layout: BatchLayout) -> list[Path]:
    """Delete :func:`stale_parts`; only safe while no batch is writing into the folder."""
    removed = stale_parts(layout)
    for p in removed:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
    return removed


@contextmanager
def exclusive(layout: BatchLayout) -> Iterator[None]:
    """Hold the output folder for one batch at a time (an advisory ``flock`` on ``.batch.lock``).

    Two batches writing into one folder would remove each other's unfinished writes and
    overwrite each other's tables. Where ``fcntl`` is missing (Windows) nothing is locked.

    Raises:
        InputError: another batch holds the folder.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError(f"{layout.root}: another batch is writing into this folder") from None
        yield
    finally:
        os.close(fd)  # releases the lock
