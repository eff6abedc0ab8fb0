"""The GAN's guard: its body is replaced by the prior's where the two disagree, and graded as such."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.pipeline import analyse_study, grade_records
from healthivert.synthesis.base import PseudoHealthy
from healthivert.synthesis.guard import MAX_DISAGREEMENT, combine, fallback_reason, guarded
from healthivert.synthesis.prior import RATIO_METHOD, synthesize_prior
from tests.test_pipeline import _spine


def _body(height_mm: float, method: str = "neighbours") -> PseudoHealthy:
    heights = np.zeros((6, 6))
    heights[1:5, 1:5] = height_mm
    return PseudoHealthy(heights, np.zeros((6, 6, 4), bool), method, [19, 21])


@pytest.mark.parametrize(("gan_mm", "falls_back"), [(25.0, False), (22.5, False), (21.5, True), (28.5, True)])
def test_fallback_when_the_gan_leaves_the_neighbours_estimate_by_more_than_the_threshold(gan_mm, falls_back):
    """Prior 25 mm: 22.5 mm is 10 % short (kept), 21.5 mm 14 % short and 28.5 mm 14 % tall (refused)."""
    reason = fallback_reason(_body(gan_mm), _body(25.0))
    assert (reason is not None) is falls_back
    if falls_back:
        assert f"{gan_mm:.1f} mm" in reason and "25.0 mm" in reason
        assert ("shorter" if gan_mm < 25 else "taller") in reason and f"{MAX_DISAGREEMENT:.0%}" in reason


def test_no_fallback_without_a_neighbour_to_check_against_and_a_missing_body_always_falls_back():
    assert fallback_reason(_body(15.0), _body(25.0, RATIO_METHOD)) is None
    assert fallback_reason(_body(0.0), _body(25.0)) == "the GAN gave no body"


def test_combine_keeps_the_gans_body_where_they_agree_and_marks_the_prior_where_not():
    gan = {19: _body(24.0), 20: _body(18.0)}
    prior = {19: _body(24.5), 20: _body(24.0)}
    out = combine(gan, prior)
    assert out[19] is gan[19] and out[19].fallback is None
    assert out[20].heights_mm is prior[20].heights_mm and "25% shorter" in out[20].fallback


def test_a_short_gan_body_is_replaced_graded_by_the_priors_grader_and_said(monkeypatch):
    """A box spine T12 / L1 / L2 (L1 collapsed to 17 mm). A 'GAN' that restores L1 at 19 mm (it
    would miss the fracture) and the others as the prior does: L1 takes the prior's body, its
    record says so and it is graded by the grader given for the prior."""
    mask = _spine({19: 23, 20: 17, 21: 25})

    def short_gan(vertebrae):
        prior = synthesize_prior(vertebrae)
        prior[20] = replace(prior[20], heights_mm=np.where(prior[20].heights_mm > 0, 19.0, 0.0))
        return prior

    analysis = analyse_study(mask, centroids_from_mask(mask), synthesizer="gan",
                             synthesize=guarded(short_gan, synthesize_prior))
    rule, never = get_grader("rule"), _Constant(0)
    grade_records(analysis, {"gan": never, "prior": rule})
    records = {r.label: r.to_json() for r in analysis.records}  # as result.json has them
    l1 = records[20]
    assert l1["synthesizer"] == "prior" and "pseudo-healthy body from the prior" in l1["status"]
    assert any(n.startswith("gan not used: the GAN's body (19.0 mm)") for n in l1["notes"])
    assert l1["genant_grade"] == 2 and l1["grader"] == "rule"  # graded by the prior's grader: found
    assert records[19]["synthesizer"] == "gan" and records[19]["grader"] == "constant"
    assert records[19]["genant_grade"] == 0 and records[19]["status"] == "graded"


class _Constant:
    """A grader that always answers one grade."""

    name = "constant"

    def __init__(self, grade: int) -> None:
        self.grade = grade

    def predict(self, features):
        return np.full(len(features), self.grade)

    def predict_proba(self, features):
        p = np.zeros((len(features), 4))
        p[:, self.grade] = 1.0
        return p
