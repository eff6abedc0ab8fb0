"""Run a cohort: one task per study on Dask, results collected as they finish.

Resumable: a study is done when ``DIR/studies/<id>/result.json`` exists; a rerun skips done
studies and redoes the rest (failed ones included). A study that fails is recorded in
``failed.csv`` and the others go on; a worker that dies is replaced and its study retried.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from healthivert.batch.cluster import batch_client
from healthivert.batch.layout import BatchLayout, exclusive, remove_stale_parts
from healthivert.batch.spec import StudySpec, check_unique
from healthivert.batch.tables import CohortTable, FailedTable, read_vertebra_rows
from healthivert.batch.task import StudyOutcome, one_line_reason, process_study

if TYPE_CHECKING:
    from healthivert.pipeline import RunOptions

logger = logging.getLogger(__name__)
TASK_GROUP = "healthivert-study"


@dataclass(frozen=True)
class BatchPlan:
    """Which studies a batch would run (``todo``) and which it skips as already done."""

    todo: list[StudySpec]
    done: list[StudySpec]


@dataclass(frozen=True)
class BatchProgress:
    """Where a running batch stands; passed to the progress callback after every study.

    ``done``, ``failed`` count this run's studies, ``skipped`` those done before it;
    ``eta_s`` is None until a study has finished.
    """

    total: int
    done: int
    failed: int
    skipped: int
    elapsed_s: float
    eta_s: float | None = None
    study_id: str | None = None
    status: str | None = None

    @property
    def finished(self) -> int:
        return self.done + self.failed + self.skipped


@dataclass(frozen=True)
class BatchSummary:
    """The outcome of a batch run.

    ``peak_rss_mb`` maps each worker process id to its peak resident memory (MiB);
    ``study_seconds`` each processed study to its run time on the worker; ``uncertain_labels``
    lists the done studies whose vertebra labels rest on no anchor (or on anchors that disagree).
    """

    out: Path
    total: int
    done: int
    skipped: int
    failed: int
    failed_ids: list[str]
    elapsed_s: float
    peak_rss_mb: dict[int, float] = field(default_factory=dict)
    study_seconds: dict[str, float] = field(default_factory=dict)
    uncertain_labels: list[str] = field(default_factory=list)  # done studies whose labels are a guess

    @property
    def ok(self) -> bool:
        return self.failed == 0


BatchCallback = Callable[[BatchProgress], None]


def plan_batch(specs: Sequence[StudySpec], out: str | Path) -> BatchPlan:
    """Split ``specs`` into those to run and those already done in ``out``."""
    layout = BatchLayout(Path(out))
    done = [s for s in specs if layout.is_done(s.study_id)]
    todo = [s for s in specs if not layout.is_done(s.study_id)]
    return BatchPlan(todo, done)


def _check_options(options: RunOptions) -> None:
    """A bad synthesizer or grader name (or missing grader weights) fails before any work."""
    from healthivert.pipeline import grader_for
    from healthivert.synthesis import get_synthesizer

    get_synthesizer(options.synthesizer)
    grader_for(options)


@contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Log this package (INFO) and Dask (WARNING: worker deaths, restarts) to ``path``."""
    import logging.handlers

    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    # Dask's LocalCluster(silence_logs=...) lowers every StreamHandler on "distributed" to
    # ERROR, FileHandlers included; a MemoryHandler that forwards each record is left alone.
    dask_handler = logging.handlers.MemoryHandler(capacity=1, flushLevel=logging.DEBUG, target=handler)
    dask_handler.setLevel(logging.WARNING)
    ours, dask_logger = logging.getLogger("healthivert.batch"), logging.getLogger("distributed")
    old_level = ours.level
    ours.setLevel(logging.INFO)
    ours.addHandler(handler)
    dask_logger.addHandler(dask_handler)
    try:
        yield
    finally:
        ours.removeHandler(handler)
        dask_logger.removeHandler(dask_handler)
        ours.setLevel(old_level)
        dask_handler.close()
        handler.close()


def _task_key(spec: StudySpec, layout: BatchLayout) -> tuple[str, str]:
    # One task group ("healthivert-study") on the dashboard; the study id made unique per
    # output folder, so two batches sharing a scheduler never share a task.
    return TASK_GROUP, f"{spec.study_id}@{hashlib.sha1(str(layout.root).encode()).hexdigest()[:8]}"


def _run_tasks(client, todo: Sequence[StudySpec], layout: BatchLayout, options: RunOptions,
               retries: int) -> Iterator[tuple[StudySpec, StudyOutcome]]:
    """Yield each study's outcome as it finishes, keeping one task per worker thread in flight.

    Handing the scheduler every study at once would queue several on each worker, and when a
    worker dies, every study queued there counts that death against its retries; with one
    task per thread only the study that was running does. The thread count is re-read as
    studies finish, so workers added to a cluster are used.
    """
    from distributed import as_completed

    waiting = list(todo)
    running: dict = {}
    finished = as_completed()

    def top_up() -> None:
        slots = max(1, sum(client.nthreads().values()))
        while waiting and len(running) < slots:
            spec = waiting.pop(0)
            future = client.submit(process_study, spec, str(layout.studies), asdict(options),
                                   key=_task_key(spec, layout), pure=False, retries=retries)
            running[future] = spec
            finished.add(future)

    top_up()
    for future in finished:
        spec = running.pop(future)
        outcome = _outcome(future, spec.study_id)
        future.release()
        top_up()
        yield spec, outcome


