"""The viewer's interactions through Streamlit's AppTest (in-process, no browser)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from healthivert.review import ReviewRequest, ReviewStore
from healthivert.review.launch import ENV_DB, ENV_RESULTS, ENV_REVIEWER, app_script
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, algorithm_grades

APP = str(app_script())  # healthivert/viewer/app.py, the script `healthivert view` runs
THIN_ENTRY = Path(__file__).resolve().parents[2] / "app" / "main.py"
TIMEOUT_S = 60
REVIEWER = "Dr Viewer"


@pytest.fixture
def app(results, monkeypatch) -> AppTest:
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    monkeypatch.setenv(ENV_REVIEWER, REVIEWER)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.run()
    assert not at.exception, at.exception
    return at


def _open(at: AppTest, study: str) -> AppTest:
    at.selectbox(key="study").select(study).run()
    assert not at.exception, at.exception
    return at


def _studies_listed(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["study"])


def _labelled(widgets, label: str):
    """The one widget whose label starts with ``label`` (keys are per vertebra)."""
    found = [w for w in widgets if w.label.startswith(label)]
    assert len(found) == 1, [w.label for w in widgets]
    return found[0]


def test_list_shows_the_studies(app: AppTest) -> None:
    assert sorted(_studies_listed(app)) == sorted([CT_STUDY, MASK_STUDY])
    row = app.dataframe[0].value.set_index("study").loc[CT_STUDY]
    assert row["graded"] == 3 and row["review status"] == "unreviewed" and row["worst grade (algorithm)"] >= 1


def test_the_checkouts_thin_entry_runs_the_same_viewer(results, monkeypatch) -> None:
    """``streamlit run app/main.py`` (the source tree's entry) shows the package's viewer."""
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    monkeypatch.setenv(ENV_REVIEWER, REVIEWER)
    at = AppTest.from_file(str(THIN_ENTRY), default_timeout=TIMEOUT_S).run()
    assert not at.exception, at.exception
    assert sorted(_studies_listed(at)) == sorted([CT_STUDY, MASK_STUDY])
    _open(at, CT_STUDY)
    assert at.title[0].value == f"Study {CT_STUDY}"


def test_filter_and_sort(app: AppTest) -> None:
    app.text_input(key="filter_text").input("mask").run()
    assert _studies_listed(app) == [MASK_STUDY]
    app.text_input(key="filter_text").input("").run()
    app.multiselect(key="filter_status").set_value(["reviewed"]).run()
    assert _studies_listed(app) == []
    app.multiselect(key="filter_status").set_value(["unreviewed", "partly", "reviewed"]).run()
    app.selectbox(key="sort_by").set_value("study id").run()
    assert _studies_listed(app) == [MASK_STUDY, CT_STUDY]


def test_study_view(app: AppTest) -> None:
    _open(app, CT_STUDY)
    assert app.title[0].value == f"Study {CT_STUDY}"
    assert app.query_params["study"] in (CT_STUDY, [CT_STUDY])
    assert len(app.get("image")) >= 4  # the axial plane, straightened bodies, map, profile
    assert len(app.get("component_instance")) == 2  # the clickable sagittal and coronal planes
    assert [s.key for s in app.slider] == ["slice_sagittal", "slice_coronal", "slice_axial"]
    table = app.dataframe[0].value
    assert list(table["vertebra"]) == ["T12", "L1", "L2"]
    assert {"algorithm grade", "reviewed grade", "p0", "RHLV ante %", "H ante mm", "status"} <= set(table.columns)
    app.radio(key="window").set_value("soft tissue").run()
    app.slider(key="slice_axial").set_value(3).run()
    assert not app.exception


def test_override_then_accept(app: AppTest, results) -> None:
    _open(app, CT_STUDY)
    grades = algorithm_grades(results.root, CT_STUDY)
    app.selectbox(key="vertebra").set_value(20).run()
    new = (grades["L1"] + 1) % 4
    _labelled(app.radio, "decision").set_value("override").run()
    _labelled(app.selectbox, "reviewed grade").set_value(new)
    _labelled(app.text_area, "comment").input("endplate intact on the CT")
    app.button(key="save").click().run()
    assert not app.exception and not app.error, [e.value for e in app.error]
    assert "saved: L1" in app.success[0].value
    table = app.dataframe[0].value.set_index("vertebra")
    assert table.loc["L1", "reviewed grade"] == new and table.loc["L1", "algorithm grade"] == grades["L1"]

    store = ReviewStore(results.db_url)
    review = store.review(CT_STUDY, 20)
    assert (review.reviewed_grade, review.action, review.reviewer) == (new, "override", REVIEWER)
    audit = store.audit(CT_STUDY, 20)
    assert [(a.old_grade, a.new_grade, a.comment) for a in audit] == [
        (grades["L1"], new, "endplate intact on the CT")]

    _labelled(app.radio, "decision").set_value("accept").run()
    app.button(key="save").click().run()
    assert "accept" in app.success[0].value
    assert store.review(CT_STUDY, 20).reviewed_grade == grades["L1"]
    assert [a.action for a in store.audit(CT_STUDY, 20)] == ["override", "accept"]
    assert "partly" in [m.value for m in app.metric]
    store.dispose()


def test_override_needs_a_comment(app: AppTest, results) -> None:
    _open(app, CT_STUDY)
    _labelled(app.radio, "decision").set_value("override").run()
    _labelled(app.selectbox, "reviewed grade").set_value((algorithm_grades(results.root, CT_STUDY)["L1"] + 1) % 4)
    app.button(key="save").click().run()
    assert "needs a comment" in app.error[0].value
    assert ReviewStore(results.db_url).audit() == []


def test_reviewer_from_the_launch_is_shown_not_typed(app: AppTest) -> None:
    _open(app, CT_STUDY)
    assert any(f"reviewer: **{REVIEWER}**" in m.value for m in app.sidebar.markdown)
    assert not [w for w in app.text_input if w.label.startswith("reviewer")]


def test_reviewer_defaults_to_the_login_user(results, monkeypatch) -> None:
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    monkeypatch.delenv(ENV_REVIEWER, raising=False)
    monkeypatch.setattr("getpass.getuser", lambda: "radiologist7")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    _open(at, CT_STUDY)
    at.button(key="accept").click().run()
    assert "by radiologist7" in at.success[0].value
    assert ReviewStore(results.db_url).review(CT_STUDY, 20).reviewer == "radiologist7"


def test_without_any_name_the_reviewer_is_asked_once(results, monkeypatch) -> None:
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    monkeypatch.delenv(ENV_REVIEWER, raising=False)

    def no_user() -> str:
        raise OSError("no login name")

    monkeypatch.setattr("getpass.getuser", no_user)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    _open(at, CT_STUDY)
    at.button(key="accept").click().run()
    assert "reviewer's name" in at.error[0].value
    at.sidebar.text_input(key="reviewer").input("Dr Typed").run()
    at.button(key="accept").click().run()
    assert "by Dr Typed" in at.success[0].value


def test_mask_only_study(app: AppTest) -> None:
    _open(app, MASK_STUDY)
    assert any("mask-only" in c.value for c in app.caption)
    assert app.radio(key="window").disabled


def test_link_to_unknown_study(results, monkeypatch) -> None:
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    for bad in ("../../etc", "/etc/passwd", "sub-nope"):
        at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
        at.query_params["study"] = bad
        at.run()
        assert not at.exception and "not in this results folder" in at.warning[0].value
        assert at.session_state["study"] == "(study list)"
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S)
    at.query_params["study"] = CT_STUDY
    at.run()
    assert at.title[0].value == f"Study {CT_STUDY}"


def test_no_results_folder(monkeypatch) -> None:
    monkeypatch.delenv(ENV_RESULTS, raising=False)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert "No results folder" in at.error[0].value


def test_decision_does_not_carry_over_to_the_next_vertebra(app: AppTest, results) -> None:
    """Override L1, pick L2, type a comment, Save: L2 is accepted at its own grade, not overridden."""
    _open(app, CT_STUDY)
    grades = algorithm_grades(results.root, CT_STUDY)
    new = next(g for g in range(4) if g not in (grades["L1"], grades["L2"]))
    app.selectbox(key="vertebra").set_value(20).run()
    _labelled(app.radio, "decision").set_value("override").run()
    _labelled(app.selectbox, "reviewed grade").set_value(new)
    _labelled(app.text_area, "comment").input("L1 endplate intact")
    app.button(key="save").click().run()
    assert "saved: L1" in app.success[0].value

    app.selectbox(key="vertebra").set_value(21).run()
    assert _labelled(app.radio, "decision").value == "accept"
    assert _labelled(app.text_area, "comment").value == ""
    _labelled(app.text_area, "comment").input("looks fine")
    app.button(key="save").click().run()
    assert not app.error, [e.value for e in app.error]
    assert f"saved: L2 grade {grades['L2']} (accept)" in app.success[0].value

    store = ReviewStore(results.db_url)
    l1, l2 = store.review(CT_STUDY, 20), store.review(CT_STUDY, 21)
    assert (l1.action, l1.reviewed_grade) == ("override", new)
    assert (l2.action, l2.reviewed_grade, l2.comment) == ("accept", grades["L2"], "looks fine")

    app.selectbox(key="vertebra").set_value(20).run()  # back to L1: its form shows L1's stored decision
    assert _labelled(app.radio, "decision").value == "override"
    assert _labelled(app.selectbox, "reviewed grade").value == new
    store.dispose()


def test_a_page_showing_an_older_review_cannot_overwrite_a_newer_one(app: AppTest, results) -> None:
    """A opens L1 (unreviewed); B accepts it meanwhile; A's override is refused with B's review shown,
    kept in the audit trail as refused; A, now shown B's review, can save over it deliberately."""
    _open(app, CT_STUDY)
    grades = algorithm_grades(results.root, CT_STUDY)
    app.selectbox(key="vertebra").set_value(20).run()
    new = (grades["L1"] + 1) % 4
    _labelled(app.radio, "decision").set_value("override").run()  # A's page shows L1 unreviewed
    store = ReviewStore(results.db_url)
    store.save(ReviewRequest(CT_STUDY, 20, "L1", grades["L1"], "accept", "Dr B", base_revision=0))
    _labelled(app.selectbox, "reviewed grade").set_value(new)
    _labelled(app.text_area, "comment").input("posterior wall displaced")
    app.button(key="save").click().run()
    assert not app.exception and not app.success
    assert "reviewed meanwhile" in app.error[0].value and "Dr B" in app.error[0].value
    review = store.review(CT_STUDY, 20)
    assert (review.reviewer, review.action, review.revision) == ("Dr B", "accept", 1)
    assert [(a.reviewer, a.outcome, a.new_grade, a.comment) for a in store.audit(CT_STUDY, 20)] == [
        ("Dr B", "saved", grades["L1"], ""), (REVIEWER, "refused", new, "posterior wall displaced")]
    assert any("Current review" in m.value and "Dr B" in m.value for m in app.markdown)
    assert _labelled(app.text_area, "comment").value == "posterior wall displaced"  # A's text is still there

    app.button(key="save").click().run()  # the page now showed B's review: A's save is deliberate
    assert "saved: L1" in app.success[0].value, [e.value for e in app.error]
    review = store.review(CT_STUDY, 20)
    assert (review.reviewer, review.action, review.reviewed_grade, review.revision) == (REVIEWER, "override", new, 2)
    assert [a.outcome for a in store.audit(CT_STUDY, 20)] == ["saved", "refused", "saved"]
    store.dispose()


def _write_grade(folder: Path, study_id: str, name: str, grade) -> None:
    """Rewrite a study's result.json as ``study_id`` with ``name`` given an impossible ``grade``."""
    path = folder / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    result["study_id"] = study_id
    next(v for v in result["vertebrae"] if v["name"] == name)["genant_grade"] = grade
    path.write_text(json.dumps(result), encoding="utf-8")


def test_a_result_with_an_impossible_grade_is_listed_as_unreadable(results, monkeypatch) -> None:
    shutil.copytree(results.root / CT_STUDY, results.root / "sub-bad")
    _write_grade(results.root / "sub-bad", "sub-bad", "L1", 7)
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT_S).run()
    assert not at.exception, at.exception
    assert sorted(_studies_listed(at)) == sorted([CT_STUDY, MASK_STUDY])
    assert "sub-bad" not in at.selectbox(key="study").options
    warning = " ".join(w.value for w in at.warning)
    assert "sub-bad: unreadable result.json" in warning and "vertebrae[1].genant_grade" in warning


