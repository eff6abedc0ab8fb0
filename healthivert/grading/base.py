"""The grader interface and its registry (``--grader rule|svm``)."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from healthivert.registry import Registry

GRADES = (0, 1, 2, 3)
FEATURES = (
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "ratio_anterior_posterior", "ratio_middle_posterior", "ratio_anterior_posterior_z",
)


class Grader(Protocol):
    """Turns measurement features into Genant grade probabilities."""

    name: str

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """(n, 4) probabilities of grades 0-3, rows summing to 1."""
        ...

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """(n,) Genant grades 0-3."""
        ...


GRADERS: Registry[Grader] = Registry("grader")
register_grader = GRADERS.register


def get_grader(name: str, **kwargs) -> Grader:
    """The grader registered as ``name``; a bad name lists the valid ones."""
    return GRADERS.create(name, **kwargs)


def grade_from_proba(proba: np.ndarray) -> np.ndarray:
    """The most probable grade of each row."""
    return np.asarray(GRADES)[np.argmax(proba, axis=1)]
