"""The Genant rule grader and the grader registry (healthivert/grading/)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from healthivert.grading import FEATURES, GRADERS, get_grader, grade_from_proba
from healthivert.grading.rule import GenantRuleGrader
from healthivert.sections import genant_grade_from_loss


def _features(anterior: float, middle: float, posterior: float) -> dict[str, float]:
    return {"rhlv_anterior": anterior, "rhlv_middle": middle, "rhlv_posterior": posterior,
            "rhlv_whole": (anterior + middle + posterior) / 3,
            "ratio_anterior_posterior": (1 - anterior) / (1 - posterior),
            "ratio_middle_posterior": (1 - middle) / (1 - posterior),
            "ratio_anterior_posterior_z": 0.0}


# worst-section losses clear of, and up to 0.5 % from, each of the 20 / 25 / 40 % boundaries
LOSSES = [-0.1, 0.0, 0.1, 0.15, 0.195, 0.205, 0.22, 0.245, 0.255, 0.3, 0.35, 0.395, 0.405, 0.5, 0.8]


def test_probabilities_sum_to_one_and_argmax_is_the_rule():
    rows = [_features(loss, loss / 2, 0.0) for loss in LOSSES]  # the anterior section is the worst
    rows += [_features(0.0, loss, loss / 3) for loss in LOSSES]  # ... or the middle one
    rows += [_features(0.05, 0.0, loss) for loss in LOSSES]  # ... or the posterior one
    proba = GenantRuleGrader().predict_proba(pd.DataFrame(rows))
    assert proba.shape == (len(rows), 4)
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-12)
    expected = [genant_grade_from_loss(max(r["rhlv_anterior"], r["rhlv_middle"], r["rhlv_posterior"])) for r in rows]
    assert grade_from_proba(proba).tolist() == expected


@pytest.mark.parametrize("loss, lower, upper", [(0.20, 0, 1), (0.205, 0, 1), (0.25, 1, 2), (0.248, 1, 2),
                                                (0.40, 2, 3), (0.397, 2, 3)])
def test_probabilities_near_a_boundary_are_split(loss, lower, upper):
    (p,) = GenantRuleGrader().predict_proba(pd.DataFrame([_features(loss, 0.0, 0.0)]))
    assert p[lower] > 0.2 and p[upper] > 0.2
    assert p[lower] + p[upper] > 0.98


@pytest.mark.parametrize("loss, grade, at_least", [(0.05, 0, 0.99), (0.225, 1, 0.8), (0.32, 2, 0.99), (0.6, 3, 0.99)])
def test_probabilities_far_from_a_boundary_are_sure(loss, grade, at_least):
    """Mid-band losses are sure; grade 1 is only 5 % wide, so even its middle keeps some doubt."""
    (p,) = GenantRuleGrader().predict_proba(pd.DataFrame([_features(loss, 0.0, 0.0)]))
    assert p[grade] > at_least


def test_softness_sets_how_sharp_the_steps_are():
    row = pd.DataFrame([_features(0.21, 0.0, 0.0)])
    sharp = GenantRuleGrader(softness=0.001).predict_proba(row)[0]
    soft = GenantRuleGrader(softness=0.05).predict_proba(row)[0]
    assert sharp[1] > 0.99
    assert 0.2 < soft[1] < sharp[1]
    with pytest.raises(ValueError, match="softness"):
        GenantRuleGrader(softness=0.0)


def test_registry_builds_graders_and_lists_valid_names():
    assert {"rule", "svm"} <= set(GRADERS)
    grader = get_grader("rule", softness=0.02)
    assert isinstance(grader, GenantRuleGrader) and grader.name == "rule" and grader.softness == 0.02
    with pytest.raises(ValueError, match="unknown grader 'genant'; choose one of rule, svm"):
        get_grader("genant")


def test_grader_reads_its_features_by_name():
    """Column order does not matter; the features are picked by name."""
    row = _features(0.3, 0.1, 0.0)
    shuffled = pd.DataFrame([{k: row[k] for k in reversed(FEATURES)}])
    assert grade_from_proba(GenantRuleGrader().predict_proba(shuffled)).tolist() == [2]


@pytest.mark.parametrize(("loss", "grade"), [(0.1999, 0), (0.20, 1), (0.2499, 1), (0.25, 2), (0.40, 2),
                                             (0.4001, 3)])
def test_predict_follows_the_rule_exactly_on_boundaries(loss, grade):
    row = pd.DataFrame([_features(loss, 0.0, 0.0)])
    assert GenantRuleGrader().predict(row).tolist() == [grade]


def test_the_rule_loads_without_scikit_learn() -> None:
    """The thresholds and the rule import no scikit-learn (the SVM's module loads on first use)."""
    code = ("import sys; from healthivert.grading import GRADERS, get_grader; from healthivert.grading.rule import "
            "THRESHOLDS; assert 'svm' in GRADERS; get_grader('rule'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
