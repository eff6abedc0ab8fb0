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



def test_the_pipeline_loads_pytorch_only_for_the_gan():
    """A prior-only run (and each batch worker) does not import PyTorch and MONAI (seconds per
    process); asking for the GAN does."""
    import subprocess
    import sys

    code = ("import sys, healthivert.pipeline, healthivert.batch.task as t; t.limit_threads(); "
            "print('torch' in sys.modules, 'monai' in sys.modules); "
            "from healthivert.synthesis import get_synthesizer; get_synthesizer('gan'); "
            "import torch; print('torch' in sys.modules, torch.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "1"], out
