"""Training the HealthiVert-GAN on tiny phantoms (two steps, resumed), and the ``gan``
synthesizer on the weights it writes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from healthivert.errors import InputError
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.synthesis import get_synthesizer
from healthivert.synthesis.gan.model import load_gan
from healthivert.training.synthesizer import SynthesizerTrainConfig, load_synthesizer_config, train_synthesizer
from tests.helpers import phantom_verse_tree
from tests.tiny_gan import TINY

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[SynthesizerTrainConfig, Path]:
    work = tmp_path_factory.mktemp("gan")
    cfg = SynthesizerTrainConfig(train_studies=1, train_seed=11, val_studies=1, val_seed=12, top="T12", bottom="L2",
                                 steps=2, batch=2, classifier_steps=2, adversarial_after=1, eval_every=2,
                                 checkpoint_every=1, workdir=str(work / "work"), output=str(work / "g.safetensors"),
                                 network=TINY)
    train_synthesizer(cfg)
    return cfg, Path(cfg.output)


def _with_the_cohort(cfg: SynthesizerTrainConfig, workdir: Path) -> str:
    """A fresh work folder holding the ``trained`` run's cached phantom studies (training seed
    11, validation 12), as a second run in one work folder finds them; for the tests that check
    training, not the building of those caches (test_phantom_cohort_... and test_prepare_...
    check that)."""
    shutil.copytree(Path(cfg.workdir) / "cache", workdir / "cache")
    return str(workdir)


def test_two_training_steps_write_weights_with_a_card(trained):
    cfg, path = trained
    model, card = load_gan(path)
    assert model.config == TINY
    assert card["steps"] == 2 and "phantom" in card["trained_on"] and "deformity rate 0.25" in card["trained_on"]
    last = card["history"][-1]
    assert last["step"] == 2 and 0 < last["codebook_utilisation"] <= 1 and last["codebook_perplexity"] >= 1
    assert np.isfinite(last["total"]) and "adversarial" in last and "edge" in last


def test_training_resumes_from_its_checkpoint(trained):
    cfg, path = trained
    more = replace(cfg, steps=3, output=str(path.with_name("g3.safetensors")))
    train_synthesizer(more)
    _, card = load_gan(more.output)
    assert [h["step"] for h in card["history"]] == [2, 3]  # steps 1-2 were not redone


def test_fine_tuning_starts_from_weights_with_loader_workers_and_a_time_limit(trained, tmp_path):
    """init_weights: the generator and HGAM classifier start from a weights file (no classifier
    training); canvases come from loader workers; a time limit ends the run early with its
    weights and a card saying how many steps were done."""
    cfg, path = trained
    start, _ = load_gan(path)
    tuned = replace(cfg, steps=50, workers=2, init_weights=str(path), time_limit_min=1e-4, eval_every=100,
                    workdir=_with_the_cohort(cfg, tmp_path / "work"), output=str(tmp_path / "t.safetensors"))
    train_synthesizer(tuned)
    model, card = load_gan(tuned.output)
    assert 1 <= card["steps"] < 50 and card["history"][-1]["step"] == card["steps"]
    assert card["classifier_training_accuracy"] == "from g.safetensors"
    assert "starting from the weights g.safetensors" in card["trained_on"]
    for a, b in zip(start.classifier.parameters(), model.classifier.parameters()):
        assert torch.equal(a, b)  # frozen, as loaded
    with pytest.raises(InputError, match="differs from the recipe"):
        train_synthesizer(replace(tuned, network=replace(TINY, width=4),
                                  workdir=_with_the_cohort(cfg, tmp_path / "other")))
    # what the network is shown may change: a fine-tune with less context starts from these weights
    shown = replace(tuned, network=replace(TINY, context_mm=20), steps=1, time_limit_min=0,
                    workdir=_with_the_cohort(cfg, tmp_path / "shown"), output=str(tmp_path / "shown.safetensors"))
    train_synthesizer(shown)
    assert load_gan(shown.output)[0].config.context_mm == 20


def test_loader_canvases_do_not_depend_on_the_number_of_workers(trained):
    from torch.utils.data import DataLoader

    from healthivert.training.synthesizer import SliceDataset, phantom_cohort

    cfg, _ = trained
    data = SliceDataset(phantom_cohort(range(cfg.train_seed, cfg.train_seed + 1), cfg), seed=3)
    draws = [[s.window for batch in DataLoader(data, batch_size=2, num_workers=w, sampler=range(2, 6),
                                               collate_fn=list) for s in batch] for w in (0, 2)]
    assert all(np.array_equal(a, b) for a, b in zip(*draws)) and len(draws[0]) == 4
    assert not np.array_equal(draws[0][0], draws[0][1])


def test_phantom_cohort_without_sub_threshold_deformities(trained, tmp_path):
    """deformity_rate 0: grade-0 training vertebrae keep their healthy height (phantom seed 13
    gives T12 a 7 % deformity by default); the two cohorts are cached under different names."""
    from healthivert.training.synthesizer import phantom_cohort

    cfg, _ = trained
    cfg = replace(cfg, workdir=str(tmp_path))
    default, healthy = (phantom_cohort(range(13, 14), replace(cfg, deformity_rate=d)) for d in (0.25, 0.0))
    names = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert names == ["phantom13_T12-L2.npz", "phantom13_T12-L2_d0.npz"]

    def height(cohort, label):  # mm: the body's mean column height (1 mm stacks)
        (v,) = [v for v in cohort if v.stack.label == label]
        columns = (v.stack.body >= 0.5).sum(axis=2)
        return v.grade, float(columns[columns > 0].mean())

    (g0, h0), (g1, h1) = height(default, 19), height(healthy, 19)
    assert g0 == g1 == 0 and h1 - h0 >= 0.04 * h1
    with pytest.raises(ValueError, match="deformity_rate"):
        replace(cfg, deformity_rate=1.5)


def test_disc_jitter_moves_only_the_context_of_training_canvases(trained):
    from healthivert.training.synthesizer import SliceSampler, phantom_cohort

    cfg, _ = trained
    cohort = phantom_cohort(range(cfg.train_seed, cfg.train_seed + 1), cfg)
    pairs = [(SliceSampler(cohort, seed).draw(1)[0][1], SliceSampler(cohort, seed, 3).draw(1)[0][1])
             for seed in range(6)]
    assert all(np.array_equal(a.target, b.target) and a.height_mm == b.height_mm for a, b in pairs)
    assert sum(not np.array_equal(a.ct, b.ct) for a, b in pairs) >= 4  # (0, 0) is one draw in 49
    with pytest.raises(ValueError, match="disc_jitter_mm"):
        replace(cfg, disc_jitter_mm=-1)


def test_unused_codes_are_restarted_during_training(trained, tmp_path):
    """restart_codes_every: codes no batch of the window used move onto features; the card and
    the history say so, and the moved codes travel with the weights."""
    cfg, path = trained
    start, _ = load_gan(path)
    tuned = replace(cfg, steps=2, restart_codes_every=1, init_weights=str(path), eval_every=2,
                    workdir=_with_the_cohort(cfg, tmp_path / "work"), output=str(tmp_path / "r.safetensors"))
    train_synthesizer(tuned)
    model, card = load_gan(tuned.output)
    moved = card["history"][-1]["codes_restarted"]  # per restart, averaged over the window
    assert moved > 0 and "unused codes restarted every 1 steps" in card["trained_on"]
    before = start.generator.coarse.vq.quantizer.frozen_codebook
    after = model.generator.coarse.vq.quantizer.frozen_codebook
    changed = int((before != after).any(dim=1).sum())
    assert 1 <= changed <= 2 * moved  # two restarts moved 2 * moved codes in all
    with pytest.raises(ValueError, match="restart_codes_every"):
        replace(cfg, restart_codes_every=-1)
    with pytest.raises(ValueError, match="simvq"):
        replace(cfg, restart_codes_every=10, network=replace(TINY, vq_kind="vq"))


@pytest.fixture(scope="module")
def study13():
    """A phantom study (T12-L2, 1.5 mm slices) for the ``gan`` synthesizer's tests."""
    return make_phantom(PhantomConfig(top="T12", bottom="L2", slice_mm=1.5), 13)


