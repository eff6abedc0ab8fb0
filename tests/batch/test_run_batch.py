"""Cohort runs on a real local Dask cluster of worker processes (slow: each run starts one)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from healthivert.batch import BatchLayout, discover_studies, run_batch, stale_parts
from healthivert.batch import runner as runner_module
from healthivert.batch.task import CRASH_DIR_ENV, CRASH_STUDY_ENV, CRASH_TIMES_ENV
from healthivert.pipeline import RunOptions

RULE = RunOptions(grader="rule", write_crops=False)


def _rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _keys(rows) -> list[tuple[str, str]]:
    return [(r["study_id"], r["label"]) for r in rows]


def _expected_keys(layout: BatchLayout, study_ids) -> list[tuple[str, str]]:
    """Every vertebra of every given study, from the studies' own vertebrae.csv."""
    return [k for sid in sorted(study_ids) for k in _keys(_rows(layout.study(sid) / "vertebrae.csv"))]


def _assert_complete(layout: BatchLayout, study_ids) -> None:
    """Every study done, each vertebra exactly once in cohort.csv, nothing failed, no .part left."""
    assert layout.done_studies() == sorted(study_ids)
    keys = _keys(_rows(layout.cohort_csv))
    assert len(keys) == len(set(keys)) == 3 * len(study_ids)  # three vertebrae each, once each
    assert keys == _expected_keys(layout, study_ids)
    assert _rows(layout.failed_csv) == []
    assert stale_parts(layout) == []
    assert not [p for p in layout.studies.rglob("*") if ".part" in p.name]


@pytest.fixture(scope="module")
def completed(cohort, tmp_path_factory):
    """The cohort run once with two workers: (specs, layout, summary, progress events)."""
    specs = discover_studies(cohort)
    layout = BatchLayout(tmp_path_factory.mktemp("batch_out"))
    events = []
    summary = run_batch(specs, layout.root, workers=2, options=RULE, progress=events.append)
    return specs, layout, summary, events


@pytest.mark.slow
def test_cohort_completes(completed):
    specs, layout, summary, events = completed
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (4, 4, 0, 0)
    _assert_complete(layout, [s.study_id for s in specs])
    assert [e.finished for e in events] == [0, 1, 2, 3, 4]
    assert events[-1].eta_s == 0 and events[1].eta_s > 0
    assert len(summary.peak_rss_mb) == 2 and all(mb > 100 for mb in summary.peak_rss_mb.values())
    log = layout.log.read_text(encoding="utf-8")
    assert log.count("done sub-phantom") == 4 and "4 done, 0 skipped" in log


@pytest.mark.slow
def test_rerun_processes_nothing(completed, monkeypatch):
    specs, layout, _, _ = completed
    before = layout.cohort_csv.read_bytes()

    def no_cluster(*args, **kwargs):
        raise AssertionError("a rerun with every study done must not start a cluster")

    monkeypatch.setattr(runner_module, "batch_client", no_cluster)
    summary = run_batch(specs, layout.root, workers=2, options=RULE)
    assert (summary.done, summary.skipped, summary.failed) == (0, 4, 0)
    assert layout.cohort_csv.read_bytes() == before


