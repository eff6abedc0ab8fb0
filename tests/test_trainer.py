"""The shared training loop (``healthivert.training.trainer``) on a tiny fake trainer: a linear
model fitted to seeded draws. Resuming from a checkpoint ends where an uninterrupted run does;
the time limit stops with a checkpoint and weights; validation and checkpoints come every
``eval_every`` / ``checkpoint_every`` steps and at the last."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch

from healthivert.errors import InputError
from healthivert.training.config import TrainRecipe, load_train_recipe
from healthivert.training.trainer import SeededDraws, Trainer
from healthivert.weights import read_weights, write_weights


@dataclass(frozen=True)
class LineRecipe(TrainRecipe):
    step_seconds: float = 0.0
    steps: int = 6
    batch: int = 4
    lr: float = 0.05
    eval_every: int = 2
    checkpoint_every: int = 1


class Pairs(SeededDraws):
    def __getitem__(self, i: int):
        x = self.rng(i).normal(size=3).astype(np.float32)
        return torch.from_numpy(x), torch.tensor([x @ np.float32([1, -2, 3])])


class LineTrainer(Trainer):
    cfg: LineRecipe

    def data(self) -> None:
        self.evaluated, self.checkpoints, self.started_from = [], [], None
        self.val = torch.eye(3)

    def build(self) -> None:
        self.model = torch.nn.Linear(3, 1)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.cfg.lr)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "opt": self.opt.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])

    def start_from(self, path: str) -> None:
        self.model.load_state_dict(read_weights(path, "line", "nothing")[0])
        self.started_from = path

    def draws(self) -> Pairs:
        return Pairs(self.cfg.seed)

    def train_step(self, batch, step: int) -> dict[str, float]:
        x, y = batch
        self.opt.zero_grad()
        loss = torch.nn.functional.mse_loss(self.model(x), y)
        loss.backward()
        self.opt.step()
        time.sleep(self.cfg.step_seconds)
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        self.evaluated.append(self.step)
        with torch.no_grad():
            return {"val": float(self.model(self.val).sum())}

    def checkpoint(self, path) -> None:
        self.checkpoints.append(self.step)
        super().checkpoint(path)

    def card(self, final: dict) -> dict:
        return {"steps": self.step, "history": self.history}

    def save(self, card: dict) -> None:
        write_weights(self.cfg.output, self.model.state_dict(), {"config": {}, "card": card})


def recipe(tmp_path, name: str, **changes) -> LineRecipe:
    return LineRecipe(workdir=str(tmp_path / name), output=str(tmp_path / f"{name}.safetensors"), **changes)


def weights(cfg: LineRecipe) -> tuple[dict, dict]:
    state, meta = read_weights(cfg.output, "line", "nothing")
    return state, meta["card"]


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    whole = recipe(tmp_path, "whole")
    final = LineTrainer(whole).run()
    part = recipe(tmp_path, "part", steps=3)
    first = LineTrainer(part)
    first.run()
    assert first.checkpoints == [1, 2, 3] and weights(part)[1]["steps"] == 3
    resumed = LineTrainer(replace(part, steps=6))
    again = resumed.run()
    (a, card_a), (b, card_b) = weights(whole), weights(part)
    assert all(torch.equal(a[k], b[k]) for k in a) and card_a["steps"] == card_b["steps"] == 6
    assert resumed.evaluated == [4, 6] and [h["step"] for h in card_b["history"]] == [2, 3, 4, 6]
    timeless = [{k: v for k, v in h.items() if k != "seconds"} for h in (final, again)]
    assert timeless[0] == timeless[1]  # the loss over steps 5-6 and the validation alike


def test_the_time_limit_stops_the_run_with_a_checkpoint_and_weights(tmp_path, caplog):
    cfg = recipe(tmp_path, "limited", steps=50, eval_every=100, checkpoint_every=100, step_seconds=0.02,
                 time_limit_min=1e-4)
    trainer = LineTrainer(cfg)
    final = trainer.run()
    _, card = weights(cfg)
    assert 1 <= card["steps"] < 50 and final["step"] == card["steps"] == trainer.step
    assert trainer.evaluated == trainer.checkpoints == [trainer.step]  # validated and saved where it stopped
    assert "time limit" in caplog.text
    more = LineTrainer(replace(cfg, time_limit_min=0, step_seconds=0.0, steps=trainer.step + 2))
    assert more.run()["step"] == trainer.step + 2 and more.evaluated == [trainer.step + 2]


def test_validation_and_checkpoints_every_n_steps_and_at_the_last(tmp_path):
    seen = []
    trainer = LineTrainer(recipe(tmp_path, "every", steps=7, eval_every=3, checkpoint_every=2),
                          progress=lambda i, n, note: seen.append((i, n, note)))
    trainer.run()
    assert trainer.evaluated == [3, 6, 7] and trainer.checkpoints == [2, 4, 6, 7]
    assert [h["step"] for h in trainer.history] == [3, 6, 7] and all("loss" in h for h in trainer.history)
    assert [i for i, _, _ in seen] == list(range(1, 8)) and seen[0][1] == 7 and seen[0][2].startswith("loss ")


def test_init_weights_start_a_fresh_run_but_not_a_resumed_one(tmp_path):
    torch.manual_seed(3)
    start = write_weights(tmp_path / "start.safetensors", torch.nn.Linear(3, 1).state_dict(), {"config": {}})
    cfg = recipe(tmp_path, "tuned", steps=2, init_weights=str(start))
    first = LineTrainer(cfg)
    first.run()
    again = LineTrainer(replace(cfg, steps=3))
    again.run()
    assert first.started_from == str(start) and again.started_from is None and again.evaluated == [3]


def test_the_recipe_base_checks_the_shared_fields(tmp_path):
    for bad, match in (({"steps": 0}, "steps"), ({"eval_every": 0}, "eval_every"), ({"threads": -1}, "threads"),
                       ({"source": "verse"}, "verse_root"), ({"exclude_subjects": ("a",)}, "source must be verse")):
        with pytest.raises(ValueError, match=match):
            LineRecipe(**bad)
    path = tmp_path / "r.yaml"
    path.write_text("steps: 3\ntrain_splits: [train, val]\n")
    cfg = load_train_recipe(LineRecipe, path)
    assert cfg.steps == 3 and cfg.train_splits == ("train", "val") and cfg.batch == 4
    path.write_text("steps: 3\nstepz: 4\n")
    with pytest.raises(InputError, match=r"unknown keys \['stepz'\]"):
        load_train_recipe(LineRecipe, path)
