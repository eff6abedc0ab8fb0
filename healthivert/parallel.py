"""Worker pools for CPU-bound per-study jobs (phantom building, benchmark cohorts)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context


def single_threaded() -> None:
    """A pool worker uses one core: the pool provides the parallelism. PyTorch, imported later
    by the work that needs it, reads ``OMP_NUM_THREADS``; it is set only if already loaded."""
    import os
    import sys

    import SimpleITK as sitk

    os.environ["OMP_NUM_THREADS"] = "1"
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def study_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` single-threaded worker processes, spawned (never forked: a forked PyTorch or
    CUDA state is not safe to use in the child)."""
    return ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=get_context("spawn"),
                               initializer=single_threaded)


def map_in_order(fn: Callable, items: list[tuple], jobs: int = 1,
                 progress: Callable[[int, int, str], None] | None = None, what: str = "studies") -> list:
    """``fn(*item)`` for every item, results in the items' order: in this process for ``jobs``
    <= 1, otherwise over ``study_pool(jobs)`` (``fn`` must then be importable by name).
    ``progress(done, total, what)`` after each."""
    n = len(items)
    if jobs <= 1:
        out = []
        for i, item in enumerate(items):
            out.append(fn(*item))
            if progress:
                progress(i + 1, n, what)
        return out
    with study_pool(jobs) as pool:
        futures = [pool.submit(fn, *item) for item in items]
        for done, _ in enumerate(as_completed(futures)):
            if progress:
                progress(done + 1, n, what)
        return [f.result() for f in futures]