def run_batch(
    specs: Sequence[StudySpec], out: str | Path, *, workers: int = 2, scheduler: str | None = None,
    options: RunOptions | None = None, progress: BatchCallback | None = None, retries: int = 2,
) -> BatchSummary:
    """Process every study of ``specs`` not yet done in ``out``, on Dask.

    Args:
        specs: the studies (see :func:`healthivert.batch.discover_studies`).
        out: output folder: ``studies/<id>/``, ``cohort.csv``, ``failed.csv``, ``batch.log``.
        workers: worker processes of the local cluster (one thread each).
        scheduler: address of an existing Dask scheduler instead of a local cluster.
        options: :class:`healthivert.pipeline.RunOptions` (default: its defaults).
        progress: called with a :class:`BatchProgress` at the start and after every study.
        retries: how often a study is retried when its worker dies (killed, out of memory).

    Returns:
        The counts; ``failed`` studies are listed in ``failed.csv`` with a one-line reason.

    Raises:
        ValueError: bad ``workers``/``retries``, duplicate study ids, or a bad grader or
            synthesizer name (InputError when the grader's weights are missing).
        InputError: ``scheduler`` cannot be reached, or another batch is writing into ``out``.
    """
    from healthivert.pipeline import RunOptions

    options = options or RunOptions()
    if workers < 1:
        raise ValueError(f"workers must be at least 1; got {workers}")
    if retries < 0:
        raise ValueError(f"retries must be at least 0; got {retries}")
    check_unique(list(specs))
    _check_options(options)
    t0 = time.perf_counter()
    layout = BatchLayout(Path(out).absolute())
    layout.studies.mkdir(parents=True, exist_ok=True)
    with exclusive(layout), _log_to(layout.log):
        return _run(specs, layout, workers, scheduler, options, progress, retries, t0)


class _Ledger:
    """The run's bookkeeping: the two tables on disk, counts, and per-worker numbers."""

    def __init__(self, layout: BatchLayout) -> None:
        self.cohort, self.failed = CohortTable(layout.cohort_csv), FailedTable(layout.failed_csv)
        for study_id in layout.done_studies():  # done before this run (also by other INPUTs)
            self.cohort.add(study_id, read_vertebra_rows(layout.study(study_id) / "vertebrae.csv"))
            self.failed.discard(study_id)
        self.cohort.write()
        self.failed.write()
        self.done = 0
        self.failed_ids: list[str] = []
        self.peaks: dict[int, float] = {}
        self.seconds: dict[str, float] = {}

    def record(self, spec: StudySpec, outcome: StudyOutcome) -> None:
        if outcome.worker_pid:
            self.peaks[outcome.worker_pid] = max(self.peaks.get(outcome.worker_pid, 0.0), outcome.peak_rss_mb)
            self.seconds[spec.study_id] = outcome.seconds
        if outcome.status == "done":
            self.done += 1
            self.cohort.add(spec.study_id, outcome.rows)
            self.cohort.write()
            if self.failed.discard(spec.study_id):
                self.failed.write()
            logger.info("done %s in %.1f s (%d vertebrae)", spec.study_id, outcome.seconds, len(outcome.rows))
            return
        self.failed_ids.append(spec.study_id)
        self.failed.record(spec, outcome.reason)
        self.failed.write()
        logger.warning("failed %s: %s [%s]", spec.study_id, outcome.reason, spec.describe())
        if outcome.detail:
            logger.info("traceback of %s:\n%s", spec.study_id, outcome.detail.rstrip())


def _run(specs, layout: BatchLayout, workers, scheduler, options, progress, retries, t0) -> BatchSummary:
    removed = remove_stale_parts(layout)
    if removed:
        logger.info("removed %d unfinished write(s) of an earlier run: %s", len(removed),
                    ", ".join(p.name for p in removed))
    plan = plan_batch(specs, layout.root)
    logger.info("batch of %d studies into %s: %d to run, %d already done; options %s", len(specs), layout.root,
                len(plan.todo), len(plan.done), asdict(options))
    ledger = _Ledger(layout)

    def report(study_id: str | None = None, status: str | None = None) -> None:
        if progress is None:
            return
        elapsed = time.perf_counter() - t0
        ran = ledger.done + len(ledger.failed_ids)
        eta = elapsed / ran * (len(plan.todo) - ran) if ran else None
        progress(BatchProgress(len(specs), ledger.done, len(ledger.failed_ids), len(plan.done), elapsed, eta,
                               study_id, status))

    report()
    if plan.todo:
        with batch_client(workers, scheduler, allowed_failures=retries) as client:
            for spec, outcome in _run_tasks(client, plan.todo, layout, options, retries):
                ledger.record(spec, outcome)
                report(spec.study_id, outcome.status)
        remove_stale_parts(layout)  # a worker that died mid-write leaves its temporary folder
    summary = BatchSummary(layout.root, len(specs), ledger.done, len(plan.done), len(ledger.failed_ids),
                           sorted(ledger.failed_ids), time.perf_counter() - t0, ledger.peaks, ledger.seconds,
                           ledger.cohort.uncertain_labels())
    logger.info("finished in %.1f s: %d done, %d skipped (done before), %d failed", summary.elapsed_s,
                summary.done, summary.skipped, summary.failed)
    return summary


def _outcome(future, study_id: str) -> StudyOutcome:
    """The task's outcome, or a failure when the task itself could not finish."""
    from distributed import KilledWorker

    try:
        return future.result()
    except KilledWorker as exc:
        return StudyOutcome(study_id, "failed", reason=f"the worker running it died {exc.allowed_failures + 1} times "
                            "(killed, or out of memory)")
    except Exception as exc:  # the task could not run (scheduler lost, unpicklable input, ...)
        return StudyOutcome(study_id, "failed", reason=f"not run: {one_line_reason(exc)}")
