"""Cohort batches on Dask: discover studies, run each into its result folder, collect tables.

Example::

    from healthivert.batch import discover_studies, run_batch
    from healthivert.pipeline import RunOptions

    specs = discover_studies("verse19/")
    summary = run_batch(specs, "results/", workers=2, options=RunOptions(grader="rule"))
"""

from healthivert.batch.discover import discover_studies, read_study_manifest, scan_folder
from healthivert.batch.layout import BatchLayout, remove_stale_parts, stale_parts
from healthivert.batch.progress import format_progress, format_summary
from healthivert.batch.runner import BatchPlan, BatchProgress, BatchSummary, plan_batch, run_batch
from healthivert.batch.spec import StudySpec
from healthivert.batch.tables import FAILED_COLUMNS, CohortTable, FailedTable

__all__ = [
    "FAILED_COLUMNS",
    "BatchLayout",
    "BatchPlan",
    "BatchProgress",
    "BatchSummary",
    "CohortTable",
    "FailedTable",
    "StudySpec",
    "discover_studies",
    "format_progress",
    "format_summary",
    "plan_batch",
    "read_study_manifest",
    "remove_stale_parts",
    "run_batch",
    "scan_folder",
    "stale_parts",
]
