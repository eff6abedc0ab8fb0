"""Genant grading: the rule (20 / 25 / 40 %) and the SVM, behind one interface."""

from healthivert.grading import rule as _rule  # noqa: F401  (registers "rule")
from healthivert.grading import svm as _svm  # noqa: F401  (registers "svm")
from healthivert.grading.base import FEATURES, GRADERS, GRADES, get_grader, grade_from_proba

__all__ = ["FEATURES", "GRADERS", "GRADES", "get_grader", "grade_from_proba"]
