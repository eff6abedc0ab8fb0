"""The result contract's one validator: what the writer writes passes it, impossible files do not."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from healthivert.report.contract import ResultContractError, read_result, validate_result, write_result
from tests.review.results_fixture import CT_STUDY, MASK_STUDY


@pytest.fixture(scope="module")
def written(shared_results: Path) -> dict:
    return json.loads((shared_results / CT_STUDY / "result.json").read_text(encoding="utf-8"))


def _broken(result: dict, change) -> dict:
    bad = copy.deepcopy(result)
    change(bad)
    return bad


def _pop(key: str, index: int = 1):
    return lambda r: r["vertebrae"][index].pop(key)


def _set(key: str, value, index: int = 1):
    return lambda r: r["vertebrae"][index].__setitem__(key, value)


def test_written_results_follow_the_contract(shared_results: Path) -> None:
    for study in (CT_STUDY, MASK_STUDY):
        assert read_result(shared_results / study)["study_id"] == study


@pytest.mark.parametrize(("change", "where"), [
    (_set("genant_grade", 7), "vertebrae[1].genant_grade"),
    (_set("genant_grade", -1), "vertebrae[1].genant_grade"),
    (_set("genant_grade", "2"), "vertebrae[1].genant_grade"),
    (_pop("genant_grade"), "'genant_grade' is a required property"),
    (_pop("status"), "'status' is a required property"),
    (_pop("label"), "'label' is a required property"),
    (_set("label", 99), "vertebrae[1].label"),
    (_set("name", "../L1"), "vertebrae[1].name"),
    (_set("name", "L4"), "vertebrae[1]: name L4 is not label"),
    (lambda r: r["vertebrae"][1].update(label=19, name="T12"), "label 19 twice"),
    (_pop("rhlv"), "'rhlv' is a required property"),
    (lambda r: r["vertebrae"][0]["rhlv"].pop("anterior"), "vertebrae[0].rhlv"),
    (lambda r: r["vertebrae"][0]["heights_mm"]["original"].__setitem__("middle", "tall"), "heights_mm.original.middle"),
    (lambda r: r["vertebrae"][0]["probabilities"].__setitem__("4", 0.1), "vertebrae[0].probabilities"),
    (lambda r: r.pop("study_id"), "'study_id' is a required property"),
    (lambda r: r.__setitem__("vertebrae", {"L1": {}}), "vertebrae:"),
])
def test_impossible_results_are_refused_with_the_reason(written: dict, change, where: str) -> None:
    with pytest.raises(ResultContractError, match="result.json") as refused:
        validate_result(_broken(written, change))
    assert where in str(refused.value)


def test_an_ungraded_vertebra_needs_only_its_status(written: dict) -> None:
    r = copy.deepcopy(written)
    r["vertebrae"][0] = {"label": 19, "name": "T12", "genant_grade": None,
                         "status": "not graded: cut by the field of view (at the superior edge)"}
    validate_result(r)


def test_not_an_object() -> None:
    with pytest.raises(ResultContractError, match="not a JSON object"):
        validate_result([1, 2])


def test_read_result_reports_bad_json(tmp_path: Path) -> None:
    (tmp_path / "result.json").write_text("{", encoding="utf-8")
    with pytest.raises(ResultContractError, match="not valid JSON"):
        read_result(tmp_path)


def test_writer_output_is_unchanged_and_checked(shared_results: Path, tmp_path: Path) -> None:
    original = shared_results / CT_STUDY
    write_result(read_result(original), tmp_path / "ok")
    for name in ("result.json", "vertebrae.csv"):
        assert (tmp_path / "ok" / name).read_bytes() == (original / name).read_bytes()
    (tmp_path / "bad").mkdir()
    bad = read_result(original)
    bad["vertebrae"][1].genant_grade = 7
    with pytest.raises(ResultContractError, match="genant_grade"):
        write_result(bad, tmp_path / "bad")
    assert list((tmp_path / "bad").iterdir()) == []
