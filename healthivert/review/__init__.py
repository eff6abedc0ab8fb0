"""Clinician review of graded studies: the results folder (path-safe), the review database with
its audit trail, study summaries, images, exports and the HTML report. The Streamlit viewer
(app/) and the CLI (``view``, ``export``) are thin layers over this package."""

from healthivert.review.db import AuditEntry, LabelShift, Review, default_url
from healthivert.review.export import ExportSummary, export_results
from healthivert.review.overview import filter_studies, list_studies, sort_studies
from healthivert.review.paths import ResultsFolder, UnknownStudyError, UnsafePathError, resolve_inside
from healthivert.review.store import (
    RelabelConflictError,
    RelabelRequest,
    ReviewConflictError,
    ReviewRequest,
    ReviewStore,
)
from healthivert.review.studies import Study
from healthivert.review.tables import EXPORT_COLUMNS, study_summary, vertebra_rows

__all__ = [
    "AuditEntry", "EXPORT_COLUMNS", "ExportSummary", "LabelShift", "RelabelConflictError", "RelabelRequest",
    "ResultsFolder", "Review", "ReviewConflictError",
    "ReviewRequest", "ReviewStore", "Study", "UnknownStudyError", "UnsafePathError", "default_url", "export_results",
    "filter_studies", "list_studies", "resolve_inside", "sort_studies", "study_summary", "vertebra_rows",
]
