"""Why a vertebra got its grade: driving section, thresholds, SVM against the rule, GAN fallback."""

from __future__ import annotations

from dataclasses import replace

import pytest

from healthivert.grading.rule import THRESHOLDS
from healthivert.report.record import BOUND_STATUS, VertebraRecord
from healthivert.review.explain import driving_section, explain_vertebra, gan_refused, threshold_band, threshold_text


def _record(ant: float, mid: float, post: float, grade: int | None, grader: str = "svm", **extra) -> VertebraRecord:
    heights = {"anterior": 20.0, "middle": 20.0, "posterior": 20.0}
    return VertebraRecord.from_json({
        "label": 20, "name": "L1", "genant_grade": grade, "status": "graded", "grader": grader,
        "synthesizer": "prior", "rhlv": {"anterior": ant, "middle": mid, "posterior": post, "whole": mid},
        "heights_mm": {"original": heights, "pseudo_healthy": heights},
        "probabilities": {"0": 0.1, "1": 0.2, "2": 0.6, "3": 0.1}, **extra})


@pytest.mark.parametrize(("loss", "band"), [(0.05, "below 20 %"), (0.2, "20-25 %"), (0.3, "25-40 %"),
                                            (0.4, "25-40 %"), (0.41, "above 40 %")])
def test_threshold_band_follows_the_rule(loss: float, band: str) -> None:
    assert threshold_band(loss) == band


def test_thresholds_come_from_the_rule() -> None:
    assert threshold_text() == " / ".join(f"{100 * t:.0f}" for t in THRESHOLDS) + " %"


def test_the_worst_section_drives_the_grade() -> None:
    assert driving_section({"anterior": 0.1, "middle": 0.32, "posterior": None}) == ("middle", 0.32)
    assert driving_section({}) is None


def test_agreeing_svm_has_no_disagreement_sentence() -> None:
    e = explain_vertebra(_record(0.30, 0.1, 0.05, 2))
    assert (e.section, e.rhlv, e.rule_grade, e.disagreement) == ("anterior", 0.30, 2, None)
    assert e.probabilities == {0: 0.1, 1: 0.2, 2: 0.6, 3: 0.1}
    assert any("anterior, RHLV 30 % (25-40 %)" in line for line in e.lines)
    assert any("by the SVM with probability 0.60" in line for line in e.lines)


def test_disagreeing_svm_is_explained_plainly() -> None:
    e = explain_vertebra(_record(0.18, 0.1, 0.05, 2), name="L2")
    assert e.rule_grade == 0 and e.disagreement is not None
    assert "The SVM graded L2 2 (moderate) (probability 0.60), higher than the Genant rule's 0 (normal)" in (
        e.disagreement)
    assert "18 % (below 20 %)" in e.disagreement
    e = explain_vertebra(_record(0.45, 0.1, 0.05, 1))
    assert "lower than the Genant rule's 3 (severe)" in e.disagreement


def test_the_rule_grader_never_disagrees_with_itself() -> None:
    assert explain_vertebra(_record(0.18, 0.1, 0.05, 2, grader="rule")).disagreement is None


def test_ungraded_and_unmeasured() -> None:
    e = explain_vertebra(VertebraRecord(20, "L1", "not graded: cut by the FOV"))
    assert e.section is None and "not measured: not graded: cut by the FOV" in e.lines[0]


def test_gan_fallback_is_said_plainly() -> None:
    why = "gan not used: the GAN's body (14.0 mm) was 30% shorter than the neighbours' estimate (20.0 mm)"
    rec = _record(0.30, 0.1, 0.05, 2, notes=[why])
    assert gan_refused(rec, "gan") and not gan_refused(rec, "prior")
    assert not gan_refused(replace(rec, synthesizer="gan"), "gan")
    e = explain_vertebra(rec, "gan")
    assert e.fallback is not None and e.lines[0] == e.fallback
    assert "from the prior, not the GAN" in e.fallback and why in e.fallback
    assert explain_vertebra(rec, "prior").fallback is None


def test_a_grade_from_lower_bounds_says_the_edge_cut_the_body_short() -> None:
    status = (f"{BOUND_STATUS}: the anterior section runs into the superior edge of the image, so its height is "
              "a lower bound; even so no section is 20 % shorter than its pseudo-healthy height")
    e = explain_vertebra(_record(0.08, 0.02, 0.0, 0, grader="rule", status=status))
    assert e.lines[-1] == ("The image's edge cut it short: the anterior section runs into the superior edge of the "
                           "image, so its height is a lower bound; even so no section is 20 % shorter than its "
                           "pseudo-healthy height.")
    assert e.disagreement is None
    assert not any("edge" in line for line in explain_vertebra(_record(0.08, 0.02, 0.0, 0)).lines)


def test_the_wedge_against_the_levels_normal_is_stated() -> None:
    """The ratio's z-score reads as SDs below or above a healthy body of the level; a result
    written before the z-score (no such key) gets no sentence."""
    ratios = {"anterior_posterior": 0.78, "middle_posterior": 0.9, "anterior_posterior_z": -2.43}
    e = explain_vertebra(_record(0.30, 0.1, 0.05, 2, ratios=ratios), name="L2")
    assert "L2's anterior / posterior height ratio is 0.78: 2.4 SD below a healthy L1's" in " ".join(e.lines)
    e = explain_vertebra(_record(0.30, 0.1, 0.05, 2, ratios=ratios | {"anterior_posterior_z": 0.4}))
    assert "is 0.78: within 1 SD of a healthy L1's" in " ".join(e.lines)
    e = explain_vertebra(_record(0.30, 0.1, 0.05, 2, ratios=ratios | {"anterior_posterior_z": 1.5}))
    assert "1.5 SD above a healthy L1's" in " ".join(e.lines)
    assert not any("height ratio" in line for line in explain_vertebra(_record(0.30, 0.1, 0.05, 2)).lines)