def test_gan_synthesizer_restores_every_vertebra(trained, study13):
    _, path = trained
    study = study13
    _, vertebrae = straighten_vertebrae(study.mask, centroids_from_mask(study.mask), study.ct)
    healthy = get_synthesizer("gan", weights=str(path))(vertebrae)
    assert set(healthy) == {v.label for v in vertebrae}
    for v in vertebrae:
        ph = healthy[v.label]
        foot = v.heights_mm > 0
        assert ph.heights_mm.shape == v.heights_mm.shape and (ph.heights_mm[foot] > 0).all()
        assert not ph.heights_mm[~foot].any() and ph.body.shape == v.body.shape
        assert ph.method.startswith("HealthiVert-GAN")


def test_gan_synthesizer_needs_the_ct(trained, study13):
    _, path = trained
    study = study13
    _, vertebrae = straighten_vertebrae(study.mask, centroids_from_mask(study.mask))
    with pytest.raises(InputError, match="--ct"):
        get_synthesizer("gan", weights=str(path))(vertebrae)


def test_shipped_recipe_parses_and_bad_keys_are_refused(tmp_path):
    cfg = load_synthesizer_config(ROOT / "pipelines" / "synthesizer.yaml")
    assert cfg.max_grade == 1 and cfg.network.vq_kind == "simvq" and cfg.output.endswith(".safetensors")
    tune = load_synthesizer_config(ROOT / "pipelines" / "synthesizer_finetune.yaml")  # the shipped GAN's phase 2
    assert (tune.max_grade, tune.deformity_rate) == (0, 0.0) and tune.init_weights and tune.network == cfg.network
    twins = load_synthesizer_config(ROOT / "pipelines" / "synthesizer_twins.yaml")
    assert twins.twin_truth and (twins.max_grade, twins.deformity_rate) == (3, 0.0) and twins.network == cfg.network
    context = load_synthesizer_config(ROOT / "pipelines" / "synthesizer_context.yaml")
    assert context.network == replace(cfg.network, context_mm=24) and context.init_weights and context.max_grade == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(json.dumps({"steps": 3, "colour": "red"}))
    with pytest.raises(InputError, match="colour"):
        load_synthesizer_config(bad)
    bad.write_text(json.dumps({"network": {"vq_kind": "pq"}}))
    with pytest.raises(InputError, match="VQ kind"):
        load_synthesizer_config(bad)
    bad.write_text(json.dumps({"source": "verse"}))
    with pytest.raises(InputError, match="verse_root"):
        load_synthesizer_config(bad)


