"""Path safety: nothing outside the results folder is reachable from a study id or file name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from healthivert.errors import InputError
from healthivert.review import ResultsFolder, Study, UnknownStudyError, UnsafePathError, resolve_inside
from tests.review.results_fixture import CT_STUDY, MASK_STUDY, minimal_result


@pytest.mark.parametrize("parts", [("..",), ("../etc/passwd",), ("a", "..", "..", "x"), ("/etc/passwd",),
                                   ("a", "/etc")])
def test_resolve_inside_refuses_escapes(tmp_path: Path, parts: tuple[str, ...]) -> None:
    (tmp_path / "a").mkdir()
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path / "a", *parts)


@pytest.mark.parametrize("parts", [(), ("b",), ("b", "c.png"), ("b", "..", "c")])
def test_resolve_inside_accepts_inside(tmp_path: Path, parts: tuple[str, ...]) -> None:
    assert resolve_inside(tmp_path, *parts).is_relative_to(tmp_path.resolve())


def test_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.txt").write_text("x")
    (tmp_path / "root" / "link").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path / "root", "link")


def test_discovers_studies(results) -> None:
    folders = ResultsFolder.open(results.root)
    assert sorted(folders.studies) == sorted([CT_STUDY, MASK_STUDY])
    assert not folders.single_study and folders.problems == []


def test_single_study_folder(results) -> None:
    folders = ResultsFolder.open(results.root / CT_STUDY)
    assert folders.single_study and list(folders.studies) == [CT_STUDY]


@pytest.mark.parametrize("study_id", ["../sub-small", "/etc/passwd", "", None, 3, "sub-small/..",
                                      "sub-small/../../x", "SUB-SMALL"])
def test_unknown_study_ids_are_refused(results, study_id) -> None:
    folders = ResultsFolder.open(results.root)
    with pytest.raises(UnknownStudyError):
        folders.study_dir(study_id)
    with pytest.raises(UnknownStudyError):
        Study.load(folders, study_id)


def test_study_folder_symlinked_from_outside_is_skipped(results, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "result.json").write_text(minimal_result("sub-outside"))
    (results.root / "sub-outside").symlink_to(outside, target_is_directory=True)
    folders = ResultsFolder.open(results.root)
    assert "sub-outside" not in folders.studies
    assert any("outside" in p for p in folders.problems)


def test_unsafe_and_duplicate_study_ids_are_skipped(results) -> None:
    for folder, sid in (("evil", "../../evil"), ("dup", CT_STUDY)):
        (results.root / folder).mkdir()
        (results.root / folder / "result.json").write_text(minimal_result(sid))
    (results.root / ".sub-x.part").mkdir()  # a result folder still being written
    (results.root / ".sub-x.part" / "result.json").write_text(json.dumps({"study_id": "sub-x"}))
    folders = ResultsFolder.open(results.root)
    assert sorted(folders.studies) == sorted([CT_STUDY, MASK_STUDY])
    assert folders.studies[CT_STUDY].name == CT_STUDY
    assert len(folders.problems) == 2


def test_files_symlinked_outside_are_not_read(results, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    png = results.root / CT_STUDY / "height_loss" / "L1.png"
    png.unlink()
    png.symlink_to(secret)
    study = Study.load(ResultsFolder.open(results.root), CT_STUDY)
    assert study.loss_map("L1", "png") is None
    assert study.loss_map("T12", "png") is not None


@pytest.mark.parametrize("name", ["../L1", "/etc/passwd", "L1/../../x", "", ".."])
def test_crafted_vertebra_names_are_refused(results, name: str) -> None:
    study = Study.load(ResultsFolder.open(results.root), CT_STUDY)
    assert study.loss_map(name) is None
    assert study.crop(name, "original") is None
    assert study.crop("L1", "../../x") is None


def test_recorded_inputs_are_readable(results) -> None:
    study = Study.load(ResultsFolder.open(results.root), CT_STUDY)
    assert study.input_path("ct") is not None and study.input_path("mask") is not None
    mask_only = Study.load(ResultsFolder.open(results.root), MASK_STUDY)
    assert mask_only.input_path("ct") is None


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        ResultsFolder.open(tmp_path / "missing")
    assert os.path.exists(tmp_path)


def test_a_batch_output_folder_lists_its_studies(tmp_path):
    """`healthivert view DIR` on a batch's DIR finds DIR/studies/<id>/ as well."""
    for sid in ("sub-a", "sub-b"):
        folder = tmp_path / "studies" / sid
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(minimal_result(sid))
    (tmp_path / "studies" / ".sub-c.x.part").mkdir()  # a study still being written
    (tmp_path / "cohort.csv").write_text("study_id\n")
    found = ResultsFolder.open(tmp_path)
    assert sorted(found.studies) == ["sub-a", "sub-b"]
    assert found.study_dir("sub-a") == (tmp_path / "studies" / "sub-a").resolve()


@pytest.mark.parametrize(("content", "reason"), [
    (b"{", "not valid JSON"),
    (b"\xff\xfe{", "not valid JSON"),
    (b'{"study_id": "sub-x"}', "'inputs' is a required property"),
    (b"[]", "not a JSON object"),
])
def test_results_breaking_the_contract_are_listed_as_unreadable(tmp_path: Path, content: bytes, reason: str) -> None:
    (tmp_path / "sub-ok").mkdir()
    (tmp_path / "sub-ok" / "result.json").write_text(minimal_result("sub-ok"))
    (tmp_path / "sub-x").mkdir()
    (tmp_path / "sub-x" / "result.json").write_bytes(content)
    found = ResultsFolder.open(tmp_path)
    assert list(found.studies) == ["sub-ok"]
    assert len(found.problems) == 1 and found.problems[0].startswith("sub-x: unreadable result.json: ")
    assert reason in found.problems[0]


def test_a_result_is_checked_once_per_version_of_its_file(tmp_path: Path) -> None:
    """The viewer reruns on every click: an unchanged result.json is not parsed again, a
    rewritten one is, and one that broke the contract since is refused, not served stale."""
    from healthivert.report.contract import ResultContractError

    study = tmp_path / "sub-a"
    study.mkdir()
    file = study / "result.json"

    def write(change: dict, step: int) -> None:
        file.write_text(json.dumps({**json.loads(minimal_result("sub-a")), **change}))
        os.utime(file, ns=(file.stat().st_mtime_ns + step * 10**9,) * 2)  # a later version

    write({}, 0)
    folders = ResultsFolder.open(tmp_path)
    first = Study.load(folders, "sub-a").result
    assert Study.load(folders, "sub-a").result is first  # same version: the checked copy
    write({"software_version": "9.9"}, 1)
    assert Study.load(folders, "sub-a").result["software_version"] == "9.9"
    write({"vertebrae": [{"label": 20, "name": "L1", "genant_grade": 7, "status": "graded"}]}, 2)
    with pytest.raises(ResultContractError, match=r"vertebrae\[0\]"):
        Study.load(folders, "sub-a")
