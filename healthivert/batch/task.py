"""The task a Dask worker runs for one study, and the worker-side setup it needs.

Runs in worker processes; keep imports light at module level so a restarted worker is
ready quickly (the pipeline, with torch, is imported on the first study).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from healthivert.batch.spec import StudySpec
from healthivert.batch.tables import read_vertebra_rows
from healthivert.errors import InputError

THREAD_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS")
MAX_REASON_CHARS = 500

# Test-only fault injection: the worker process dies (os._exit, as when killed or out of
# memory) in the middle of writing CRASH_STUDY's result folder, on its first CRASH_TIMES
# attempts; attempts are counted as files in CRASH_DIR. Unset in normal runs.
CRASH_STUDY_ENV = "HEALTHIVERT_BATCH_CRASH_STUDY"
CRASH_TIMES_ENV = "HEALTHIVERT_BATCH_CRASH_TIMES"
CRASH_DIR_ENV = "HEALTHIVERT_BATCH_CRASH_DIR"
CRASH_EXIT_CODE = 70


@dataclass(frozen=True)
class StudyOutcome:
    """What became of one study: ``status`` is "done" or "failed".

    ``rows`` are the study's vertebrae.csv rows (done); ``reason`` is one line and ``detail``
    the traceback (failed). ``peak_rss_mb`` is the worker process's peak resident memory.
    """

    study_id: str
    status: str
    reason: str = ""
    detail: str = ""
    rows: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    worker_pid: int = 0


_threads_limited = False


def limit_threads() -> None:
    """One compute thread per worker process: BLAS/OpenMP, torch and ITK (idempotent).

    Worker processes run one study each at a time; several math libraries each starting one
    thread per core would make them fight over the cores.
    """
    global _threads_limited
    if _threads_limited:
        return
    for name in THREAD_ENV_VARS:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)
    import SimpleITK as sitk

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    # PyTorch (the GAN, the segmenter) is imported only when a study needs it, and then reads
    # OMP_NUM_THREADS (set above); set it here only if it is already loaded, so a prior-only
    # worker does not pay its import
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # already set, or parallel work already ran in this process
            pass
    _threads_limited = True


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM`` of /proc/self/status, the high-water mark of this process's own memory
    (``ru_maxrss`` would not do: it keeps the parent's resident size from before the worker
    was spawned). Elsewhere: ``ru_maxrss``, or the current RSS where that is missing.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def one_line_reason(exc: BaseException) -> str:
    """A failure's reason on one line: an InputError's message, else "Type: message"."""
    text = " ".join(str(exc).split())
    if not isinstance(exc, InputError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 3] + "..."


def _maybe_crash(study_id: str, out_dir: Path) -> None:
    if os.environ.get(CRASH_STUDY_ENV) != study_id or not os.environ.get(CRASH_DIR_ENV):
        return
    counter = Path(os.environ[CRASH_DIR_ENV])
    counter.mkdir(parents=True, exist_ok=True)
    attempt = len(list(counter.glob("attempt-*"))) + 1
    (counter / f"attempt-{attempt}").touch()
    if attempt > int(os.environ.get(CRASH_TIMES_ENV, "1")):
        return
    from healthivert.io.atomic import atomic_directory

    with atomic_directory(out_dir) as tmp:  # die half-way through writing the result folder
        (tmp / "result.json").write_text("{", encoding="utf-8")
        os._exit(CRASH_EXIT_CODE)


def process_study(spec: StudySpec, studies_dir: str | Path, options: dict) -> StudyOutcome:
    """Run one study into ``studies_dir/<study_id>/``; never raises for a bad study.

    Args:
        spec: the study.
        studies_dir: the batch's ``studies/`` folder (shared by client and workers).
        options: :class:`healthivert.pipeline.RunOptions` fields, as a dict.

    Returns:
        "done" with the vertebra rows, or "failed" with a one-line reason. A study whose
        result folder already exists (a retry after the worker died once it was written) is
        "done" without being recomputed.
    """
    t0 = time.perf_counter()
    out_dir = Path(studies_dir) / spec.study_id
    _maybe_crash(spec.study_id, out_dir)
    limit_threads()
    try:
        if not (out_dir / "result.json").is_file():
            from healthivert.pipeline import RunOptions, run_study

            run_study(out_dir, mask_path=spec.mask, ct_path=spec.ct, centroids_path=spec.centroids,
                      options=RunOptions(**options), study_id=spec.study_id)
        rows = read_vertebra_rows(out_dir / "vertebrae.csv")
    except Exception as exc:  # contained: recorded in failed.csv, the other studies go on
        return StudyOutcome(spec.study_id, "failed", reason=one_line_reason(exc), detail=traceback.format_exc(),
                            seconds=time.perf_counter() - t0, peak_rss_mb=peak_rss_mb(), worker_pid=os.getpid())
    return StudyOutcome(spec.study_id, "done", rows=rows, seconds=time.perf_counter() - t0,
                        peak_rss_mb=peak_rss_mb(), worker_pid=os.getpid())
