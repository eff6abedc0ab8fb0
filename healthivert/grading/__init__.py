"""Genant grading: the rule (20 / 25 / 40 %) and the SVM, behind one interface.

The SVM's module (scikit-learn, skops) is imported only when an SVM is asked for, so the rule and
its thresholds load without scikit-learn."""

from healthivert.grading import rule as _rule  # noqa: F401  (registers "rule")
from healthivert.grading.base import FEATURES, GRADERS, GRADES, get_grader, grade_from_proba, register_grader


@register_grader("svm")
def _svm_grader(**kwargs):
    """The SVM grader (:func:`healthivert.grading.svm.svm_grader`), imported on first use."""
    from healthivert.grading.svm import svm_grader

    return svm_grader(**kwargs)


__all__ = ["FEATURES", "GRADERS", "GRADES", "get_grader", "grade_from_proba"]
