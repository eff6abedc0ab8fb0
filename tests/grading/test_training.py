"""Grader training recipes (healthivert/training/): the YAML checks and a small phantom run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from healthivert.errors import InputError
from healthivert.grading import FEATURES
from healthivert.grading.svm import TrainReport, load_model
from healthivert.training.config import GraderConfig, PhantomCohort, load_grader_config
from healthivert.training.grader import phantom_features, train_grader
from tests.tiny_gan import save_tiny_gan

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _recipe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grader.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_load_grader_config_reads_a_recipe(tmp_path):
    cfg = load_grader_config(_recipe(tmp_path, (
        "source: phantom\n"
        "phantom: {n_studies: 3, seed: 7, top: T12, bottom: L3, n_fractures: [1, 2]}\n"
        "splits: [train]\nfolds: 2\noutput: out/model.skops\n")))
    assert cfg.phantom == PhantomCohort(n_studies=3, seed=7, top="T12", bottom="L3", n_fractures=(1, 2))
    assert (cfg.source, cfg.splits, cfg.folds, cfg.output) == ("phantom", ("train",), 2, "out/model.skops")
    assert cfg.to_dict()["phantom"]["n_fractures"] == (1, 2)


def test_shipped_recipes_load():
    for name in ("grader.yaml", "grader_verse2019.yaml"):
        path = PROJECT_ROOT / "pipelines" / name
        if not path.is_file():
            pytest.skip(f"{path} is absent")
        assert load_grader_config(path).source in ("phantom", "table")


@pytest.mark.parametrize(
    "text, message",
    [
        ("source: phantom\nlearning_rate: 0.1\n", r"unknown keys \['learning_rate'\]"),
        ("phantom: {n_studies: 3, slices: 2}\n", r"phantom: unknown keys \['slices'\]"),
        ("source: verse\n", "source must be phantom or table; got 'verse'"),
        ("source: table\n", "source 'table' needs a 'table' path"),
        ("source: [phantom\n", "not valid YAML"),
        ("- source\n- phantom\n", "a recipe is a mapping"),
    ],
    ids=["unknown key", "unknown phantom key", "bad source", "table without table", "bad yaml", "not a mapping"],
)
def test_load_grader_config_rejects_bad_recipes(tmp_path, text, message):
    with pytest.raises(InputError, match=message):
        load_grader_config(_recipe(tmp_path, text))


def test_load_grader_config_needs_the_file(tmp_path):
    with pytest.raises(InputError, match="no such config file"):
        load_grader_config(tmp_path / "absent.yaml")


@pytest.mark.parametrize("kwargs, message", [({"source": "dicom"}, "source must be"),
                                             ({"source": "table"}, "needs a 'table' path"),
                                             ({"selection": "simplest"}, "selection must be")])
def test_grader_config_checks_itself(kwargs, message):
    with pytest.raises(InputError, match=message):
        GraderConfig(**kwargs)


#: two studies of three vertebrae whose truth grades (3, 0, 2 and 0, 3, 2) each come twice, so
#: that a grader trains on them (seed 1000's pair leaves a grade with one vertebra, which it refuses)
TWO_STUDIES = PhantomCohort(n_studies=2, seed=1006, top="T12", bottom="L2", n_fractures=(1, 2))


@pytest.fixture(scope="module")
def prior_run(tmp_path_factory) -> tuple[Path, Path, TrainReport, pd.DataFrame]:
    """The prior's training run on TWO_STUDIES, once for the tests below: (the output asked
    for, train_grader's output, report and features table). Its features were measured in
    this process, serially."""
    output = tmp_path_factory.mktemp("grader") / "models" / "grader.skops"
    cfg = GraderConfig(phantom=TWO_STUDIES, folds=2,
                       param_grid={"svc__kernel": ["linear", "rbf"], "svc__C": [1.0, 10.0]}, output=str(output))
    return (output, *train_grader(cfg))


@pytest.mark.slow
def test_phantom_training_run_writes_model_and_card(prior_run):
    output, out, report, table = prior_run
    assert out == output and output.is_file()
    # the features table: three vertebrae of two subjects, each with its truth grade
    assert len(table) == 6 and table["study_id"].nunique() == 2
    assert set(table["label"]) == {19, 20, 21}
    assert set(FEATURES) <= set(table.columns)
    assert table.groupby("study_id")["genant_grade"].max().min() >= 1  # every study has a fracture
    assert report.n_vertebrae == 6 and report.n_subjects == 2 and report.folds == 2
    card = json.loads(output.with_suffix(".json").read_text(encoding="utf-8"))
    assert card["features"] == list(FEATURES)
    assert card["vertebrae"] == 6 and card["subjects"] == 2
    assert card["cv"].startswith("2-fold GroupKFold by subject")
    assert card["config"]["phantom"]["n_studies"] == 2 and card["config"]["output"] == str(output)
    assert 0.0 <= card["cv_macro_f1"] <= 1.0
    assert card["monotone"] == report.monotone and card["settings_refused_as_not_monotone"] == report.settings_refused
    model = load_model(output)
    proba = model.predict_proba(table[list(FEATURES)].to_numpy(float))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(model.classes_.tolist()) == set(table["genant_grade"])


def test_phantom_features_in_worker_processes_match_the_serial_run(prior_run):
    """--jobs only spreads the studies over processes: the same rows, in study order."""
    # two studies of three vertebrae: two workers, and study order to keep
    seen = []
    pooled = phantom_features(GraderConfig(phantom=TWO_STUDIES), progress=lambda i, n, _: seen.append((i, n)), jobs=2)
    pd.testing.assert_frame_equal(prior_run[3], pooled)
    assert list(pooled["study_id"].unique()) == [f"sub-phantom{1006 + i}" for i in range(2)]
    assert seen == [(1, 2), (2, 2)]


@pytest.mark.slow
def test_grader_trained_through_the_gan_measures_with_it(prior_run, tmp_path, monkeypatch):
    """synthesizer: gan renders the CT and measures through the GAN: other pseudo-healthy
    heights than the prior's on the same phantoms (the prior's training run is
    test_phantom_training_run_writes_model_and_card). The plumbing, not the network, is under
    test: an untrained tiny GAN stands in for the shipped one (whose heights the GAN's own
    tests check), 40 s less."""
    from healthivert.synthesis.gan import infer

    monkeypatch.setattr(infer, "DEFAULT_WEIGHTS", save_tiny_gan(tmp_path / "tiny.safetensors"))
    cfg = GraderConfig(phantom=TWO_STUDIES, folds=2, param_grid={"svc__kernel": ["linear"], "svc__C": [1.0]},
                       synthesizer="gan", output=str(tmp_path / "g.skops"))
    _, report, gan = train_grader(cfg)
    prior = prior_run[3]
    assert len(gan) == len(prior) == 6 and report.n_vertebrae == 6
    assert gan[["study_id", "label", "genant_grade"]].equals(prior[["study_id", "label", "genant_grade"]])
    assert not np.allclose(gan["rhlv_middle"].to_numpy(), prior["rhlv_middle"].to_numpy())
    card = json.loads((tmp_path / "g.json").read_text(encoding="utf-8"))
    assert card["config"]["synthesizer"] == "gan"


def test_the_svm_shipped_for_each_synthesizer_is_chosen():
    from healthivert.grading import get_grader
    from healthivert.pipeline import RunOptions, grader_for

    assert grader_for(RunOptions(synthesizer="gan")).model_path.name == "grader_svm_gan.skops"
    assert grader_for(RunOptions()).model_path.name == "grader_svm.skops"
    assert grader_for(RunOptions(grader="rule", synthesizer="gan")).name == "rule"
    assert get_grader("svm").model_path.name == "grader_svm.skops"


def test_a_features_cache_is_reused_only_by_the_same_recipe(tmp_path, monkeypatch):
    """The first run measures the cohort and stores its features; a rerun of the same recipe
    (another grid, say) reads them back; another cohort, synthesizer or GAN weights measure again."""
    from healthivert.training import grader as grader_module

    cache = tmp_path / "features.csv"
    cfg = GraderConfig(phantom=TWO_STUDIES, folds=2, param_grid={"svc__kernel": ["linear"], "svc__C": [1.0]},
                       output=str(tmp_path / "g.skops"), features_cache=str(cache))
    _, first, measured = train_grader(cfg)
    key_file = cache.with_suffix(".key.json")
    assert cache.is_file() and json.loads(key_file.read_text(encoding="utf-8"))["phantom"]["seed"] == 1006

    def no_measuring(*args, **kwargs):
        raise AssertionError("measured the cohort again")

    monkeypatch.setattr(grader_module, "phantom_features", no_measuring)
    rerun = GraderConfig(**{**cfg.__dict__, "param_grid": {"svc__kernel": ["linear"], "svc__C": [1.0, 10.0]}})
    _, report, read_back = train_grader(rerun)
    assert report.n_vertebrae == first.n_vertebrae
    np.testing.assert_allclose(read_back[list(FEATURES)].to_numpy(float), measured[list(FEATURES)].to_numpy(float))
    assert read_back["genant_grade"].tolist() == measured["genant_grade"].tolist()
    assert read_back["morphology"].tolist() == measured["morphology"].tolist()

    for other in (GraderConfig(**{**cfg.__dict__, "phantom": replace(TWO_STUDIES, seed=7)}),
                  GraderConfig(**{**cfg.__dict__, "synthesizer": "gan"})):
        with pytest.raises(AssertionError, match="again"):
            train_grader(other)
    key = grader_module.cache_key(GraderConfig(synthesizer="gan"))
    assert len(key["weights_sha256"]) == 64  # new GAN weights make the stored features stale
    key_file.write_text("{not json", encoding="utf-8")
    with pytest.raises(AssertionError, match="again"):
        train_grader(cfg)


def test_a_features_table_leaves_out_heights_the_field_of_view_bounds(tmp_path):
    """Retraining from result tables: a vertebra graded 0 from lower bounds (the edge cut its
    columns short) has no true features, so it is no training row; the others are."""
    from healthivert.report.record import BOUND_STATUS
    from healthivert.training.grader import table_features

    rows = [{"study_id": "s", "label": lab, "status": status, "expert": 0, **dict.fromkeys(FEATURES, 0.05)}
            for lab, status in ((19, "graded"), (20, f"{BOUND_STATUS}: the anterior section runs into ..."),
                                (21, "graded"))]
    pd.DataFrame(rows).to_csv(tmp_path / "vertebrae.csv", index=False)
    cfg = GraderConfig(source="table", table=str(tmp_path / "vertebrae.csv"), grades_column="expert")
    assert table_features(cfg)["label"].tolist() == [19, 21]
