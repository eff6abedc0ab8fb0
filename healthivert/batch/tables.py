"""The cohort tables of a batch: ``cohort.csv`` (every vertebra of every done study) and
``failed.csv`` (the studies that failed and why). Both are rewritten atomically on change,
sorted by study id, so their content does not depend on the order studies finish in."""

from __future__ import annotations

import csv
from pathlib import Path

from healthivert.batch.spec import StudySpec
from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.labels import is_anchored
from healthivert.report.contract import CSV_COLUMNS

FAILED_COLUMNS = ["study_id", "reason", "mask", "ct", "centroids"]


def read_vertebra_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a study's ``vertebrae.csv``, keyed by :data:`CSV_COLUMNS` ("" where absent)."""
    with Path(path).open(newline="", encoding="utf-8") as fh:
        return [{c: row.get(c) or "" for c in CSV_COLUMNS} for row in csv.DictReader(fh)]


class CohortTable:
    """``cohort.csv``: one row per vertebra of every done study (columns :data:`CSV_COLUMNS`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: dict[str, list[dict[str, str]]] = {}

    def __contains__(self, study_id: str) -> bool:
        return study_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, study_id: str, rows: list[dict[str, str]]) -> None:
        """Set a study's rows (a study appears once, however often it is added)."""
        self._rows[study_id] = [{c: row.get(c, "") for c in CSV_COLUMNS} for row in rows]

    def uncertain_labels(self) -> list[str]:
        """Studies whose vertebra labels rest on no anchor, or on anchors that disagree."""
        return sorted(sid for sid, rows in self._rows.items()
                      if any(row["labels_anchor"] and not is_anchored(row["labels_anchor"]) for row in rows))

    def write(self) -> Path:
        """Rewrite the file atomically, studies sorted by id."""
        rows = (row for sid in sorted(self._rows) for row in self._rows[sid])
        return atomic_write_text(self.path, csv_text(CSV_COLUMNS, rows))


class FailedTable:
    """``failed.csv``: study_id, one-line reason and input paths of every failed study.

    Its columns include a manifest's (study_id, mask, ct, centroids), so it can be given back
    to ``healthivert batch`` as INPUT to retry just those studies.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._rows: dict[str, dict[str, str]] = {}
        if self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    if row.get("study_id"):
                        self._rows[row["study_id"]] = {c: row.get(c) or "" for c in FAILED_COLUMNS}

    def __contains__(self, study_id: str) -> bool:
        return study_id in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    def reason(self, study_id: str) -> str | None:
        row = self._rows.get(study_id)
        return row["reason"] if row else None

    def record(self, spec: StudySpec, reason: str) -> None:
        """Record (or replace) a study's failure; the reason is kept on one line."""
        self._rows[spec.study_id] = {"study_id": spec.study_id, "reason": " ".join(reason.split()), **spec.inputs}

    def discard(self, study_id: str) -> bool:
        """Forget a study's failure (it succeeded); True when it was recorded."""
        return self._rows.pop(study_id, None) is not None

    def write(self) -> Path:
        """Rewrite the file atomically (header only when nothing failed), sorted by study id."""
        return atomic_write_text(self.path, csv_text(FAILED_COLUMNS, (self._rows[s] for s in sorted(self._rows))))
