"""One vertebra's result as a typed record: what ``result.json``'s ``vertebrae`` holds, in Python.

:meth:`VertebraRecord.to_json` gives exactly the object the result contract writes (same keys,
same order); :meth:`VertebraRecord.from_json` reads one back, checked against the contract's
``VERTEBRA_SCHEMA`` (``ResultContractError``, an ``InputError``, when it does not follow it).
Heights in mm, RHLV and ratios as fractions, trabecular density in HU; None where a value could
not be measured (written as null).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from healthivert.report.schema import validate_vertebra

#: how the status of a vertebra graded 0 from lower bounds begins: the image's edge cut its
#: columns short, and even so no section is 20 % short (``pipeline.normal_by_bounds``); its
#: heights are no grader's features
BOUND_STATUS = "graded 0 from lower bounds"

#: A vertebra's keys in result.json, in the order it has them (``extra`` keys follow).
JSON_KEYS: tuple[str, ...] = (
    "label", "name", "genant_grade", "synthesizer", "status", "rhlv", "heights_mm", "ratios",
    "pseudo_healthy_from", "trabecular_hu", "bone_density", "notes", "grader", "probabilities",
)


@dataclass
class SectionValues:
    """A value per third of the body (anterior, middle, posterior): heights in mm or RHLV as a
    fraction; None where not measurable."""

    anterior: float | None
    middle: float | None
    posterior: float | None

    def get(self, section: str) -> float | None:
        """The value of ``section`` (one of ``healthivert.sections.SECTIONS``, or ``"whole"``)."""
        return getattr(self, section)

    def to_json(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> SectionValues:
        return cls(**{f.name: obj[f.name] for f in fields(cls)})


@dataclass
class Rhlv(SectionValues):
    """Relative height loss, (H_pseudo_healthy - H_original) / H_pseudo_healthy, per section and
    of the whole body (fractions)."""

    whole: float | None


@dataclass
class Heights:
    """Section heights (mm) of the body as measured and of its pseudo-healthy estimate."""

    original: SectionValues
    pseudo_healthy: SectionValues

    def to_json(self) -> dict[str, dict[str, float | None]]:
        return {"original": self.original.to_json(), "pseudo_healthy": self.pseudo_healthy.to_json()}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Heights:
        return cls(SectionValues.from_json(obj["original"]), SectionValues.from_json(obj["pseudo_healthy"]))


@dataclass
class VertebraRecord:
    """One vertebra of a study's result.

    Attributes:
        label, name: VerSe label (20 = L1) and its name.
        status: "graded", or why not ("not graded: cut by the field of view ..."), or how
            (``BOUND_STATUS``: "graded 0 from lower bounds: ...").
        genant_grade: 0-3, None when not graded.
        synthesizer: the one its pseudo-healthy body came from ("prior" where the GAN's was refused).
        rhlv: relative height loss (fractions); None when the body was not measured.
        heights_mm: section heights (mm), measured and pseudo-healthy; None when not measured.
        ratios: intra-vertebral height ratios (fractions): ``anterior_posterior``, ``middle_posterior``;
            ``anterior_posterior_z``: the first's z-score against its level's published normal (SDs).
        pseudo_healthy_from: names of the neighbours the pseudo-healthy body was estimated from.
        trabecular_hu: mean trabecular density (HU); None without a CT.
        bone_density: its category ("normal", "osteopenia", ...); None without a CT.
        notes: remarks on this vertebra (a computed centroid, a refused GAN body, ...).
        grader: the grader's name ("svm", "rule"); None before grading.
        probabilities: grade -> the grader's probability (empty when not graded).
        extra: keys a result.json holds beyond the contract (kept so a record writes back as read).

    The measurement fields (``rhlv`` to ``bone_density``) are written together, when ``rhlv``
    is set: a measured vertebra without a CT writes ``trabecular_hu`` as null.
    """

    label: int
    name: str
    status: str
    genant_grade: int | None = None
    synthesizer: str | None = None
    rhlv: Rhlv | None = None
    heights_mm: Heights | None = None
    ratios: dict[str, float | None] | None = None
    pseudo_healthy_from: list[str] | None = None
    trabecular_hu: float | None = None
    bone_density: str | None = None
    notes: list[str] = field(default_factory=list)
    grader: str | None = None
    probabilities: dict[int, float | None] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        """True when the body's heights were measured (``rhlv`` and the rest are set)."""
        return self.rhlv is not None

    @property
    def graded(self) -> bool:
        return self.genant_grade is not None

    def to_json(self) -> dict[str, Any]:
        """The result contract's object for this vertebra (keys in the order result.json has them)."""
        out: dict[str, Any] = {"label": self.label, "name": self.name, "genant_grade": self.genant_grade}
        if self.synthesizer is not None:
            out["synthesizer"] = self.synthesizer
        out["status"] = self.status
        if self.rhlv is not None:
            out["rhlv"] = self.rhlv.to_json()
        if self.heights_mm is not None:
            out["heights_mm"] = self.heights_mm.to_json()
        if self.ratios is not None:
            out["ratios"] = dict(self.ratios)
        if self.pseudo_healthy_from is not None:
            out["pseudo_healthy_from"] = list(self.pseudo_healthy_from)
        for key in ("trabecular_hu", "bone_density"):
            if self.measured or getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.notes:
            out["notes"] = list(self.notes)
        if self.grader is not None:
            out["grader"] = self.grader
        if self.probabilities:
            out["probabilities"] = {str(g): p for g, p in self.probabilities.items()}
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, obj: object) -> VertebraRecord:
        """A record from its result.json object.

        Raises:
            ResultContractError: ``obj`` does not follow the contract's vertebra object.
        """
        v = validate_vertebra(obj)
        return cls(
            label=v["label"], name=v["name"], status=v["status"], genant_grade=v["genant_grade"],
            synthesizer=v.get("synthesizer"),
            rhlv=Rhlv.from_json(v["rhlv"]) if "rhlv" in v else None,
            heights_mm=Heights.from_json(v["heights_mm"]) if "heights_mm" in v else None,
            ratios=dict(v["ratios"]) if "ratios" in v else None,
            pseudo_healthy_from=list(v["pseudo_healthy_from"]) if v.get("pseudo_healthy_from") is not None else None,
            trabecular_hu=v.get("trabecular_hu"), bone_density=v.get("bone_density"),
            notes=list(v.get("notes") or []), grader=v.get("grader"),
            probabilities={int(g): p for g, p in (v.get("probabilities") or {}).items()},
            extra={k: val for k, val in v.items() if k not in JSON_KEYS},
        )

