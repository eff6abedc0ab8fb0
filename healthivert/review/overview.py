"""The study list of a results folder, with review progress."""

from __future__ import annotations

from healthivert.report.contract import ResultContractError
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore
from healthivert.review.studies import Study
from healthivert.review.tables import study_summary

REVIEW_STATUSES: tuple[str, ...] = ("unreviewed", "partly", "reviewed")


def list_studies(folders: ResultsFolder, store: ReviewStore) -> list[dict]:
    """One summary row per discovered study (see :func:`~healthivert.review.tables.study_summary`),
    with its reviewers' current shift of level names.

    A study whose result.json became unreadable since the folder was scanned is set aside
    (listed in ``folders.problems`` with the reason), not shown.
    """
    reviews, shifts = store.reviews(), store.current_shifts()
    rows = []
    for sid in sorted(folders.studies):
        try:
            study = Study.load(folders, sid)
        except ResultContractError as exc:
            folders.set_aside(sid, exc)
            continue
        rows.append(study_summary(study, reviews, shifts.get(sid, 0)))
    return rows


def filter_studies(rows: list[dict], text: str = "", statuses: tuple[str, ...] | list[str] = REVIEW_STATUSES,
                   min_grade: int | None = None) -> list[dict]:
    """Rows whose id contains ``text`` (case-insensitive), whose review status is listed, and whose
    worst grade (reviewed, else algorithm) is at least ``min_grade``."""
    text = text.strip().lower()
    return [r for r in rows
            if text in r["study_id"].lower() and r["review_status"] in statuses
            and (min_grade is None or (r["worst_final_grade"] is not None and r["worst_final_grade"] >= min_grade))]


SORT_KEYS: dict[str, tuple[str, bool]] = {
    "study id": ("study_id", False),
    "worst grade (highest first)": ("worst_final_grade", True),
    "review status": ("review_status", False),
}


def sort_studies(rows: list[dict], by: str) -> list[dict]:
    """Rows sorted by one of ``SORT_KEYS`` (missing values last)."""
    if by not in SORT_KEYS:
        raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}; got {by!r}")
    key, reverse = SORT_KEYS[by]
    order = {s: i for i, s in enumerate(REVIEW_STATUSES)}

    def value(r: dict):
        v = order[r[key]] if key == "review_status" else r[key]
        return (v is None) != reverse, v if v is not None else 0, r["study_id"]

    return sorted(rows, key=value, reverse=reverse)
