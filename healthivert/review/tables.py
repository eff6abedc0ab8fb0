"""Algorithm and reviewed grades side by side: the rows of the viewer's tables and the exports.

A reviewer's relabelling (a shift of levels) changes the names shown and exported: ``name`` is
the name after the shift, ``algorithm_name`` the one in result.json, ``label`` stays result.json's
VerSe label (the key reviews are stored under) and ``label_shift`` says how far names moved.
"""

from __future__ import annotations

from healthivert.report.contract import csv_row
from healthivert.review.db import Review
from healthivert.review.explain import gan_refused
from healthivert.review.relabel import shifted_names
from healthivert.review.studies import Study, review_status

#: One row per vertebra. ``algorithm_grade`` is result.json's grade, never changed.
EXPORT_COLUMNS: list[str] = [
    "study_id", "label", "name", "algorithm_name", "label_shift",
    "algorithm_grade", "reviewed_grade", "review_action", "reviewer", "reviewed_at",
    "comment", "final_grade", "status",
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "healthy_height_anterior_mm", "healthy_height_middle_mm", "healthy_height_posterior_mm",
    "ratio_anterior_posterior", "ratio_middle_posterior", "ratio_anterior_posterior_z",
    "prob_grade0", "prob_grade1", "prob_grade2", "prob_grade3", "trabecular_hu", "grader",
    "synthesizer", "gan_refused", "labels_anchor", "labels_anchored",
]


def display_names(study: Study, shift: int = 0) -> dict[int, str]:
    """Algorithm label -> the name shown (after a reviewer's shift)."""
    return shifted_names([v.label for v in study.vertebrae], shift)


def vertebra_rows(study: Study, reviews: dict[tuple[str, int], Review], shift: int = 0) -> list[dict]:
    """One flat row per vertebra (``EXPORT_COLUMNS``); None where there is no value.

    ``shift`` is the study's relabelling (``ReviewStore.label_shift``), 0 for the algorithm's names.
    """
    names = display_names(study, shift)
    rows = []
    for v in study.vertebrae:
        flat = {k: (None if val == "" else val) for k, val in csv_row(study.study_id, v).items()}
        review = reviews.get((study.study_id, v.label))
        algorithm = v.genant_grade
        row = {
            **flat, "name": names[v.label], "algorithm_name": v.name, "label_shift": shift,
            "algorithm_grade": algorithm,
            "reviewed_grade": review.reviewed_grade if review else None,
            "review_action": review.action if review else None,
            "reviewer": review.reviewer if review else None,
            "reviewed_at": review.reviewed_at.isoformat() if review else None,
            "comment": review.comment if review else None,
            "final_grade": review.reviewed_grade if review else algorithm,
            "gan_refused": gan_refused(v, study.synthesizer),
            "labels_anchor": study.labels.get("anchor"), "labels_anchored": study.labels_anchored,
        }
        rows.append({k: row.get(k) for k in EXPORT_COLUMNS})
    return rows


def study_summary(study: Study, reviews: dict[tuple[str, int], Review], shift: int = 0) -> dict:
    """The study list's row: id, vertebrae graded, worst grade (reviewed when reviewed), review status,
    whether its labels are anchored (None: not recorded) and a reviewer's shift of them.

    A study is ``reviewed`` when every vertebra the algorithm graded has a review (an ungraded
    vertebra counts once a reviewer has graded it).
    """
    labels = {v.label for v in study.vertebrae}
    graded = {v.label for v in study.graded}
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
        "labels_anchored": study.labels_anchored,
        "label_shift": shift,
    }


def unreviewed_labels(study: Study, reviews: dict[tuple[str, int], Review]) -> list[int]:
    """Labels of the vertebrae the algorithm graded that have no review yet, in result.json order."""
    return [v.label for v in study.graded if (study.study_id, v.label) not in reviews]
