"""`healthivert batch` in-process: dry run, exit codes, a plain folder with a failing study."""

from __future__ import annotations

import csv
import shutil

import pytest

from healthivert.cli import main
from healthivert.io import read_verse_tree
from tests.helpers import assert_one_line_error


def test_dry_run_lists_what_would_run_and_what_is_done(cohort, tmp_path, capsys):
    out = tmp_path / "out"
    done = read_verse_tree(cohort)[1].subject
    (out / "studies" / done).mkdir(parents=True)
    (out / "studies" / done / "result.json").write_text("{}", encoding="utf-8")
    (out / "studies" / "unfinished").mkdir()  # no result.json: not done

    assert main(["batch", str(cohort), "--out", str(out), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:2] for ln in lines[:-1]] == [
        ["run", "sub-phantom0100"], ["run", "sub-phantom0102"], ["run", "sub-phantom0103"], ["skip", done]]
    assert lines[-1] == "dry run: 3 to run, 1 to skip (done) of 4 studies"
    assert sorted(p.name for p in out.iterdir()) == ["studies"]  # nothing written


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["batch", "{tmp}/missing", "--out", "{tmp}/out"], "missing: no such file or folder"),
        (["batch", "{tmp}", "--out", "{tmp}/out"], "no studies found"),
        (["batch", "{cohort}", "--out", "{tmp}/out", "--workers", "0"], "workers must be at least 1"),
        (["batch", "{cohort}", "--out", "{tmp}/out", "--grader", "nope"], "unknown grader 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(cohort, tmp_path, capsys, argv, fragment):
    rc = main([a.format(tmp=tmp_path, cohort=cohort) for a in argv])
    assert_one_line_error(rc, capsys.readouterr(), fragment)


@pytest.mark.slow
def test_plain_folder_with_a_failing_study_exits_1(cohort, tmp_path, capsys):
    studies = read_verse_tree(cohort)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(studies[0].mask, folder / "p0_seg-vert_msk.nii.gz")
    shutil.copy(studies[0].ct, folder / "p0_ct.nii.gz")
    shutil.copy(studies[0].centroids, folder / "p0_seg-subreg_ctd.json")
    truncated = studies[1].mask.read_bytes()[:2000]
    (folder / "p1_msk.nii.gz").write_bytes(truncated)
    out = tmp_path / "out"

    rc = main(["batch", str(folder), "--out", str(out), "--workers", "1", "--grader", "rule"])
    captured = capsys.readouterr()
    assert rc == 1, captured
    assert "2 studies: 1 done, 0 skipped (done before), 1 failed" in captured.out
    assert "failed (1, reasons in" in captured.out and "p1" in captured.out
    assert "batch [" in captured.err and "Traceback" not in captured.err
    with (out / "failed.csv").open(encoding="utf-8") as fh:
        (failure,) = list(csv.DictReader(fh))
    assert failure["study_id"] == "p1" and "p1_msk.nii.gz: corrupt or truncated gzip file" in failure["reason"]
    with (out / "cohort.csv").open(encoding="utf-8") as fh:
        assert {r["study_id"] for r in csv.DictReader(fh)} == {"p0"}
    assert (out / "studies" / "p0" / "result.json").is_file() and (out / "batch.log").is_file()
