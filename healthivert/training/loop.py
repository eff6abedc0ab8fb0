"""Pieces both trainers' loops share: seeded draws for a data loader, and the time limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


class SeededDraws(Dataset):
    """A dataset of endless random draws, item ``i`` from its own generator (``seed``, ``i``):
    the same sequence whatever the number of loader workers, and a resumed run draws on."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def __len__(self) -> int:
        return 2**62  # endless: the loader's sampler says which items are drawn

    def rng(self, i: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, i])


def batches(draws: SeededDraws, batch: int, workers: int, step: int, steps: int, device: torch.device,
            collate_fn: Callable | None = None) -> Iterator:
    """Batches ``step`` .. ``steps - 1`` of ``draws`` (batch k holds items k*batch ..)."""
    return iter(DataLoader(draws, batch_size=batch, num_workers=workers, sampler=range(step * batch, steps * batch),
                           collate_fn=collate_fn, pin_memory=device.type == "cuda"))


def out_of_time(started: float, limit_min: float) -> bool:
    """Whether a run begun at ``started`` (``time.time()``) is past ``limit_min`` (0: no limit)."""
    return bool(limit_min) and time.time() - started > 60 * limit_min
