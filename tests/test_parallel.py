"""The study worker pool: spawned processes that each use one core."""

import SimpleITK as sitk
import torch

from healthivert.parallel import study_pool


def _threads(_: int) -> tuple[int, int, str]:
    import multiprocessing

    return (torch.get_num_threads(), sitk.ProcessObject.GetGlobalDefaultNumberOfThreads(),
            multiprocessing.get_start_method())


def test_study_pool_workers_are_spawned_and_single_threaded():
    with study_pool(2) as pool:
        assert list(pool.map(_threads, range(2))) == [(1, 1, "spawn")] * 2

