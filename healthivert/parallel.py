"""Worker pools for CPU-bound per-study jobs (phantom building, benchmark cohorts)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context


def single_threaded() -> None:
    """A pool worker uses one core: the pool provides the parallelism."""
    import SimpleITK as sitk
    import torch

    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)


def study_pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` single-threaded worker processes, spawned (never forked: a forked PyTorch or
    CUDA state is not safe to use in the child)."""
    return ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=get_context("spawn"),
                               initializer=single_threaded)