def test_a_result_broken_after_the_scan_shows_the_reason(app: AppTest, results) -> None:
    _write_grade(results.root / CT_STUDY, CT_STUDY, "L1", 7)  # the viewer listed it while it was fine
    app.selectbox(key="study").select(CT_STUDY).run()
    assert not app.exception, app.exception
    assert "cannot open the study" in app.error[0].value and "genant_grade" in app.error[0].value
    app.selectbox(key="study").select("(study list)").run()
    assert not app.exception, app.exception
    assert CT_STUDY not in _studies_listed(app)
    assert any(f"{CT_STUDY}: unreadable result.json" in w.value for w in app.warning)


def test_the_study_header_names_the_dicom_study(results, monkeypatch) -> None:
    path = results.root / CT_STUDY / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    study = {"source": "DICOM", "patient_id": "P-0042", "patient_name": "DOE^JANE", "study_date": "20221208",
             "modality": "CT", "manufacturer": "SIEMENS", "series_uid": "", "slice_thickness_mm": 3.0,
             "notes": ["SliceThickness in the file (3 mm) differs from the spacing of the slice positions (2 mm)"]}
    path.write_text(json.dumps({**result, "study": study}), encoding="utf-8")
    monkeypatch.setenv(ENV_RESULTS, str(results.root))
    monkeypatch.setenv(ENV_DB, results.db_url)
    at = _open(AppTest.from_file(APP, default_timeout=TIMEOUT_S).run(), CT_STUDY)
    header = " ".join(c.value for c in at.caption).replace("\\", "")
    assert "patient ID: **P-0042**" in header and "patient name: **DOE^JANE**" in header
    assert "study date: **2022-12-08**" in header and "manufacturer: **SIEMENS**" in header
    assert "series UID: **(blank in the file)**" in header and "slice thickness (file): **3 mm**" in header
    assert "⚠ SliceThickness in the file (3 mm)" in header
    _open(at, MASK_STUDY)
    assert "not DICOM" in " ".join(c.value for c in at.caption)
