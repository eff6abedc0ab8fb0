"""Where a batch writes, what counts as done, and cleaning up after crashed runs.

::

    DIR/studies/<study_id>/   one result folder per study (the result contract)
    DIR/cohort.csv            every vertebra of every done study
    DIR/failed.csv            studies that failed: study_id, reason, mask, ct, centroids
    DIR/batch.log             the run's log
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

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
