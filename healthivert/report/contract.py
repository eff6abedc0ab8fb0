"""The result contract of one study: ``result.json`` and ``vertebrae.csv``.

See DESIGN.md. Heights in mm, RHLV and ratios as fractions, density in HU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.sections import SECTIONS

CSV_COLUMNS = [
    "study_id", "label", "name", "genant_grade", "status",
    "rhlv_anterior", "rhlv_middle", "rhlv_posterior", "rhlv_whole",
    "height_anterior_mm", "height_middle_mm", "height_posterior_mm",
    "healthy_height_anterior_mm", "healthy_height_middle_mm", "healthy_height_posterior_mm",
    "ratio_anterior_posterior", "ratio_middle_posterior",
    "prob_grade0", "prob_grade1", "prob_grade2", "prob_grade3",
    "trabecular_hu", "bone_density", "synthesizer", "grader",
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


def csv_row(study_id: str, v: dict) -> dict:
    """One flat CSV row of a vertebra record."""
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
        "synthesizer": v.get("synthesizer"), "grader": v.get("grader"),
    }
    return {k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS}


def write_result(result: dict, folder: Path) -> None:
    """Write result.json and vertebrae.csv into ``folder`` (each atomically)."""
    result = _clean(result)
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1) + "\n")
    rows = (csv_row(result["study_id"], v) for v in result["vertebrae"])
    atomic_write_text(folder / "vertebrae.csv", csv_text(CSV_COLUMNS, rows))


def read_result(folder: str | Path) -> dict:
    """Read a study's result.json."""
    return json.loads((Path(folder) / "result.json").read_text(encoding="utf-8"))
