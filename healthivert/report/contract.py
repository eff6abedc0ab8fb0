"""The result contract of one study: ``result.json`` and ``vertebrae.csv``.

See docs/design.md. Heights in mm, RHLV and ratios as fractions, density in HU. ``RESULT_SCHEMA``
(JSON Schema) and :func:`validate_result` are the one statement of what a result.json must hold:
the writer checks a result before writing it, and every reader (the viewer) before using it.
"""

from __future__ import annotations

import functools
import json
import math
from collections import Counter
from pathlib import Path

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.labels import VERSE_NAMES
from healthivert.sections import SECTIONS

RESULT_FILE = "result.json"
GENANT_GRADES: tuple[int, ...] = (0, 1, 2, 3)

_NUMBER = {"type": ["number", "null"]}  # null: not measurable (NaN is written as null)


def _numbers(*keys: str) -> dict:
    return {"type": "object", "required": list(keys), "properties": dict.fromkeys(keys, _NUMBER)}


_VERTEBRA = {
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
        "software_version": {"type": "string"},
        "models": {"type": "object"},
        "labels": _LABELS,
        "vertebrae": {"type": "array", "items": _VERTEBRA},
    },
}
MAX_REASON_CHARS = 300


class ResultContractError(InputError):
    """A result.json that does not follow the result contract; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason[:MAX_REASON_CHARS]
        super().__init__(f"{RESULT_FILE}: {self.reason}")


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator  # imported on first use: ~0.1 s a pipeline run does not need

    return Draft202012Validator(RESULT_SCHEMA)


def _where(path) -> str:
    """``vertebrae[1].genant_grade`` for a JSON path."""
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    return text or "(top level)"


def _schema_problems(result: object) -> list[str]:
    """Every way ``result`` breaks ``RESULT_SCHEMA``, the most telling first."""
    from jsonschema.exceptions import best_match

    errors = list(_validator().iter_errors(result))
    if not errors:
        return []
    first = best_match(errors)
    return [f"{_where(e.absolute_path)}: {e.message}" for e in (first, *(e for e in errors if e is not first))]


def _label_problems(vertebrae: list[dict]) -> list[str]:
    """Each label once, each name its label's (the schema checked both are VerSe's)."""
    twice = [lab for lab, n in Counter(v["label"] for v in vertebrae).items() if n > 1]
    problems = [f"vertebrae: label {lab} twice" for lab in twice]
    problems += [f"vertebrae[{i}]: name {v['name']} is not label {v['label']}'s ({VERSE_NAMES[v['label']]})"
                 for i, v in enumerate(vertebrae) if VERSE_NAMES[v["label"]] != v["name"]]
    return problems


def validate_result(result: object) -> dict:
    """``result`` when it follows the result contract (``RESULT_SCHEMA``, unique labels, names
    matching labels).

    Raises:
        ResultContractError: the first problem found, and how many more there are.
    """
    if not isinstance(result, dict):
        raise ResultContractError(f"not a JSON object but {type(result).__name__}")
    problems = _schema_problems(result) or _label_problems(result["vertebrae"])
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ResultContractError(problems[0] + more)
    return result


def parse_result(text: str | bytes) -> dict:
    """A result.json's content, parsed and validated (``ResultContractError`` when it is not)."""
    try:
        result = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise ResultContractError(f"not valid JSON ({exc})") from None
    return validate_result(result)

CSV_COLUMNS = [
    "study_id", "label", "name", "genant_grade", "status",
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "healthy_height_anterior_mm", "healthy_height_middle_mm", "healthy_height_posterior_mm",
    "ratio_anterior_posterior", "ratio_middle_posterior",
    "prob_grade0", "prob_grade1", "prob_grade2", "prob_grade3",
    "trabecular_hu", "bone_density", "synthesizer", "grader", "labels_anchor",
]


def _clean(value):
    """JSON-safe: NaN and infinities become null, floats rounded to 4 decimals."""
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 4)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def csv_row(study_id: str, v: dict, labels_anchor: str | None = None) -> dict:
    """One flat CSV row of a vertebra record; ``labels_anchor`` is the study's (``labels.anchor``)."""
    rhlv = v.get("rhlv") or {}
    heights = v.get("heights_mm") or {}
    orig, healthy = heights.get("original") or {}, heights.get("pseudo_healthy") or {}
    probs = v.get("probabilities") or {}
    ratios = v.get("ratios") or {}
    row = {
        "study_id": study_id, "label": v["label"], "name": v["name"],
        "genant_grade": v["genant_grade"], "status": v["status"],
        **{f"rhlv_{k}": rhlv.get(k) for k in (*SECTIONS, "whole")},
        **{f"height_{k}_mm": orig.get(k) for k in SECTIONS},
        **{f"healthy_height_{k}_mm": healthy.get(k) for k in SECTIONS},
        "ratio_anterior_posterior": ratios.get("anterior_posterior"),
        "ratio_middle_posterior": ratios.get("middle_posterior"),
        **{f"prob_grade{g}": probs.get(str(g)) for g in range(4)},
        "trabecular_hu": v.get("trabecular_hu"), "bone_density": v.get("bone_density"),
        "synthesizer": v.get("synthesizer"), "grader": v.get("grader"), "labels_anchor": labels_anchor,
    }
    return {k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS}


def write_result(result: dict, folder: Path) -> None:
    """Write result.json and vertebrae.csv into ``folder`` (each atomically), after checking the
    result against the contract (``ResultContractError``: nothing is written)."""
    result = validate_result(_clean(result))
    atomic_write_text(folder / RESULT_FILE, json.dumps(result, indent=1) + "\n")
    anchor = (result.get("labels") or {}).get("anchor")
    rows = (csv_row(result["study_id"], v, anchor) for v in result["vertebrae"])
    atomic_write_text(folder / "vertebrae.csv", csv_text(CSV_COLUMNS, rows))


def read_result_file(path: str | Path) -> dict:
    """Read one result.json and check it against the contract.

    Raises:
        ResultContractError: it cannot be read, is not JSON, or does not follow the contract.
    """
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise ResultContractError(f"cannot be read ({exc.strerror or exc})") from None
    return parse_result(content)


def read_result(folder: str | Path) -> dict:
    """A study folder's result.json, read and checked (see :func:`read_result_file`)."""
    return read_result_file(Path(folder) / RESULT_FILE)
