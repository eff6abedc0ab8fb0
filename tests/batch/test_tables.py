"""The batch's bookkeeping without Dask: tables, stale .part cleanup, progress text, reasons."""

from __future__ import annotations

import csv

import pytest

from healthivert.batch import BatchLayout, CohortTable, FailedTable, StudySpec, remove_stale_parts, stale_parts
from healthivert.batch.progress import format_duration, format_progress
from healthivert.batch.runner import BatchProgress
from healthivert.batch.task import one_line_reason
from healthivert.errors import InputError
from healthivert.io.atomic import atomic_directory
from healthivert.report.contract import CSV_COLUMNS


def _read(path):
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_cohort_table_sorted_by_study_and_once_per_study(tmp_path):
    table = CohortTable(tmp_path / "cohort.csv")
    table.add("b", [{"study_id": "b", "label": "20"}])
    table.add("a", [{"study_id": "a", "label": "19"}, {"study_id": "a", "label": "20"}])
    table.add("b", [{"study_id": "b", "label": "21"}])  # added again: replaces, never duplicates
    table.write()
    rows = _read(tmp_path / "cohort.csv")
    assert list(rows[0]) == CSV_COLUMNS
    assert [(r["study_id"], r["label"]) for r in rows] == [("a", "19"), ("a", "20"), ("b", "21")]


def test_failed_table_round_trip_and_discard(tmp_path):
    path = tmp_path / "failed.csv"
    table = FailedTable(path)
    table.record(StudySpec("x", mask=tmp_path / "x.nii.gz"), "bad\nthing  here")
    table.record(StudySpec("a", ct=tmp_path / "a"), "no mask")
    table.write()
    again = FailedTable(path)
    assert len(again) == 2 and again.reason("x") == "bad thing here"
    assert [r["study_id"] for r in _read(path)] == ["a", "x"]
    assert _read(path)[1]["mask"] == str(tmp_path / "x.nii.gz")
    assert again.discard("x") and not again.discard("x")
    again.write()
    assert [r["study_id"] for r in _read(path)] == ["a"]


def test_stale_parts_are_found_and_removed(tmp_path):
    layout = BatchLayout(tmp_path)
    keep = layout.study("s1")
    keep.mkdir(parents=True)
    (keep / "result.json").write_text("{}")
    with pytest.raises(RuntimeError), atomic_directory(layout.study("s2")) as tmp:  # a crash mid-write...
        (tmp / "result.json").write_text("{")
        raise RuntimeError
    leftover = layout.studies / ".s3.abc123.part"  # ...that, unlike an exception, leaves its folder
    leftover.mkdir()
    (leftover / "result.json").write_text("{")
    part_csv = tmp_path / ".cohort.csv.xyz.part.csv"
    part_csv.write_text("")
    (tmp_path / ".notes").write_text("not ours")
    assert stale_parts(layout) == sorted([leftover, part_csv])
    assert layout.done_studies() == ["s1"] and not layout.is_done("s3")
    remove_stale_parts(layout)
    assert stale_parts(layout) == [] and (tmp_path / ".notes").exists() and keep.exists()


@pytest.mark.parametrize(
    "exc, reason",
    [
        (InputError("x.nii.gz: corrupt\n or truncated"), "x.nii.gz: corrupt or truncated"),
        (RuntimeError("boom\nline two"), "RuntimeError: boom line two"),
        (MemoryError(), "MemoryError"),
    ],
)
def test_one_line_reason(exc, reason):
    assert one_line_reason(exc) == reason


@pytest.mark.parametrize("seconds, text", [(None, "?"), (5.4, "5s"), (65, "1m05s"), (3720, "1h02m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_progress():
    line = format_progress(BatchProgress(total=10, done=3, failed=1, skipped=2, elapsed_s=120.0, eta_s=60.0,
                                         study_id="s7", status="failed"))
    assert line.startswith("batch [##############..........] 6/10")
    assert "done 3  skipped 2  failed 1  2.0/min  elapsed 2m00s  ETA 1m00s  (s7 failed)" in line


def test_one_batch_at_a_time_per_output_folder(tmp_path):
    from healthivert.batch.layout import exclusive

    layout = BatchLayout(tmp_path / "out")
    with exclusive(layout):
        with pytest.raises(InputError, match="another batch is writing into this folder"):
            with exclusive(layout):
                pass
    with exclusive(layout):  # released
        pass


def test_cohort_table_and_summary_name_the_studies_with_uncertain_labels(tmp_path):
    from pathlib import Path

    from healthivert.batch.progress import format_summary
    from healthivert.batch.runner import BatchSummary
    from healthivert.labels import ANCHOR_CONFLICT, ANCHOR_NONE, ANCHOR_SACRUM

    table = CohortTable(tmp_path / "cohort.csv")
    for sid, anchor in (("a", ANCHOR_SACRUM), ("b", ANCHOR_NONE), ("c", "given mask"), ("d", ANCHOR_CONFLICT)):
        table.add(sid, [{"study_id": sid, "label": "20", "labels_anchor": anchor}])
    assert table.uncertain_labels() == ["b", "d"]
    table.write()
    assert [r["labels_anchor"] for r in _read(tmp_path / "cohort.csv")][1] == ANCHOR_NONE
    text = format_summary(BatchSummary(Path("out"), 4, 4, 0, 0, [], 1.0, uncertain_labels=["b", "d"]))
    assert "labels uncertain (2" in text and "b, d" in text
    assert "labels uncertain" not in format_summary(BatchSummary(Path("out"), 1, 1, 0, 0, [], 1.0))
