"""The viewer's reading and workflow through AppTest: window / zoom, picking a vertebra from the
table, next / previous unreviewed vertebra and study, keyboard shortcuts, the explanation of a
grade (SVM against the rule, GAN refused), relabelling by a shift, and unanchored labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from healthivert.review import ReviewRequest, ReviewStore
from healthivert.review.launch import ENV_DB, ENV_RESULTS, ENV_REVIEWER, app_script
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, algorithm_grades

APP = str(app_script())  # healthivert/viewer/app.py, the script `healthivert view` runs
TIMEOUT_S = 60
REVIEWER = "Dr Flow"


def _start(results, monkeypatch, study: str | None = CT_STUDY) -> AppTest:
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    monkeypatch.setenv(ENV_REVIEWER, REVIEWER)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    if study is not None:
        at.query_params["study"] = study
    at.run()
    assert not at.exception, at.exception
    return at


def _edit_result(root: Path, study_id: str, change) -> None:
    path = root / study_id / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    change(result)
    path.write_text(json.dumps(result), encoding="utf-8")


def _vertebra(result: dict, name: str) -> dict:
    return next(v for v in result["vertebrae"] if v["name"] == name)


def _texts(at: AppTest) -> str:
    return " ".join(e.value for kind in ("markdown", "info", "warning", "error", "caption") for e in getattr(at, kind))


def test_window_presets_custom_and_zoom(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    assert at.radio(key="window").options == ["bone (W 1800 L 400)", "soft tissue (W 400 L 40)", "custom"]
    at.radio(key="window").set_value("custom").run()
    at.slider(key="window_width").set_value(600).run()
    at.slider(key="window_level").set_value(100).run()
    at.select_slider(key="zoom").set_value(3.0).run()
    assert not at.exception, at.exception
    assert len(at.get("image")) + len(at.get("component_instance")) >= 6  # 2 of the planes clickable


def test_slices_follow_the_chosen_vertebra(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    l1 = at.slider(key="slice_axial").value
    at.selectbox(key="vertebra").set_value(21).run()  # L2 lies below L1
    assert at.slider(key="slice_axial").value < l1
    at.slider(key="slice_axial").set_value(l1).run()  # free scrolling afterwards
    assert at.slider(key="slice_axial").value == l1


def test_pick_a_vertebra_from_the_table(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    assert at.selectbox(key="vertebra").value == 20
    at.session_state["vertebra_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="vertebra").value == 19
    assert any(s.value.startswith("Review T12") for s in at.subheader)


def test_pick_a_vertebra_by_clicking_the_sagittal_plane(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    assert at.selectbox(key="vertebra").value == 20
    drawn = at.session_state["plane_drawn_sagittal"]
    width, height = drawn.view.size_px
    _, (x0, y0, x1, y1) = next(b for b in drawn.boxes if b[0] == 19)  # T12's name beside the spine
    # the browser reports the click in displayed pixels: here the image is shown at half its size
    at.session_state["click_sagittal"] = {"x": (x0 + x1) / 4, "y": (y0 + y1) / 4, "width": width / 2,
                                          "height": height / 2, "unix_time": 1}
    at.run()
    assert not at.exception, at.exception
    assert at.selectbox(key="vertebra").value == 19
    assert any(s.value.startswith("Review T12") for s in at.subheader)
    at.selectbox(key="vertebra").set_value(21).run()  # the same click, seen once, does not pull it back
    assert at.selectbox(key="vertebra").value == 21


def test_one_click_accept_and_next_unreviewed(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    grades = algorithm_grades(results.root, CT_STUDY)
    shortcuts = {b.key: b.proto.shortcut for b in at.button}
    assert {shortcuts["accept"], shortcuts["override"], shortcuts["vertebra_step_+1"]} == {"a", "o", "n"}
    assert (shortcuts["save"], shortcuts["study_step_+1"]) == ("ctrl+enter", "shift+n")
    at.button(key="accept").click().run()  # L1, the worst, is shown first
    assert f"saved: L1 grade {grades['L1']} (accept) by {REVIEWER}" in at.success[0].value
    at.button(key="vertebra_step_+1").click().run()
    assert at.selectbox(key="vertebra").value == 21  # L2: the next unreviewed after L1
    at.button(key="vertebra_step_+1").click().run()
    assert at.selectbox(key="vertebra").value == 19  # wraps to T12
    at.button(key="vertebra_step_-1").click().run()
    assert at.selectbox(key="vertebra").value == 21
    at.button(key="accept").click().run()
    at.selectbox(key="vertebra").set_value(19).run()
    at.button(key="accept").click().run()
    at.button(key="vertebra_step_+1").click().run()
    assert "every graded vertebra of this study is reviewed" in _texts(at)
    store = ReviewStore(results.db_url)
    assert sorted(lab for (_, lab) in store.reviews(CT_STUDY)) == [19, 20, 21]
    store.dispose()


def test_override_button_opens_the_override(results, monkeypatch) -> None:
    at = _start(results, monkeypatch)
    at.button(key="override").click().run()
    decision = next(r for r in at.radio if r.label == "decision")
    assert decision.value == "override"
    assert any(t.label.startswith("comment (required") for t in at.text_area)


def test_next_unreviewed_study(results, monkeypatch) -> None:
    store = ReviewStore(results.db_url)
    for name, grade in algorithm_grades(results.root, MASK_STUDY).items():
        label = {"T12": 19, "L1": 20, "L2": 21}[name]
        store.save(ReviewRequest(MASK_STUDY, label, name, grade, "accept", "Dr B"))
    at = _start(results, monkeypatch, study=None)
    at.button(key="study_step_+1").click().run()
    assert at.selectbox(key="study").value == CT_STUDY  # sub-maskonly is reviewed
    assert at.title[0].value == f"Study {CT_STUDY}"
    for label, name in ((19, "T12"), (20, "L1"), (21, "L2")):
        store.save(ReviewRequest(CT_STUDY, label, name, algorithm_grades(results.root, CT_STUDY)[name], "accept",
                                 "Dr B"))
    at.button(key="study_step_-1").click().run()
    assert "every study is reviewed" in _texts(at)
    store.dispose()


def test_explanation_when_the_svm_and_the_rule_disagree(results, monkeypatch) -> None:
    def svm_against_rule(result: dict) -> None:
        l2 = _vertebra(result, "L2")
        l2.update(grader="svm", genant_grade=3, probabilities={"0": 0.05, "1": 0.15, "2": 0.2, "3": 0.6})
        l2["rhlv"].update(anterior=0.22, middle=0.1, posterior=0.05)

    _edit_result(results.root, CT_STUDY, svm_against_rule)
    at = _start(results, monkeypatch)
    at.selectbox(key="vertebra").set_value(21).run()
    text = _texts(at)
    assert "Largest height loss: anterior, RHLV 22 % (20-25 %)" in text
    assert "The SVM graded L2 3 (severe) (probability 0.60), higher than the Genant rule's 1 (mild)" in text
    assert "grade 3 0.60" in text and "20 / 25 / 40 %" in text
    at.selectbox(key="vertebra").set_value(20).run()
    assert "The SVM graded" not in _texts(at)  # L1 was graded by the rule


def test_gan_refused_is_shown_in_the_explanation_and_the_table(results, monkeypatch) -> None:
    why = "gan not used: the GAN's body (14.2 mm) was 31% shorter than the neighbours' estimate (20.6 mm)"

    def fallback(result: dict) -> None:
        result["synthesizer"] = "gan"
        for v in result["vertebrae"]:
            v["synthesizer"] = "gan"
        l1 = _vertebra(result, "L1")
        l1.update(synthesizer="prior", notes=[why], status="graded (pseudo-healthy body from the prior: ...)")

    _edit_result(results.root, CT_STUDY, fallback)
    at = _start(results, monkeypatch)
    table = at.dataframe[0].value.set_index("vertebra")
    assert table.loc["L1", "pseudo-healthy"] == "⚠ prior (GAN refused)" and table.loc["L2", "pseudo-healthy"] == "gan"
    assert any("from the prior, not the GAN" in w.value and why in w.value for w in at.warning)
    at.selectbox(key="vertebra").set_value(21).run()
    assert not any("from the prior" in w.value for w in at.warning)


def test_relabel_by_a_shift(results, monkeypatch) -> None:
    before = (results.root / CT_STUDY / "result.json").read_bytes()
    at = _start(results, monkeypatch)
    at.number_input(key=f"relabel_shift|{CT_STUDY}").set_value(1).run()
    assert "T12 → L1, L1 → L2, L2 → L3" in _texts(at)
    at.button(key="relabel").click().run()
    assert "needs a comment" in at.error[0].value
    at.text_input(key=f"relabel_comment|{CT_STUDY}").input("counted from the sacrum").run()
    at.button(key="relabel").click().run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["vertebra"]) == ["L1", "L2", "L3"] and list(table["algorithm name"]) == ["T12", "L1", "L2"]
    assert at.selectbox(key="vertebra").format_func(20) == "L2"
    assert any("shifted by +1 level" in i.value for i in at.info)
    at.button(key="accept").click().run()
    assert "saved: L2 grade" in at.success[0].value
    store = ReviewStore(results.db_url)
    assert [(s.shift, s.reviewer, s.comment) for s in store.label_shifts(CT_STUDY)] == [
        (1, REVIEWER, "counted from the sacrum")]
    assert store.review(CT_STUDY, 20).name == "L1"  # stored under the algorithm's label and name
    assert (results.root / CT_STUDY / "result.json").read_bytes() == before
    store.dispose()


def _unanchor(result: dict) -> None:
    result["labels"] = {"source": "segmented from the CT", "anchor": "none: labels guessed", "anchored": False}


def test_unanchored_labels_are_warned_about(results, monkeypatch) -> None:
    _edit_result(results.root, CT_STUDY, _unanchor)
    _edit_result(results.root, MASK_STUDY, lambda r: r.pop("labels", None))  # an older result: unknown
    at = _start(results, monkeypatch, study=None)
    listed = at.dataframe[0].value.set_index("study")
    assert listed.loc[CT_STUDY, "labels"] == "⚠ unanchored" and listed.loc[MASK_STUDY, "labels"] == ""
    assert any("unanchored labels" in w.value and CT_STUDY in w.value for w in at.warning)
    at.selectbox(key="study").select(CT_STUDY).run()
    banner = at.error[0].value
    assert "labels unanchored: no sacrum or 12th rib found in view" in banner and "relabel if needed" in banner
    assert "none: labels guessed" in banner
    at.text_input(key=f"relabel_comment|{CT_STUDY}").input("checked against the ribs")
    at.button(key="relabel").click().run()  # shift 0: the names were checked
    assert f"A reviewer has checked them: {REVIEWER}" in at.error[0].value
    at.selectbox(key="study").select(MASK_STUDY).run()
    assert not at.error and not any("unanchored" in w.value for w in at.warning)


@pytest.mark.parametrize("anchored", [True, None])
def test_anchored_or_unknown_labels_give_no_warning(results, monkeypatch, anchored) -> None:
    def set_anchor(result: dict) -> None:
        result.pop("labels", None)
        if anchored is not None:
            result["labels"] = {"source": "given mask", "anchor": "given mask", "anchored": True}

    _edit_result(results.root, CT_STUDY, set_anchor)
    at = _start(results, monkeypatch)
    assert not at.error and "unanchored" not in _texts(at)
