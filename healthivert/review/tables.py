"""Algorithm and reviewed grades side by side: the rows of the viewer's tables and the exports."""

from __future__ import annotations

from healthivert.report.contract import csv_row
from healthivert.review.db import Review
from healthivert.review.studies import Study, review_status

#: One row per vertebra. ``algorithm_grade`` is result.json's grade, never changed.
EXPORT_COLUMNS: list[str] = [
    "study_id", "label", "name", "algorithm_grade", "reviewed_grade", "review_action", "reviewer", "reviewed_at",
    "comment", "final_grade", "status",
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "healthy_height_anterior_mm", "healthy_height_middle_mm", "healthy_height_posterior_mm",
    "ratio_anterior_posterior", "ratio_middle_posterior",
    "prob_grade0", "prob_grade1", "prob_grade2", "prob_grade3", "trabecular_hu", "grader",
]


def vertebra_rows(study: Study, reviews: dict[tuple[str, int], Review]) -> list[dict]:
    """One flat row per vertebra (``EXPORT_COLUMNS``); None where there is no value."""
    rows = []
    for v in study.vertebrae:
        flat = {k: (None if val == "" else val) for k, val in csv_row(study.study_id, v).items()}
        review = reviews.get((study.study_id, int(v["label"])))
        algorithm = v.get("genant_grade")
        row = {
            **flat, "algorithm_grade": algorithm,
            "reviewed_grade": review.reviewed_grade if review else None,
            "review_action": review.action if review else None,
            "reviewer": review.reviewer if review else None,
            "reviewed_at": review.reviewed_at.isoformat() if review else None,
            "comment": review.comment if review else None,
            "final_grade": review.reviewed_grade if review else algorithm,
        }
        rows.append({k: row.get(k) for k in EXPORT_COLUMNS})
    return rows


def study_summary(study: Study, reviews: dict[tuple[str, int], Review]) -> dict:
    """The study list's row: id, vertebrae graded, worst grade (reviewed when reviewed), review status.

    A study is ``reviewed`` when every vertebra the algorithm graded has a review (an ungraded
    vertebra counts once a reviewer has graded it).
    """
    labels = {int(v["label"]) for v in study.vertebrae}
    graded = {int(v["label"]) for v in study.graded}
    reviewed = {lab for (sid, lab) in reviews if sid == study.study_id and lab in labels}
    finals = [r["final_grade"] for r in vertebra_rows(study, reviews) if r["final_grade"] is not None]
    return {
        "study_id": study.study_id,
        "vertebrae": len(labels),
        "graded": len(graded),
        "worst_grade": study.worst_grade,
        "worst_final_grade": max(finals) if finals else None,
        "reviewed": len(reviewed),
        "review_status": review_status(len(graded | reviewed), len(reviewed)),
    }