@pytest.mark.slow
def test_corrupt_study_fails_alone_then_recovers(completed, cohort, tmp_path):
    """One worker, one truncated mask: that study lands in failed.csv with a one-line reason and
    the other completes with the same rows as the two-worker run; fixed, it is redone and leaves
    failed.csv. (The cohort's first two studies: one to fail, one to go on.)"""
    specs, reference, _, _ = completed
    specs, left_out = specs[:2], {s.study_id for s in specs[2:]}
    kept = {s.study_id for s in specs}
    tree = tmp_path / "tree"
    shutil.copytree(cohort, tree, ignore=lambda _, names: [n for n in names if n in left_out])
    bad = discover_studies(tree)[1]
    good_mask = bad.mask.read_bytes()
    bad.mask.write_bytes(good_mask[: len(good_mask) // 2])
    layout = BatchLayout(tmp_path / "out")

    summary = run_batch(discover_studies(tree), layout.root, workers=1, options=RULE)
    assert (summary.done, summary.failed, summary.failed_ids) == (1, 1, [bad.study_id])
    (failure,) = _rows(layout.failed_csv)
    assert failure["study_id"] == bad.study_id and failure["mask"] == str(bad.mask)
    assert "corrupt or truncated gzip file" in failure["reason"] and "\n" not in failure["reason"]
    assert not layout.study(bad.study_id).exists() and stale_parts(layout) == []
    others = [s.study_id for s in specs if s.study_id != bad.study_id]
    assert _rows(layout.cohort_csv) == [r for r in _rows(reference.cohort_csv) if r["study_id"] in others]

    bad.mask.write_bytes(good_mask)
    summary = run_batch(discover_studies(tree), layout.root, workers=1, options=RULE)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)
    _assert_complete(layout, [s.study_id for s in specs])
    # independent of the worker count
    assert _rows(layout.cohort_csv) == [r for r in _rows(reference.cohort_csv) if r["study_id"] in kept]


@pytest.mark.slow
def test_worker_killed_mid_study_loses_nothing(cohort, tmp_path, monkeypatch):
    """A worker process dies (os._exit) half-way through writing a study's result folder: the
    study is retried on a fresh worker, every study ends done exactly once, and no .part folder
    remains, neither that one nor one planted by an "earlier crashed run". (Two studies, one per
    worker.)"""
    specs = discover_studies(cohort)[:2]
    victim = specs[1].study_id
    monkeypatch.setenv(CRASH_STUDY_ENV, victim)
    monkeypatch.setenv(CRASH_DIR_ENV, str(tmp_path / "attempts"))
    monkeypatch.setenv(CRASH_TIMES_ENV, "1")
    layout = BatchLayout(tmp_path / "out")
    earlier = layout.studies / f".{specs[0].study_id}.k3j4h5.part"
    earlier.mkdir(parents=True)
    (earlier / "result.json").write_text("{", encoding="utf-8")

    summary = run_batch(specs, layout.root, workers=2, options=RULE)
    assert sorted(p.name for p in (tmp_path / "attempts").iterdir()) == ["attempt-1", "attempt-2"]
    assert (summary.done, summary.failed) == (2, 0)
    _assert_complete(layout, [s.study_id for s in specs])
    log = layout.log.read_text(encoding="utf-8")
    assert "removed 1 unfinished write" in log and "Restarting worker" in log


@pytest.mark.slow
def test_study_whose_worker_always_dies_is_failed(cohort, tmp_path, monkeypatch):
    """Past the allowed retries the study is given up (recorded once in failed.csv); the other goes on."""
    specs = discover_studies(cohort)[:2]
    victim = specs[0].study_id
    monkeypatch.setenv(CRASH_STUDY_ENV, victim)
    monkeypatch.setenv(CRASH_DIR_ENV, str(tmp_path / "attempts"))
    monkeypatch.setenv(CRASH_TIMES_ENV, "99")
    layout = BatchLayout(tmp_path / "out")

    summary = run_batch(specs, layout.root, workers=1, options=RULE, retries=1)
    assert len(list((tmp_path / "attempts").iterdir())) == 2  # the first try and one retry
    assert (summary.done, summary.failed, summary.failed_ids) == (1, 1, [victim])
    (failure,) = _rows(layout.failed_csv)
    assert failure["study_id"] == victim and "worker running it died 2 times" in failure["reason"]
    assert layout.done_studies() == [specs[1].study_id] and stale_parts(layout) == []
    assert _keys(_rows(layout.cohort_csv)) == _expected_keys(layout, [specs[1].study_id])


def test_bad_arguments_fail_before_any_work(cohort, tmp_path):
    specs = discover_studies(cohort)
    with pytest.raises(ValueError, match="workers must be at least 1; got 0"):
        run_batch(specs, tmp_path / "out", workers=0, options=RULE)
    with pytest.raises(ValueError, match="unknown grader 'nope'"):
        run_batch(specs, tmp_path / "out", options=RunOptions(grader="nope"))
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_existing_scheduler(cohort, tmp_path):
    """--scheduler: the same run on a cluster started elsewhere (here: by the test)."""
    from distributed import LocalCluster

    specs = discover_studies(cohort)[:1]
    layout = BatchLayout(tmp_path / "out")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        summary = run_batch(specs, layout.root, scheduler=cluster.scheduler_address, options=RULE)
    assert (summary.done, summary.failed) == (1, 0)
    _assert_complete(layout, [specs[0].study_id])
    # that scheduler kept its own setting (3); the log says so
    assert "allows 3 worker deaths per task (asked for 2)" in layout.log.read_text(encoding="utf-8")


def test_unreachable_scheduler_is_an_input_error():
    from healthivert.batch.cluster import batch_client
    from healthivert.errors import InputError

    with pytest.raises(InputError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        with batch_client(scheduler="tcp://127.0.0.1:9", connect_timeout_s=1):
            pass
