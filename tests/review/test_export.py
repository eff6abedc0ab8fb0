"""Exports: CSV / JSON columns with both grades, copied maps, the HTML report, and the CLI."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from healthivert.cli import main
from healthivert.review import EXPORT_COLUMNS, ResultsFolder, ReviewRequest, ReviewStore, export_results
from healthivert.review.launch import ENV_DB, ENV_RESULTS, ENV_REVIEWER, viewer_command, viewer_env, viewer_url
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, algorithm_grades

XSS = "<script>alert(1)</script> wedge"


@pytest.fixture
def reviewed(results):
    store = ReviewStore(results.db_url)
    grades = algorithm_grades(results.root, CT_STUDY)
    store.save(ReviewRequest(CT_STUDY, 20, "L1", grades["L1"], "override", "Dr A", XSS, (grades["L1"] + 1) % 4))
    store.save(ReviewRequest(CT_STUDY, 19, "T12", grades["T12"], "accept", "Dr B"))
    yield results, store
    store.dispose()


def test_export_files(reviewed, tmp_path: Path) -> None:
    results, store = reviewed
    summary = export_results(ResultsFolder.open(results.root), store, tmp_path / "export")
    with summary.csv.open(encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == EXPORT_COLUMNS
        rows = list(reader)
    assert len(rows) == summary.rows == 6  # 3 vertebrae x 2 studies
    by = {(r["study_id"], r["name"]): r for r in rows}
    l1, t12, l2 = by[(CT_STUDY, "L1")], by[(CT_STUDY, "T12")], by[(CT_STUDY, "L2")]
    g = algorithm_grades(results.root, CT_STUDY)
    new = str((g["L1"] + 1) % 4)
    assert (l1["algorithm_grade"], l1["reviewed_grade"], l1["reviewer"], l1["review_action"]) == (
        str(g["L1"]), new, "Dr A", "override")
    assert l1["comment"] == XSS and l1["reviewed_at"].endswith("+00:00") and l1["final_grade"] == new
    assert (t12["algorithm_grade"], t12["reviewed_grade"], t12["review_action"]) == (str(g["T12"]),) * 2 + ("accept",)
    assert l2["reviewed_grade"] == "" and l2["final_grade"] == l2["algorithm_grade"]
    assert float(l1["rhlv_anterior"]) > 0.2 and float(l1["height_anterior_mm"]) > 0
    assert by[(MASK_STUDY, "L1")]["trabecular_hu"] == ""

    data = json.loads(summary.json.read_text(encoding="utf-8"))
    assert data["columns"] == EXPORT_COLUMNS and len(data["vertebrae"]) == 6
    assert all(list(r) == EXPORT_COLUMNS for r in data["vertebrae"])
    assert [a["action"] for a in data["audit"]] == ["override", "accept"]

    maps = sorted(p.name for p in (summary.out / CT_STUDY / "height_loss").iterdir())
    assert {"L1.png", "L1.nii.gz", "L1_fraction.nii.gz"} <= set(maps) and summary.maps == 18
    assert (summary.out / CT_STUDY / "height_loss" / "L1.png").read_bytes() == (
        results.root / CT_STUDY / "height_loss" / "L1.png").read_bytes()


def test_html_report(reviewed, tmp_path: Path) -> None:
    results, store = reviewed
    summary = export_results(ResultsFolder.open(results.root), store, tmp_path / "export")
    html = summary.reports[CT_STUDY].read_text(encoding="utf-8")
    assert "<table id='vertebrae'>" in html and all(n in html for n in ("T12", "L1", "L2"))
    assert "Dr A" in html and "<script>" not in html and "&lt;script&gt;" in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 3  # the mid-sagittal CT and the maps
    assert "@page { size: A4" in html and "@media print" in html
    assert "mid-sagittal" in html
    mask_only = summary.reports[MASK_STUDY].read_text(encoding="utf-8")
    assert "mid-sagittal" in mask_only  # drawn from the mask alone


def test_cli_export(results, tmp_path: Path, capsys) -> None:
    out = tmp_path / "exp"
    assert main(["export", str(results.root), "--out", str(out), "--db", results.db_url]) == 0
    assert "exported 6 vertebrae of 2 studies" in capsys.readouterr().out
    assert (out / "reviewed_vertebrae.csv").is_file() and (out / CT_STUDY / "report.html").is_file()


def test_cli_export_default_places(results, capsys) -> None:
    assert main(["export", str(results.root / CT_STUDY)]) == 0
    assert (results.root / CT_STUDY / "export" / "reviewed_vertebrae.csv").is_file()
    assert (results.root / CT_STUDY / "reviews.sqlite").is_file()


@pytest.mark.parametrize("command", ["export", "view"])
def test_cli_bad_folder(tmp_path: Path, capsys, command: str) -> None:
    assert main([command, str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("healthivert: error:")
    assert main([command, str(tmp_path)]) == 2  # a folder without studies
    assert "no study result folders" in capsys.readouterr().err


def test_view_command(tmp_path: Path) -> None:
    cmd = viewer_command(8600, "127.0.0.1")
    assert cmd[1:4] == ["-m", "streamlit", "run"] and Path(cmd[4]).is_file()
    assert Path(cmd[4]).parts[-3:] == ("healthivert", "viewer", "app.py")  # the package's script
    assert cmd[cmd.index("--server.headless") + 1] == "true" and cmd[cmd.index("--server.port") + 1] == "8600"
    env = viewer_env(tmp_path, "postgresql://u:secret@h/db")
    assert env[ENV_RESULTS] == str(tmp_path.resolve()) and env[ENV_DB].endswith("/db")
    assert "secret" not in " ".join(cmd)
    assert ENV_REVIEWER not in env and viewer_env(tmp_path, None, "Dr R")[ENV_REVIEWER] == "Dr R"
    assert viewer_url(8600) == "http://127.0.0.1:8600"
    with pytest.raises(ValueError, match="port"):
        viewer_command(0)


def _unanchor(root: Path, study_id: str) -> None:
    path = root / study_id / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    result["labels"] = {"source": "segmented from the CT", "anchor": "none: labels guessed", "anchored": False}
    path.write_text(json.dumps(result), encoding="utf-8")


def test_report_has_the_audit_trail_relabel_and_unanchored_warning(reviewed, tmp_path: Path) -> None:
    from healthivert.review.store import RelabelRequest

    results, store = reviewed
    _unanchor(results.root, CT_STUDY)
    store.relabel(RelabelRequest(CT_STUDY, (19, 20, 21), 1, "Dr C", "counted from the sacrum", base_shift=0))
    summary = export_results(ResultsFolder.open(results.root), store, tmp_path / "export")
    html = summary.reports[CT_STUDY].read_text(encoding="utf-8")
    assert "id='labels-unanchored'" in html and "labels unanchored" in html and "none: labels guessed" in html
    assert "shifted by +1 level" in html and "Dr C" in html
    assert "L2 (algorithm: L1)" in html  # the shifted name, the algorithm's beside it
    audit = html[html.index("<table class='audit'"):]
    assert audit.count("<tr>") == 4  # header, the override, the accept, the relabel
    assert "override" in audit and "accept" in audit and "relabel" in audit and "&lt;script&gt;" in audit
    assert "id='labels-unanchored'" not in summary.reports[MASK_STUDY].read_text(encoding="utf-8")

    with summary.csv.open(encoding="utf-8") as fh:
        rows = {(r["study_id"], r["algorithm_name"]): r for r in csv.DictReader(fh)}
    l1 = rows[(CT_STUDY, "L1")]
    assert (l1["label"], l1["name"], l1["label_shift"], l1["labels_anchored"]) == ("20", "L2", "1", "False")
    assert l1["labels_anchor"] == "none: labels guessed" and l1["reviewer"] == "Dr A"  # review kept by label
    assert rows[(MASK_STUDY, "L1")]["name"] == "L1" and rows[(MASK_STUDY, "L1")]["label_shift"] == "0"
    data = json.loads(summary.json.read_text(encoding="utf-8"))
    assert [(r["study_id"], r["shift"], r["reviewer"]) for r in data["relabels"]] == [(CT_STUDY, 1, "Dr C")]
    assert (summary.out / CT_STUDY / "height_loss" / "L1.nii.gz").is_file()  # files keep the algorithm's names


DICOM_STUDY = {"source": "DICOM", "files": 20, "patient_id": "", "patient_name": "DOE^JANE <b>",
               "study_date": "20221208",
               "study_description": "", "series_description": "CT Body 3.0", "modality": "CT",
               "manufacturer": "SIEMENS", "slice_thickness_mm": 3.0, "slice_spacing_mm": 2.0,
               "pixel_spacing_mm": [0.9765625, 0.9765625], "series_uid": "", "study_uid": None,
               "notes": ["series uid is blank in the file"]}


def test_study_metadata_as_in_the_file() -> None:
    from healthivert.review.studies import NOT_DICOM, study_metadata

    fields, notes = study_metadata(DICOM_STUDY)
    shown = dict(fields)
    assert shown["patient ID"] == "(blank in the file)" and shown["patient name"] == "DOE^JANE <b>"
    assert shown["study date"] == "2022-12-08" and shown["slice thickness (file)"] == "3 mm"
    assert shown["slice spacing (positions)"] == "2 mm" and shown["pixel spacing"] == "0.976562 x 0.976562 mm"
    assert shown["series UID"] == "(blank in the file)" and notes == ["series uid is blank in the file"]
    assert study_metadata(None) == ([("source", NOT_DICOM)], [])


def test_html_report_names_the_study(results, tmp_path: Path) -> None:
    path = results.root / CT_STUDY / "result.json"
    result = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**result, "study": DICOM_STUDY}), encoding="utf-8")
    store = ReviewStore(results.db_url)
    try:
        summary = export_results(ResultsFolder.open(results.root), store, tmp_path / "export")
    finally:
        store.dispose()
    html = summary.reports[CT_STUDY].read_text(encoding="utf-8")
    study = re.search(r"<div class='meta' id='study'>(.*?)</div>", html).group(1)
    assert "patient name: <b>DOE^JANE &lt;b&gt;</b>" in study and "study date: <b>2022-12-08</b>" in study
    assert "modality: <b>CT</b>" in study and "⚠ series uid is blank in the file" in study
    assert "not DICOM" in summary.reports[MASK_STUDY].read_text(encoding="utf-8")
