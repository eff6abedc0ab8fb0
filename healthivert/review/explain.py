"""Why a vertebra got its grade, in plain words: the section that drove it, its RHLV against the
Genant thresholds, the grader's probabilities, where the SVM and the rule disagree, and where
the pseudo-healthy body came from the prior because the GAN's was refused.

Thresholds and the rule itself come from ``healthivert.grading`` / ``healthivert.sections``;
nothing here restates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from healthivert.grading.rule import THRESHOLDS
from healthivert.report.record import BOUND_STATUS, VertebraRecord
from healthivert.review.studies import GRADE_NAMES
from healthivert.sections import SECTIONS, genant_grade_from_loss

#: the marker of a vertebra whose pseudo-healthy body came from the prior in a GAN study
FALLBACK_MARK = "prior (GAN refused)"


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.0f} %"


def threshold_band(loss: float) -> str:
    """Where a height loss lies among the Genant thresholds (the band of the rule's grade for it),
    e.g. ``"25-40 %"`` or ``"below 20 %"``."""
    grade = genant_grade_from_loss(loss)
    edges = [f"{100 * t:.0f}" for t in THRESHOLDS]
    if grade == 0:
        return f"below {edges[0]} %"
    if grade == len(edges):
        return f"above {edges[-1]} %"
    return f"{edges[grade - 1]}-{edges[grade]} %"


def driving_section(rhlv: dict) -> tuple[str, float] | None:
    """The section with the largest height loss (the one the Genant rule grades), and its RHLV."""
    values = [(s, rhlv.get(s)) for s in SECTIONS]
    values = [(s, float(v)) for s, v in values if v is not None]
    return max(values, key=lambda sv: sv[1]) if values else None


def gan_refused(vertebra: VertebraRecord, study_synthesizer: str | None) -> bool:
    """True when the study asked for the GAN but this vertebra's body came from the prior."""
    return study_synthesizer == "gan" and vertebra.synthesizer == "prior"


@dataclass(frozen=True)
class Explanation:
    """What the viewer says about one vertebra's grade.

    Attributes:
        grade: the algorithm's grade (None: not graded).
        grader: ``"svm"``, ``"rule"`` or another grader's name (None: not recorded).
        section, rhlv: the section with the largest height loss and its RHLV (None: not measured).
        rule_grade: the Genant rule's grade for that RHLV.
        probabilities: grade -> probability from the grader (empty when none).
        lines: the explanation, sentence by sentence.
        disagreement: the sentence saying the grader and the rule disagree (None when they agree).
        fallback: the sentence saying the GAN's body was refused (None when it was not).
    """

    grade: int | None
    grader: str | None
    section: str | None
    rhlv: float | None
    rule_grade: int | None
    probabilities: dict[int, float] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    disagreement: str | None = None
    fallback: str | None = None


def grader_text(grader: str | None) -> str:
    """How a sentence names a grader: ``"the SVM"``, ``"the Genant rule"``."""
    if not grader:
        return "the grader"
    return "the Genant rule" if grader == "rule" else f"the {grader.upper()}"


def _probabilities(vertebra: VertebraRecord) -> dict[int, float]:
    return {g: float(p) for g, p in vertebra.probabilities.items() if p is not None}


def _disagreement(name: str, grade: int, grader: str, section: str, rhlv: float, rule: int,
                  probs: dict[int, float]) -> str:
    p = f" (probability {probs[grade]:.2f})" if grade in probs else ""
    direction = "higher" if grade > rule else "lower"
    return (f"The {grader.upper()} graded {name} {grade} ({GRADE_NAMES[grade]}){p}, {direction} than the Genant "
            f"rule's {rule} ({GRADE_NAMES[rule]}) for its {section} height loss of {_pct(rhlv)} "
            f"({threshold_band(rhlv)}). The {grader.upper()} weighs all sections, their ratios and the level's normal "
            "wedge, learnt from graded vertebrae, so it can differ from the rule's single worst section; check "
            "the images.")


def wedge_text(vertebra: VertebraRecord, name: str) -> str | None:
    """The body's anterior/posterior height ratio against its level's published normal, e.g.
    ``"L1's anterior / posterior height ratio is 0.78: 2.4 SD below a healthy L1's"``; None
    when not measured."""
    ratios = vertebra.ratios or {}
    ratio, z = ratios.get("anterior_posterior"), ratios.get("anterior_posterior_z")
    if ratio is None or z is None:
        return None
    where = "within 1 SD of" if abs(z) < 1 else f"{abs(z):.1f} SD {'below' if z < 0 else 'above'}"
    return (f"{name}'s anterior / posterior height ratio is {ratio:.2f}: {where} a healthy "
            f"{vertebra.name}'s (published spread of healthy people).")


def _fallback(vertebra: VertebraRecord) -> str:
    why = [n for n in vertebra.notes if "not used" in n]
    reason = why[0] if why else vertebra.status
    return (f"Pseudo-healthy body from the prior, not the GAN: the GAN's body disagreed with the neighbours' "
            f"estimate ({reason}). Its grade comes from the SVM trained on prior bodies.")


def explain_vertebra(vertebra: VertebraRecord, study_synthesizer: str | None = None, grader: str | None = None,
                     name: str | None = None) -> Explanation:
    """The explanation of one vertebra record of result.json.

    Args:
        vertebra: the record (``genant_grade``, ``rhlv``, ``probabilities``, ``grader``, ...).
        study_synthesizer: result.json's ``synthesizer`` (``"gan"`` or ``"prior"``).
        grader: the study's grader name, used when the record names none.
        name: the name to use in sentences (a relabelled one); default the record's.
    """
    name = name or vertebra.name
    grade = vertebra.genant_grade
    grader = vertebra.grader or grader
    probs = _probabilities(vertebra)
    drive = driving_section(vertebra.rhlv.to_json() if vertebra.rhlv else {})
    fallback = _fallback(vertebra) if gan_refused(vertebra, study_synthesizer) else None
    lines = [fallback] if fallback else []
    if drive is None:
        lines.append(f"{name} was not measured: {vertebra.status}")
        return Explanation(grade, grader, None, None, None, probs, lines, None, fallback)
    section, rhlv = drive
    rule = genant_grade_from_loss(rhlv)
    lines.append(f"Largest height loss: {section}, RHLV {_pct(rhlv)} ({threshold_band(rhlv)}); "
                 f"the Genant rule grades that {rule} ({GRADE_NAMES[rule]}).")
    wedge = wedge_text(vertebra, name)
    if wedge:
        lines.append(wedge)
    if grade is None:
        lines.append(f"{name} was not graded: {vertebra.status}")
        return Explanation(None, grader, section, rhlv, rule, probs, lines, None, fallback)
    by = grader_text(grader)
    p = f" with probability {probs[int(grade)]:.2f}" if int(grade) in probs else ""
    lines.append(f"Graded {grade} ({GRADE_NAMES[int(grade)]}) by {by}{p}.")
    if vertebra.status.startswith(BOUND_STATUS):  # the edge hid height: the losses are upper bounds
        lines.append(f"The image's edge cut it short: {vertebra.status.split(': ', 1)[-1]}.")
    disagreement = None
    if grade != rule and grader != "rule":
        disagreement = _disagreement(name, int(grade), grader or "grader", section, rhlv, rule, probs)
        lines.append(disagreement)
    return Explanation(int(grade), grader, section, rhlv, rule, probs, lines, disagreement, fallback)


def threshold_text() -> str:
    """The Genant thresholds as the rule uses them, e.g. ``"20 / 25 / 40 %"``."""
    return " / ".join(f"{100 * t:.0f}" for t in THRESHOLDS) + " %"
