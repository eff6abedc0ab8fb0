"""The result contract as JSON Schema: ``RESULT_SCHEMA`` and the checks a result.json must pass.

See docs/design.md ("The result contract"). Heights in mm, RHLV and ratios as fractions,
density in HU. :func:`validate_result` checks a whole result, :func:`validate_vertebra` one
vertebra's object; both refuse with :class:`ResultContractError` (an ``InputError``: one line).
"""

from __future__ import annotations

import functools
from collections import Counter

from healthivert.errors import InputError
from healthivert.labels import VERSE_NAMES
from healthivert.sections import SECTIONS

RESULT_FILE = "result.json"
GENANT_GRADES: tuple[int, ...] = (0, 1, 2, 3)

_NUMBER = {"type": ["number", "null"]}  # null: not measurable (NaN is written as null)


def _numbers(*keys: str) -> dict:
    return {"type": "object", "required": list(keys), "properties": dict.fromkeys(keys, _NUMBER)}


#: One vertebra of ``vertebrae`` (:class:`healthivert.report.record.VertebraRecord` in Python).
VERTEBRA_SCHEMA: dict = {
    "type": "object",
    "required": ["label", "name", "genant_grade", "status"],
    "properties": {
        "label": {"type": "integer", "enum": sorted(VERSE_NAMES)},
        "name": {"type": "string", "enum": sorted(VERSE_NAMES.values())},
        "genant_grade": {"type": ["integer", "null"], "minimum": GENANT_GRADES[0], "maximum": GENANT_GRADES[-1]},
        "status": {"type": "string"},
        "rhlv": _numbers(*SECTIONS, "whole"),
        "heights_mm": {"type": "object", "required": ["original", "pseudo_healthy"],
                       "properties": {"original": _numbers(*SECTIONS), "pseudo_healthy": _numbers(*SECTIONS)}},
        "probabilities": {"type": "object", "propertyNames": {"enum": [str(g) for g in GENANT_GRADES]},
                          "additionalProperties": {"type": ["number", "null"], "minimum": 0, "maximum": 1}},
        "ratios": {"type": "object", "additionalProperties": _NUMBER},
        "trabecular_hu": _NUMBER,
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    # a graded vertebra carries the measurements its grade came from
    "if": {"properties": {"genant_grade": {"type": "integer"}}},
    "then": {"required": ["rhlv", "heights_mm"]},
}

#: How the study's vertebra labels were found (optional: results written before it have none).
#: ``anchored`` is false when the labels are a guess or their anchors disagree; ``shift`` and
#: ``was`` say how ``--first-label`` moved them and what the anchor was before.
_LABELS = {
    "type": "object",
    "properties": {
        "source": {"type": "string"},
        "anchor": {"type": "string"},
        "anchored": {"type": "boolean"},
        "shift": {"type": "integer"},
        "was": {"type": ["string", "null"]},
        "guessed": {"type": "array", "items": {"type": "string"}},
        "doubtful": {"type": "array", "items": {"type": "string"}},
    },
}

_TEXT = {"type": ["string", "null"]}
#: Study metadata from a DICOM input's header (``healthivert.io.study_info``); absent otherwise.
_STUDY: dict = {
    "type": "object",
    "required": ["source"],
    "properties": {
        "source": {"const": "DICOM"},
        "files": {"type": "integer", "minimum": 1},
        **dict.fromkeys(("patient_id", "patient_name", "study_date", "study_description", "series_description",
                         "modality", "manufacturer", "series_uid", "study_uid"), _TEXT),
        "slice_thickness_mm": {"type": ["number", "null"]},
        "slice_spacing_mm": {"type": ["number", "null"]},
        "pixel_spacing_mm": {"type": ["array", "null"], "items": {"type": "number"}},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
}

#: What result.json must hold (docs/design.md, "The result contract"); other keys are allowed.
RESULT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "HealthiVert result.json",
    "type": "object",
    "required": ["study_id", "inputs", "software_version", "vertebrae"],
    "properties": {
        "study_id": {"type": "string", "minLength": 1},
        "inputs": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        "study": _STUDY,
        "software_version": {"type": "string"},
        "models": {"type": "object"},
        "labels": _LABELS,
        "vertebrae": {"type": "array", "items": VERTEBRA_SCHEMA},
    },
}
MAX_REASON_CHARS = 300


class ResultContractError(InputError):
    """A result.json that does not follow the result contract; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason[:MAX_REASON_CHARS]
        super().__init__(f"{RESULT_FILE}: {self.reason}")


@functools.cache
def _validator(part: str = "result"):
    from jsonschema import Draft202012Validator  # imported on first use: ~0.1 s a pipeline run does not need

    return Draft202012Validator(RESULT_SCHEMA if part == "result" else VERTEBRA_SCHEMA)


def _where(path, prefix: str = "") -> str:
    """``vertebrae[1].genant_grade`` for a JSON path (under ``prefix``)."""
    text = (prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)).lstrip(".")
    return text or "(top level)"


def _schema_problems(obj: object, part: str = "result") -> list[str]:
    """Every way ``obj`` breaks ``RESULT_SCHEMA`` (or ``VERTEBRA_SCHEMA``), the most telling first."""
    from jsonschema.exceptions import best_match

    errors = list(_validator(part).iter_errors(obj))
    if not errors:
        return []
    first = best_match(errors)
    prefix = "" if part == "result" else "vertebra"
    return [f"{_where(e.absolute_path, prefix)}: {e.message}" for e in (first, *(e for e in errors if e is not first))]


def _name_problem(where: str, v: dict) -> list[str]:
    """A vertebra's name that is not its label's (the schema checked both are VerSe's)."""
    if VERSE_NAMES[v["label"]] == v["name"]:
        return []
    return [f"{where}: name {v['name']} is not label {v['label']}'s ({VERSE_NAMES[v['label']]})"]


def _label_problems(vertebrae: list[dict]) -> list[str]:
    """Each label once, each name its label's."""
    twice = [lab for lab, n in Counter(v["label"] for v in vertebrae).items() if n > 1]
    problems = [f"vertebrae: label {lab} twice" for lab in twice]
    return problems + [p for i, v in enumerate(vertebrae) for p in _name_problem(f"vertebrae[{i}]", v)]


def _refuse(problems: list[str]) -> None:
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultContractError(problems[0] + more)


def validate_result(result: object) -> dict:
    """``result`` when it follows the result contract (``RESULT_SCHEMA``, unique labels, names
    matching labels).

    Raises:
        ResultContractError: the first problem found, and how many more there are.
    """
    if not isinstance(result, dict):
        raise ResultContractError(f"not a JSON object but {type(result).__name__}")
    _refuse(_schema_problems(result) or _label_problems(result["vertebrae"]))
    return result


def validate_vertebra(vertebra: object) -> dict:
    """``vertebra`` when it follows the contract's vertebra object (``VERTEBRA_SCHEMA``, name
    matching label).

    Raises:
        ResultContractError: the first problem found, and how many more there are.
    """
    _refuse(_schema_problems(vertebra, "vertebra") or _name_problem("vertebra", vertebra))
    return vertebra
