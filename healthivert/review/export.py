"""Exports of reviewed results: CSV and JSON (algorithm and reviewed grades side by side), the
height-loss maps (NIfTI and PNG, copied) and an HTML report per study with its audit trail.

A study a reviewer relabelled is exported under the shifted names (``name``) with the algorithm's
beside them (``algorithm_name``, ``label``, ``label_shift``); the copied map files keep the
algorithm's names, as result.json does. ``labels_anchor`` / ``labels_anchored`` carry how the
algorithm's labels were anchored (empty for results written before that was recorded)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from healthivert import __version__
from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write, atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.review.paths import ResultsFolder, UnsafePathError
from healthivert.review.render import StudyImages, load_study_images
from healthivert.review.report_html import study_report_html
from healthivert.review.store import ReviewStore
from healthivert.review.studies import Study
from healthivert.review.tables import EXPORT_COLUMNS, vertebra_rows

CSV_NAME, JSON_NAME, REPORT_NAME = "reviewed_vertebrae.csv", "reviewed_vertebrae.json", "report.html"


def rows_csv(rows: list[dict]) -> str:
    """CSV text of vertebra rows (``EXPORT_COLUMNS``; empty cells for missing values)."""
    return csv_text(EXPORT_COLUMNS, rows)


def rows_json(rows: list[dict], audit: list[dict], source: str, relabels: list[dict] | None = None) -> str:
    """JSON text: the vertebra rows, the audit trail they came from, and the relabellings."""
    return json.dumps({"exported_at": datetime.now(UTC).isoformat(), "software_version": __version__,
                       "results": source, "columns": EXPORT_COLUMNS, "vertebrae": rows, "audit": audit,
                       "relabels": relabels or []}, indent=1) + "\n"


def study_images_or_none(study: Study) -> StudyImages | None:
    """The study's CT / mask, or None when neither can be read any more (moved, deleted)."""
    try:
        images = load_study_images(study)
    except InputError:
        return None
    return images if images.display is not None else None


@dataclass
class ExportSummary:
    """What an export wrote."""

    out: Path
    csv: Path
    json: Path
    reports: dict[str, Path] = field(default_factory=dict)
    maps: int = 0
    rows: int = 0


def export_results(
    folders: ResultsFolder, store: ReviewStore, out: str | Path,
    progress: Callable[[int, int, str], None] | None = None,
) -> ExportSummary:
    """Export every study of a results folder with its reviews.

    Writes ``out/reviewed_vertebrae.{csv,json}`` and, per study, ``out/<study_id>/report.html``
    and ``out/<study_id>/height_loss/*`` (copies of the maps, NIfTI and PNG).
    """
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    reviews, shifts = store.reviews(), store.current_shifts()
    all_rows: list[dict] = []
    summary = ExportSummary(out, out / CSV_NAME, out / JSON_NAME)
    ids = sorted(folders.studies)
    for i, study_id in enumerate(ids):
        if progress:
            progress(i, len(ids), study_id)
        study = Study.load(folders, study_id)
        rows = vertebra_rows(study, reviews, shifts.get(study_id, 0))
        all_rows += rows
        target = out / study.study_id
        summary.maps += _copy_maps(study, target / "height_loss")
        html = study_report_html(study, rows, study_images_or_none(study),
                                 audit=[a.as_dict() for a in store.audit(study_id)],
                                 relabels=[r.as_dict() for r in store.label_shifts(study_id)])
        summary.reports[study_id] = atomic_write_text(target / REPORT_NAME, html)
    audit = [a.as_dict() for a in store.audit() if a.study_id in folders.studies]
    relabels = [r.as_dict() for r in store.label_shifts() if r.study_id in folders.studies]
    atomic_write_text(summary.csv, rows_csv(all_rows))
    atomic_write_text(summary.json, rows_json(all_rows, audit, str(folders.root), relabels))
    summary.rows = len(all_rows)
    if progress:
        progress(len(ids), len(ids), "done")
    return summary


def _copy_maps(study: Study, target: Path) -> int:
    """Copy the study's ``height_loss`` files that resolve inside the results folder."""
    try:
        folder = study.folders.study_file(study.study_id, "height_loss")
    except UnsafePathError:
        return 0
    if not folder.is_dir():
        return 0
    n = 0
    for src in sorted(folder.iterdir()):
        if not src.name.endswith((".nii.gz", ".png")):
            continue
        try:
            safe = study.folders.study_file(study.study_id, "height_loss", src.name)
        except UnsafePathError:
            continue  # a symlink to somewhere else
        if safe.is_file():
            atomic_write(target / src.name, lambda tmp, s=safe: shutil.copyfile(s, tmp))
            n += 1
    return n