def test_trains_from_a_verse_tree_with_the_manifest_grades(tmp_path):
    """source: verse reads a VerSe download tree; grades and splits come from the manifest."""
    tree, manifest, _ = phantom_verse_tree(tmp_path, "T12", "L2", slice_mm=1.5)
    cfg = SynthesizerTrainConfig(source="verse", verse_root=str(tree), manifest=str(manifest), steps=1, batch=2,
                                 classifier_steps=1, eval_every=1, checkpoint_every=1, network=TINY,
                                 workdir=str(tmp_path / "work"), output=str(tmp_path / "g.safetensors"))
    train_synthesizer(cfg)
    _, card = load_gan(cfg.output)
    assert "VerSe tree" in card["trained_on"] and "3 vertebrae" in card["trained_on"]
    missing = replace(cfg, train_splits=("test",), workdir=str(tmp_path / "w2"))
    with pytest.raises(InputError, match="no complete VerSe study"):
        train_synthesizer(missing)


def test_twin_truth_pairs_fractured_vertebrae_with_their_intact_twins(trained, tmp_path):
    """twin_truth: each fractured vertebra carries its intact twin's stack (taller), and its
    training canvases take the twin's height; unfractured ones train on themselves."""
    from healthivert.synthesis.gan.canvas import make_sample
    from healthivert.training.synthesizer import SliceSampler, phantom_cohort

    cfg, _ = trained
    cfg = replace(cfg, workdir=str(tmp_path), deformity_rate=0.0, twin_truth=True, max_grade=3)
    cohort = phantom_cohort(range(16, 17), cfg, twins=True)  # seed 16: T12 grade 2, L1 grade 3, L2 grade 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["phantom16_T12-L2_d0.npz",
                                                                      "phantom16_T12-L2_d0_intact.npz"]
    assert all((v.twin is not None) == (v.grade >= 1) for v in cohort) and any(v.grade >= 2 for v in cohort)
    for v in (v for v in cohort if v.grade >= 2):
        assert v.twin.label == v.stack.label
        assert (v.twin.body >= 0.5).sum() > 1.1 * (v.stack.body >= 0.5).sum()  # the twin keeps its height
        def heights(stack, view):
            return {make_sample(stack, view, int(i)).height_mm for i in stack.slice_indices(view)}

        for _, s in SliceSampler([v], 0).draw(6):
            assert s.height_mm in heights(v.twin, s.view)  # (a biconcave body's silhouette keeps its rim)
    with pytest.raises(ValueError, match="twin_truth"):
        replace(cfg, source="verse", verse_root=str(tmp_path))
    # a training step on it; validation scores only unfractured vertebrae (theirs has no twins)
    run = replace(cfg, train_seed=16, train_studies=1, val_seed=17, steps=1, checkpoint_every=1, eval_every=1,
                  output=str(tmp_path / "twins.safetensors"), init_weights=str(trained[1]))
    train_synthesizer(run)
    card = load_gan(run.output)[1]
    assert "intact twins" in card["trained_on"] and card["validation_vertebrae"] == 3  # seed 17: no fracture


