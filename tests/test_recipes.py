"""Every shipped training recipe in pipelines/ reads through its trainer's loader (field names,
types and checks), so a recipe the README or a model card points to never fails on its keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthivert.training.config import load_grader_config
from healthivert.training.segmenter import load_segmenter_config
from healthivert.training.synthesizer import load_synthesizer_config

PIPELINES = Path(__file__).resolve().parents[1] / "pipelines"
LOADERS = {"grader": load_grader_config, "segmenter": load_segmenter_config, "synthesizer": load_synthesizer_config}


@pytest.mark.parametrize("recipe", sorted(p.name for p in PIPELINES.glob("*.yaml")))
def test_every_recipe_loads(recipe):
    kind = recipe.split("_")[0].removesuffix(".yaml")
    cfg = LOADERS[kind](PIPELINES / recipe)  # unknown keys or bad values raise
    assert type(cfg).__name__.lower().startswith(kind)


def test_the_proportions_recipe_draws_proportions_and_writes_a_candidate_not_the_shipped_file():
    cfg = load_synthesizer_config(PIPELINES / "synthesizer_proportions.yaml")
    assert cfg.vary_proportions and cfg.output.startswith("build/")
