"""The result contract of one study: ``result.json`` and ``vertebrae.csv``, written and read.

See docs/design.md. Heights in mm, RHLV and ratios as fractions, density in HU. ``RESULT_SCHEMA``
(:mod:`healthivert.report.schema`) is the one statement of what a result.json must hold: the
writer checks a result before writing it, and every reader (the viewer) before using it. In
Python a result is a dict whose ``vertebrae`` are :class:`VertebraRecord` objects; on disk they
are the records' :meth:`~VertebraRecord.to_json` objects.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.report.record import VertebraRecord
from healthivert.report.schema import (  # noqa: F401 (the contract's names, re-exported)
    GENANT_GRADES,
    RESULT_FILE,
    RESULT_SCHEMA,
    ResultContractError,
    validate_result,
)
from healthivert.sections import SECTIONS


def to_json(result: dict) -> dict:
    """``result`` as result.json holds it: its vertebra records as JSON objects."""
    return {**result, "vertebrae": [v.to_json() for v in result["vertebrae"]]}


def from_json(result: dict) -> dict:
    """A checked result.json's content with its vertebrae as records (see :func:`validate_result`)."""
    return {**result, "vertebrae": [VertebraRecord.from_json(v) for v in result["vertebrae"]]}


def parse_result(text: str | bytes) -> dict:
    """A result.json's content, parsed and validated (``ResultContractError`` when it is not),
    its vertebrae as records."""
    try:
        result = json.loads(text)
    except ValueError as exc:  # json.JSONDecodeError, UnicodeDecodeError
        raise ResultContractError(f"not valid JSON ({exc})") from None
    return from_json(validate_result(result))


CSV_COLUMNS = [
    "study_id", "label", "name", "genant_grade", "status",
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "healthy_height_anterior_mm", "healthy_height_middle_mm", "healthy_height_posterior_mm",
    "ratio_anterior_posterior", "ratio_middle_posterior", "ratio_anterior_posterior_z",
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


def csv_row(study_id: str, v: VertebraRecord, labels_anchor: str | None = None) -> dict:
    """One flat CSV row of a vertebra record; ``labels_anchor`` is the study's (``labels.anchor``)."""
    heights = v.heights_mm
    ratios = v.ratios or {}
    row = {
        "study_id": study_id, "label": v.label, "name": v.name,
        "genant_grade": v.genant_grade, "status": v.status,
        **{f"rhlv_{k}": v.rhlv.get(k) if v.rhlv else None for k in (*SECTIONS, "whole")},
        **{f"height_{k}_mm": heights.original.get(k) if heights else None for k in SECTIONS},
        **{f"healthy_height_{k}_mm": heights.pseudo_healthy.get(k) if heights else None for k in SECTIONS},
        "ratio_anterior_posterior": ratios.get("anterior_posterior"),
        "ratio_middle_posterior": ratios.get("middle_posterior"),
        "ratio_anterior_posterior_z": ratios.get("anterior_posterior_z"),
        **{f"prob_grade{g}": v.probabilities.get(g) for g in GENANT_GRADES},
        "trabecular_hu": v.trabecular_hu, "bone_density": v.bone_density,
        "synthesizer": v.synthesizer, "grader": v.grader, "labels_anchor": labels_anchor,
    }
    return {k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS}


def write_result(result: dict, folder: Path) -> None:
    """Write result.json and vertebrae.csv into ``folder`` (each atomically), after checking the
    result (its ``vertebrae`` records) against the contract (``ResultContractError``: nothing is written)."""
    checked = validate_result(_clean(to_json(result)))
    atomic_write_text(folder / RESULT_FILE, json.dumps(checked, indent=1) + "\n")
    anchor = (checked.get("labels") or {}).get("anchor")
    rows = (csv_row(checked["study_id"], v, anchor) for v in from_json(checked)["vertebrae"])
    atomic_write_text(folder / "vertebrae.csv", csv_text(CSV_COLUMNS, rows))


def read_result_file(path: str | Path) -> dict:
    """Read one result.json and check it against the contract; its vertebrae as records.

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
