"""The per-vertebra record: every contract key a field, result.json written and read back unchanged."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from pathlib import Path

import pytest

from healthivert.errors import InputError
from healthivert.report.contract import read_result, write_result
from healthivert.report.record import JSON_KEYS, Heights, Rhlv, SectionValues, VertebraRecord
from healthivert.report.schema import RESULT_SCHEMA, VERTEBRA_SCHEMA, ResultContractError
from healthivert.sections import SECTIONS
from tests.review.results_fixture import CT_STUDY, MASK_STUDY

#: the keys result.json's vertebra objects had before the record (the writer's order)
MEASURED_KEYS = ["label", "name", "genant_grade", "synthesizer", "status", "rhlv", "heights_mm", "ratios",
                 "pseudo_healthy_from", "trabecular_hu", "bone_density", "notes", "grader", "probabilities"]


def _written(folder: Path) -> dict:
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


def test_every_key_of_the_schemas_vertebra_is_a_field() -> None:
    names = {f.name for f in fields(VertebraRecord)}
    assert set(RESULT_SCHEMA["properties"]["vertebrae"]["items"]["properties"]) <= names
    assert set(JSON_KEYS) <= names and JSON_KEYS == tuple(MEASURED_KEYS)
    assert tuple(f.name for f in fields(SectionValues)) == SECTIONS
    assert tuple(f.name for f in fields(Rhlv)) == (*SECTIONS, "whole")


@pytest.mark.parametrize("study", [CT_STUDY, MASK_STUDY])
def test_a_written_result_round_trips(shared_results: Path, study: str) -> None:
    for v in _written(shared_results / study)["vertebrae"]:
        back = VertebraRecord.from_json(v).to_json()
        assert back == v and list(back) == list(v)  # same keys, values and order


def test_written_keys_are_the_contracts(shared_results: Path) -> None:
    for study in (CT_STUDY, MASK_STUDY):
        for v in _written(shared_results / study)["vertebrae"]:
            assert list(v) == [k for k in MEASURED_KEYS if k in v]
            assert set(v) >= {"label", "name", "genant_grade", "synthesizer", "status", "grader"}
            if v["genant_grade"] is not None:
                assert set(v) >= set(MEASURED_KEYS) - {"notes"}


def test_read_then_write_gives_the_same_files(shared_results: Path, tmp_path: Path) -> None:
    result = read_result(shared_results / CT_STUDY)
    assert all(isinstance(v, VertebraRecord) for v in result["vertebrae"])
    write_result(result, tmp_path)
    for name in ("result.json", "vertebrae.csv"):
        assert (tmp_path / name).read_bytes() == (shared_results / CT_STUDY / name).read_bytes()


def test_record_attributes(shared_results: Path) -> None:
    v = read_result(shared_results / CT_STUDY)["vertebrae"][0]
    assert v.measured and v.graded and isinstance(v.heights_mm, Heights)
    assert v.rhlv.get("anterior") == v.rhlv.anterior
    assert set(v.probabilities) <= {0, 1, 2, 3} and v.trabecular_hu is not None


def test_an_unmeasured_vertebra_writes_only_what_it_has() -> None:
    v = VertebraRecord(19, "T12", "not graded: cut by the field of view", synthesizer="prior", grader="rule",
                       notes=["centroid computed from the mask"])
    assert v.to_json() == {"label": 19, "name": "T12", "genant_grade": None, "synthesizer": "prior",
                           "status": "not graded: cut by the field of view",
                           "notes": ["centroid computed from the mask"], "grader": "rule"}
    assert VertebraRecord.from_json(v.to_json()) == v
    minimal = {"label": 19, "name": "T12", "genant_grade": None, "status": "not graded"}
    assert VertebraRecord.from_json(minimal).to_json() == minimal


def test_keys_beyond_the_contract_are_kept() -> None:
    obj = {"label": 20, "name": "L1", "genant_grade": None, "status": "not graded", "reader": "Dr A"}
    v = VertebraRecord.from_json(obj)
    assert v.extra == {"reader": "Dr A"} and v.to_json() == obj


@pytest.mark.parametrize(("change", "where"), [
    (lambda v: v.__setitem__("genant_grade", 7), "vertebra.genant_grade"),
    (lambda v: v.pop("status"), "'status' is a required property"),
    (lambda v: v.pop("rhlv"), "'rhlv' is a required property"),
    (lambda v: v["heights_mm"]["original"].__setitem__("middle", "tall"), "vertebra.heights_mm.original.middle"),
    (lambda v: v["probabilities"].__setitem__("4", 0.1), "vertebra.probabilities"),
    (lambda v: v.__setitem__("name", "L4"), "vertebra: name L4 is not label"),
    (lambda v: v.__setitem__("label", 99), "vertebra.label"),
])
def test_bad_vertebrae_are_refused_in_one_line(shared_results: Path, change, where: str) -> None:
    good = next(v for v in _written(shared_results / CT_STUDY)["vertebrae"] if v["genant_grade"] is not None)
    bad = copy.deepcopy(good)
    change(bad)
    with pytest.raises(ResultContractError, match="result.json") as refused:
        VertebraRecord.from_json(bad)
    assert isinstance(refused.value, InputError)
    assert where in str(refused.value) and "\n" not in str(refused.value)


def test_not_an_object_is_refused() -> None:
    with pytest.raises(ResultContractError, match="vertebra"):
        VertebraRecord.from_json(["L1"])


def test_the_vertebra_schema_is_the_results() -> None:
    assert RESULT_SCHEMA["properties"]["vertebrae"]["items"] is VERTEBRA_SCHEMA
