"""A reviewer's relabelling by a shift (audited; result.json untouched) and next/previous navigation."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import DatabaseError

from healthivert.review import ResultsFolder, ReviewStore
from healthivert.review.db import AppendOnlyError, LabelShift
from healthivert.review.navigate import pick_from_table, step_to
from healthivert.review.relabel import check_shift, shift_text, shifted_names
from healthivert.review.store import RelabelConflictError, RelabelRequest
from healthivert.review.studies import Study
from healthivert.review.tables import study_summary, vertebra_rows
from tests.review.results_fixture import CT_STUDY


def test_shifted_names() -> None:
    assert shifted_names([19, 20, 21], 1) == {19: "L1", 20: "L2", 21: "L3"}
    assert shifted_names([19, 20, 21], -2) == {19: "T10", 20: "T11", 21: "T12"}
    assert shifted_names([19, 20], 0) == {19: "T12", 20: "L1"}
    assert shift_text(1) == "+1 level" and shift_text(-2) == "-2 levels" and shift_text(0) == "none"


@pytest.mark.parametrize(("labels", "shift", "match"), [
    ([23, 24], 2, "past C1 or L6"), ([1, 2], -1, "past C1 or L6"), ([19, 28, 20], 1, "T13"),
    ([20], 4, "from -3 to \\+3"), ([20], 1.0, "whole number"),
])
def test_impossible_shifts_are_refused(labels, shift, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        check_shift(labels, shift)


def test_relabel_is_audited_and_result_json_untouched(results) -> None:
    store = ReviewStore(results.db_url)
    folders = ResultsFolder.open(results.root)
    before = (results.root / CT_STUDY / "result.json").read_bytes()
    labels = (19, 20, 21)
    assert store.label_shift(CT_STUDY) is None
    with pytest.raises(ValueError, match="needs a comment"):
        RelabelRequest(CT_STUDY, labels, 1, "Dr A")
    with pytest.raises(ValueError, match="reviewer's name"):
        RelabelRequest(CT_STUDY, labels, 1, " ", "sacrum")
    store.relabel(RelabelRequest(CT_STUDY, labels, 1, "Dr A", "counted from the sacrum", base_shift=0))
    with pytest.raises(RelabelConflictError, match="now \\+1 by Dr A"):
        store.relabel(RelabelRequest(CT_STUDY, labels, -1, "Dr B", "ribs", base_shift=0))
    store.relabel(RelabelRequest(CT_STUDY, labels, 0, "Dr B", base_shift=1))  # back to the algorithm's
    store.relabel(RelabelRequest(CT_STUDY, labels, 0, "Dr C", base_shift=0))  # checked: names are right
    assert [(s.shift, s.previous_shift, s.reviewer) for s in store.label_shifts(CT_STUDY)] == [
        (1, 0, "Dr A"), (0, 1, "Dr B"), (0, 0, "Dr C")]
    assert store.label_shift(CT_STUDY).reviewer == "Dr C" and store.current_shifts() == {CT_STUDY: 0}
    assert (results.root / CT_STUDY / "result.json").read_bytes() == before

    with pytest.raises(AppendOnlyError), store.sessions.begin() as session:
        session.get(LabelShift, 1).shift = 3
    with pytest.raises(DatabaseError, match="append-only"), store.sessions.begin() as session:
        session.connection().exec_driver_sql("DELETE FROM label_shifts")

    study = Study.load(folders, CT_STUDY)
    rows = vertebra_rows(study, {}, shift=1)
    assert [(r["label"], r["algorithm_name"], r["name"], r["label_shift"]) for r in rows] == [
        (19, "T12", "L1", 1), (20, "L1", "L2", 1), (21, "L2", "L3", 1)]
    assert study_summary(study, {}, shift=1)["label_shift"] == 1
    store.dispose()


def test_labels_anchor_in_rows_and_summary(results) -> None:
    path = results.root / CT_STUDY / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    result.pop("labels", None)
    path.write_text(json.dumps(result), encoding="utf-8")
    study = Study.load(ResultsFolder.open(results.root), CT_STUDY)
    assert study.labels_anchored is None and study_summary(study, {})["labels_anchored"] is None
    result["labels"] = {"source": "segmented from the CT", "anchor": "none: labels guessed", "anchored": False}
    path.write_text(json.dumps(result), encoding="utf-8")
    study = Study.load(ResultsFolder.open(results.root), CT_STUDY)
    assert study.labels_anchored is False and study_summary(study, {})["labels_anchored"] is False
    row = vertebra_rows(study, {})[0]
    assert (row["labels_anchor"], row["labels_anchored"]) == ("none: labels guessed", False)


def test_step_to_wraps_and_skips_done() -> None:
    order = [19, 20, 21, 22]
    assert step_to(order, {21, 19}, 20) == 21
    assert step_to(order, {21, 19}, 21) == 19  # wraps
    assert step_to(order, {21, 19}, 20, -1) == 19
    assert step_to(order, {19}, 19) == 19  # the one left
    assert step_to(order, set(), 19) is None
    assert step_to(order, {22}, None) == 22 and step_to(order, {19, 22}, None, -1) == 22
    assert step_to([], {1}, None) is None
    with pytest.raises(ValueError):
        step_to(order, {19}, 19, 2)


def test_pick_from_table() -> None:
    assert pick_from_table([1], [19, 20, 21]) == 20
    assert pick_from_table([], [19, 20]) is None and pick_from_table([5], [19]) is None


def test_the_contract_describes_labels_as_optional(shared_results) -> None:
    from healthivert.report.contract import ResultContractError, validate_result

    result = json.loads((shared_results / CT_STUDY / "result.json").read_text(encoding="utf-8"))
    result.pop("labels", None)
    validate_result(result)  # older results have none
    result["labels"] = {"source": "given mask", "anchor": "sacrum", "anchored": True, "shift": 1, "was": None}
    validate_result(result)
    result["labels"]["anchored"] = "no"
    with pytest.raises(ResultContractError, match="labels.anchored"):
        validate_result(result)
