"""The training loop, once: both network trainers (``segmenter.SegmenterTrainer``,
``synthesizer.SynthesizerTrainer``) are subclasses that say only what is theirs.

:meth:`Trainer.run` seeds (MONAI ``set_determinism``), picks the device and the torch threads,
writes the recipe to ``workdir/config.json``, reads the data, builds the model, resumes from
``workdir/checkpoint.pt`` or starts afresh (``init_weights``, or what the subclass does first),
then steps through seeded batches (:func:`batches`: batch k is the same whatever the workers,
and a resumed run draws on), validating every ``eval_every`` steps and checkpointing every
``checkpoint_every`` (and both at the last step, or when ``time_limit_min`` is past), and writes
the weights with their model card. The hooks a subclass implements:

- :meth:`data` reads or generates the cohorts; :meth:`build` the model and its optimisers;
- :meth:`state` / :meth:`load_state`: what a checkpoint holds beside the step and history;
- :meth:`start_from` (``init_weights``), and :meth:`start` where a fresh run does more first;
- :meth:`draws`: the seeded training samples (``collate``: how a batch of them is put together);
- :meth:`train_step`: one optimiser step on a batch, returning the terms to log;
- :meth:`evaluate`: validation metrics; :meth:`summary`: a history entry's running terms;
- :meth:`card` and :meth:`save`: the model card and the weights; :meth:`finish` what follows.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from monai.utils import set_determinism
from torch.utils.data import DataLoader, Dataset

from healthivert.io.atomic import atomic_write
from healthivert.training.config import TrainRecipe, select_device

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]


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


class Trainer:
    """One training run of a recipe (see the module's docstring for the hooks)."""

    #: how a loader puts a batch of samples together (None: torch's default, stacked tensors)
    collate: Callable | None = None

    def __init__(self, cfg: TrainRecipe, progress: Progress | None = None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.device = torch.device("cpu")
        self.step = 0
        self.history: list[dict] = []
        self.running: dict[str, list[float]] = {}
        self.started = time.time()

    # -- the hooks -------------------------------------------------------------------------

    def data(self) -> None:
        """Read or generate the training and validation data."""
        raise NotImplementedError

    def build(self) -> None:
        """The model and its optimisers, on ``self.device``."""
        raise NotImplementedError

    def state(self) -> dict:
        """The checkpoint's tensors and values (besides ``step`` and ``history``)."""
        raise NotImplementedError

    def load_state(self, state: dict) -> None:
        """Take up a checkpoint's :meth:`state`."""
        raise NotImplementedError

    def start_from(self, path: str) -> None:
        """Load the recipe's ``init_weights`` (refused if its network differs)."""
        raise NotImplementedError

    def start(self) -> None:
        """A run with no checkpoint: from ``init_weights`` when the recipe gives them."""
        if self.cfg.init_weights:
            self.start_from(self.cfg.init_weights)

    def draws(self) -> SeededDraws:
        """The training samples, item i from its own seed."""
        raise NotImplementedError

    def train_step(self, batch, step: int) -> dict[str, float]:
        """One optimiser step on ``batch`` (``step`` steps were done before it); returns the
        terms to average into the history (e.g. the loss)."""
        raise NotImplementedError

    def evaluate(self) -> dict[str, float]:
        """Validation metrics of the model as it is now."""
        raise NotImplementedError

    def summary(self, running: dict[str, list[float]]) -> dict[str, float]:
        """A history entry's training terms: each term's mean since the last validation."""
        return {k: float(np.mean(v)) for k, v in running.items()}

    def note(self, terms: dict[str, float]) -> str:
        """The progress line after a step that gave ``terms``."""
        return ", ".join(f"{k} {v:.4f}" for k, v in terms.items())

    def card(self, final: dict) -> dict:
        """The model card of the weights (``final``: the last history entry, or {})."""
        raise NotImplementedError

    def save(self, card: dict) -> None:
        """Write the weights to ``cfg.output`` with ``card``."""
        raise NotImplementedError

    def finish(self, final: dict) -> dict:
        """After the weights are written; returns what the run returns."""
        return final

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> dict:
        """Train (or resume) and write the weights; returns the last validation entry."""
        cfg = self.cfg
        set_determinism(seed=cfg.seed)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = select_device(cfg.device)
        work = Path(cfg.workdir)
        work.mkdir(parents=True, exist_ok=True)
        (work / "config.json").write_text(json.dumps(asdict(cfg), indent=1, default=list))
        self.data()
        self.build()
        checkpoint = work / "checkpoint.pt"
        if checkpoint.is_file():
            self.resume(checkpoint)
        else:
            self.start()
        stopped = self.loop(batches(self.draws(), cfg.batch, cfg.workers, self.step, cfg.steps, self.device,
                                    collate_fn=self.collate), checkpoint)
        if stopped:
            log.warning("time limit of %g min reached at step %d of %d", cfg.time_limit_min, self.step, cfg.steps)
        final = self.history[-1] if self.history else {}
        self.save(self.card(final))
        return self.finish(final)

    def loop(self, batches: Iterator, checkpoint: Path) -> bool:
        """Steps up to ``cfg.steps``; whether the time limit stopped them."""
        cfg = self.cfg
        self.started, self.running = time.time(), {}
        while self.step < cfg.steps:
            terms = self.train_step(next(batches), self.step)
            self.step += 1
            for k, v in terms.items():
                self.running.setdefault(k, []).append(v)
            stop = out_of_time(self.started, cfg.time_limit_min)
            last = stop or self.step == cfg.steps
            if self.step % cfg.eval_every == 0 or last:
                self.record()
            if self.step % cfg.checkpoint_every == 0 or last:
                self.checkpoint(checkpoint)
            if self.progress:
                self.progress(self.step, cfg.steps, self.note(terms))
            if stop:
                return True
        return False

    def record(self) -> None:
        """Validate, and add the history entry (the running terms start again)."""
        metrics = self.evaluate()
        self.history.append({"step": self.step, **self.summary(self.running), **metrics,
                             "seconds": round(time.time() - self.started, 1)})
        log.info("step %d %s", self.step, self.history[-1])
        self.running = {}

    def checkpoint(self, path: Path) -> None:
        state = {**self.state(), "step": self.step, "history": json.dumps(self.history)}
        atomic_write(path, lambda tmp: torch.save(state, tmp))

    def resume(self, path: Path) -> None:
        state = torch.load(path, map_location=self.device, weights_only=True)  # our own file; tensors only
        self.step, self.history = int(state["step"]), json.loads(state["history"])
        self.load_state(state)
        log.info("resumed at step %d", self.step)
