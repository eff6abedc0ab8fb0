"""Real-domain segmenter training: recipe fields, VerSe subjects by name, mixed cohorts and the
real-domain augmentations (``healthivert.training.real_domain``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from healthivert.errors import InputError
from healthivert.segmentation.config import SegmenterConfig
from healthivert.training.real_domain import RandFieldOfViewd, RandThickSlicesd, pick_subjects
from healthivert.training.segmenter import (
    PatchSampler,
    SegmenterTrainConfig,
    _cohorts,
    load_segmenter_config,
    verse_studies,
)
from tests.helpers import phantom_verse_tree

ROOT = Path(__file__).resolve().parents[2]
SMALL = SegmenterConfig(patch=(32, 32, 32), channels=(4, 8, 16), strides=(2, 2))


def test_pick_subjects_includes_excludes_and_names_what_is_wrong():
    available = ["sub-a", "sub-b", "sub-c"]
    assert pick_subjects(available, (), (), "tree") == available
    assert pick_subjects(available, ("sub-c", "sub-a"), (), "tree") == ["sub-c", "sub-a"]
    assert pick_subjects(available, (), ("sub-b",), "tree") == ["sub-a", "sub-c"]
    with pytest.raises(InputError, match=r"no complete VerSe study .* \['sub-x'\]; available"):
        pick_subjects(available, (), ("sub-x",), "tree")
    with pytest.raises(InputError, match="both included"):
        pick_subjects(available, ("sub-a",), ("sub-a",), "tree")
    with pytest.raises(InputError, match="every VerSe subject is excluded"):
        pick_subjects(["sub-a"], (), ("sub-a",), "tree")


@pytest.mark.parametrize(("text", "message"), [
    ("source: mixed\n", "needs verse_root"),
    ("source: blend\nverse_root: x\n", "must be phantom or verse or mixed"),
    ("source: mixed\nverse_root: x\nphantom_fraction: 1.0\n", "strictly between 0 and 1"),
    ("source: mixed\nverse_root: x\nphantom_fraction: 0\n", "strictly between 0 and 1"),
    ("subjects: [sub-verse007]\n", "source must be verse or mixed"),
    ("exclude_subjects: [sub-verse007]\n", "source must be verse or mixed"),
    ("augmentation: heavy\n", "augmentation must be one of"),
    ("threads: -1\n", "threads"),
])
def test_bad_real_domain_recipe_fields_are_clear_errors(tmp_path, text, message):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    with pytest.raises(InputError, match=message):
        load_segmenter_config(recipe)


def test_the_real_recipe_reads_with_its_fields_as_tuples():
    cfg = load_segmenter_config(ROOT / "pipelines" / "segmenter_real.yaml")
    assert cfg.source == "mixed" and cfg.augmentation == "real" and cfg.threads == 1
    assert cfg.subjects == () and cfg.exclude_subjects == () and 0 < cfg.phantom_fraction < 1


def test_verse_subjects_by_name_or_split_less_the_excluded(tmp_path):
    tree, manifest, subjects = phantom_verse_tree(tmp_path, "L4", "L5", slice_mm=2.0)
    cfg = SegmenterTrainConfig(source="verse", verse_root=str(tree), manifest=str(manifest),
                               workdir=str(tmp_path / "work"), network=SMALL)
    names = lambda studies: [s.subject for s in studies]  # noqa: E731
    assert names(verse_studies(cfg, ("train",), named=True)) == subjects[:1]
    assert names(verse_studies(cfg, ("train", "val"), named=True)) == subjects
    # by name: any subject of the tree, whatever its split
    assert names(verse_studies(replace(cfg, subjects=(subjects[1],)), ("train",), named=True)) == subjects[1:]
    left_out = replace(cfg, exclude_subjects=(subjects[0],))
    assert names(verse_studies(left_out, ("train", "val"), named=True)) == subjects[1:]
    assert verse_studies(left_out, ("train",)) == []  # validation: the excluded subject is never scored
    with pytest.raises(InputError, match="every VerSe subject is excluded"):
        verse_studies(left_out, ("train",), named=True)
    with pytest.raises(InputError, match="sub-typo"):
        verse_studies(replace(cfg, subjects=("sub-typo",)), ("train",), named=True)


def test_mixed_cohort_draws_the_phantom_fraction_and_validates_on_phantoms(tmp_path):
    tree, manifest, subjects = phantom_verse_tree(tmp_path, "L4", "L5", slice_mm=2.0)
    cfg = SegmenterTrainConfig(source="mixed", verse_root=str(tree), manifest=str(manifest),
                               train_splits=("train", "val"), exclude_subjects=(subjects[1],),
                               phantom_fraction=0.25, train_studies=3, val_studies=1, top="L4", bottom="L5",
                               workdir=str(tmp_path / "work"), network=SMALL)
    train, val, weights, names = _cohorts(cfg)
    assert len(train) == 4 and len(val) == 1 and names == subjects[:1]
    assert weights == pytest.approx([0.25 / 3] * 3 + [0.75])
    cache = sorted(p.name for p in (tmp_path / "work" / "cache").iterdir())
    assert f"verse_{subjects[0]}_2mm.npz" in cache and f"verse_{subjects[1]}_2mm.npz" not in cache


def test_patch_sampler_draws_studies_by_their_weights():
    studies = []
    for c in (1, 2):  # study k is told apart by its label class
        label = np.zeros((1, 40, 40, 40), np.uint8)
        label[:, 10:30, 10:30, 10:30] = c
        studies.append({"image": np.random.default_rng(c).random(label.shape, np.float32), "label": label})
    sampler = PatchSampler(studies, SMALL, seed=3, weights=[0.9, 0.1], augmentation="real")
    drawn = [int(sampler[i][1].max()) for i in range(60)]
    assert 0.75 < drawn.count(1) / 60 < 1.0 and 2 in drawn


def test_thick_slices_average_along_one_axis_and_keep_the_shape():
    image = torch.zeros(1, 24, 24, 24)
    image[:, :, :, ::2] = 1.0  # stripes along the third axis only
    out = RandThickSlicesd(keys="image", prob=1.0, factor=(3.0, 3.0), axes=(2,))({"image": image})["image"]
    assert out.shape == image.shape
    assert float(out.std()) < 0.5 * float(image.std())  # the stripes are averaged out
    across = RandThickSlicesd(keys="image", prob=1.0, factor=(3.0, 3.0), axes=(0,))({"image": image})["image"]
    assert torch.allclose(across, image, atol=1e-5)  # nothing varies along the first axis


def test_field_of_view_zeroes_across_the_spine_and_mirrors_along_it():
    image = torch.arange(16.0).reshape(1, 1, 1, 16).expand(1, 16, 16, 16).clone() + 1
    label = torch.ones(1, 16, 16, 16)
    fov = RandFieldOfViewd(keys=["image", "label"], prob=1.0, depth=(0.25, 0.25))
    seen = set()
    for seed in range(40):
        fov.set_random_state(seed)
        out = fov({"image": image, "label": label})
        img, lab = out["image"], out["label"]
        seen.add((fov._axis, fov._low_side))
        if fov._axis < 2:  # across: image and label zeroed together, 4 of 16 planes
            assert int((img == 0).sum()) == int((lab == 0).sum()) == 4 * 16 * 16
        else:  # along: mirrored at the plane, the label kept
            s = img[0, 0, 0]
            assert torch.equal(s[:4], torch.tensor([8.0, 7, 6, 5])) or torch.equal(
                s[12:], torch.tensor([12.0, 11, 10, 9]))
            assert bool((lab == 1).all())
    assert len(seen) == 6  # every axis and side is drawn
