"""The Genant rule: the worst section's height loss against 20 / 25 / 40 %."""

from __future__ import annotations

import numpy as np
import pandas as pd

from healthivert.grading.base import register_grader
from healthivert.sections import genant_grade_from_loss

THRESHOLDS = (0.20, 0.25, 0.40)
#: width (fraction of height) of the soft step at each threshold: a loss 1 % from a
#: boundary is ~ 73 / 27 % between the two grades, so probabilities say how close it was.
SOFTNESS = 0.01


class GenantRuleGrader:
    """Genant semi-quantitative grade from max(RHLV anterior, middle, posterior).

    The grade is the rule's. Probabilities come from logistic steps at each threshold, so a
    loss near a boundary shares its probability between the two grades (exactly on a
    boundary they tie, and the grade still follows the rule).
    """

    name = "rule"

    def __init__(self, softness: float = SOFTNESS) -> None:
        if softness <= 0:
            raise ValueError(f"softness must be positive; got {softness}")
        self.softness = softness

    @staticmethod
    def _worst_loss(features: pd.DataFrame) -> np.ndarray:
        return features[["rhlv_anterior", "rhlv_middle", "rhlv_posterior"]].to_numpy(float).max(axis=1)

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        return np.array([genant_grade_from_loss(x) for x in self._worst_loss(features)], dtype=int)

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        loss = self._worst_loss(features)
        # P(grade >= g) for g = 1, 2, 3
        above = [1.0 / (1.0 + np.exp(-(loss - t) / self.softness)) for t in THRESHOLDS]
        p = np.stack([1 - above[0], above[0] - above[1], above[1] - above[2], above[2]], axis=1)
        return np.clip(p, 0.0, 1.0) / np.clip(p, 0.0, 1.0).sum(axis=1, keepdims=True)


@register_grader("rule")
def rule_grader(**kwargs) -> GenantRuleGrader:
    return GenantRuleGrader(**kwargs)