def test_prepare_builds_the_cohort_caches_in_parallel(trained, tmp_path):
    """--prepare-only: training, validation and twin studies cached by worker processes; the
    training run reads them back instead of building them again."""
    from healthivert.training.synthesizer import phantom_cohort, prepare_phantom_cohort

    cfg, _ = trained
    cfg = replace(cfg, workdir=str(tmp_path), train_seed=16, val_seed=12, twin_truth=True, max_grade=3)
    seen = []
    assert prepare_phantom_cohort(cfg, jobs=2, progress=lambda i, n, _: seen.append((i, n))) == 3
    cache = tmp_path / "cache"
    names = sorted(p.name for p in cache.iterdir())
    assert names == ["phantom12_T12-L2.npz", "phantom16_T12-L2.npz", "phantom16_T12-L2_intact.npz"]
    stamps = {p.name: p.stat().st_mtime_ns for p in cache.iterdir()}
    assert phantom_cohort(range(16, 17), cfg, twins=True) and seen[-1] == (3, 3)
    assert {p.name: p.stat().st_mtime_ns for p in cache.iterdir()} == stamps
    with pytest.raises(InputError, match="phantom"):
        prepare_phantom_cohort(replace(cfg, twin_truth=False, source="verse", verse_root=str(tmp_path)), jobs=1)


def test_an_empty_recipe_is_refused(tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing but a comment\n")
    with pytest.raises(InputError, match="empty"):
        load_synthesizer_config(empty)


def test_verse_subjects_and_exclude_subjects_choose_the_studies_read(tmp_path):
    """subjects trains on named VerSe subjects whatever their split; exclude_subjects keeps a
    subject out of training, validation and calibration (never read: no cache of it)."""
    from healthivert.training.gan_calibration import verse_studies

    tree, manifest, (first, second) = phantom_verse_tree(tmp_path, "T12", "L2", slice_mm=1.5)
    both = ("train", "val")
    cfg = SynthesizerTrainConfig(source="verse", verse_root=str(tree), manifest=str(manifest), steps=1, batch=2,
                                 classifier_steps=1, eval_every=1, checkpoint_every=1, network=TINY,
                                 train_splits=both, val_splits=both, calibration_splits=both,
                                 exclude_subjects=(first,), workdir=str(tmp_path / "loso"),
                                 output=str(tmp_path / "loso.safetensors"))
    train_synthesizer(cfg)
    card = load_gan(cfg.output)[1]
    assert f"less subjects ['{first}']" in card["trained_on"] and "3 vertebrae" in card["trained_on"]
    assert card["validation_vertebrae"] == 3
    assert sorted(p.name for p in (tmp_path / "loso" / "cache").iterdir()) == [f"verse_{second}.npz"]
    assert [name for name, _, _ in verse_studies(cfg)] == [second]  # calibration: the held-out one left out
    with pytest.raises(InputError, match="excluded"):
        next(verse_studies(replace(cfg, calibration_splits=("train",))))  # its only study is held out
    # by name: the "val" subject trains although train_splits says "train"
    named = replace(cfg, subjects=(second,), exclude_subjects=(), train_splits=("train",), val_splits=("train",),
                    workdir=str(tmp_path / "named"), output=str(tmp_path / "named.safetensors"))
    train_synthesizer(named)
    assert f"subjects ['{second}']" in load_gan(named.output)[1]["trained_on"]
    assert sorted(p.name for p in (tmp_path / "named" / "cache").iterdir()) == [f"verse_{first}.npz",
                                                                                f"verse_{second}.npz"]
    for bad, match in (({"exclude_subjects": ("sub-nobody",)}, "sub-nobody"),
                       ({"subjects": (second,), "exclude_subjects": (second,)}, "both included"),
                       ({"exclude_subjects": (first, second)}, "every VerSe subject is excluded")):
        with pytest.raises(InputError, match=match):
            train_synthesizer(replace(cfg, workdir=str(tmp_path / "bad"), **bad))
    with pytest.raises(ValueError, match="source must be verse"):
        SynthesizerTrainConfig(exclude_subjects=(first,))


def test_recipe_lists_of_subjects_are_read_as_tuples(tmp_path):
    recipe = tmp_path / "loso.yaml"
    recipe.write_text(json.dumps({"source": "verse", "verse_root": "tree", "subjects": ["sub-a", "sub-b"],
                                  "exclude_subjects": ["sub-c"]}))
    cfg = load_synthesizer_config(recipe)
    assert cfg.subjects == ("sub-a", "sub-b") and cfg.exclude_subjects == ("sub-c",)
    recipe.write_text(json.dumps({"exclude_subjects": ["sub-c"]}))
    with pytest.raises(InputError, match="source must be verse"):
        load_synthesizer_config(recipe)
