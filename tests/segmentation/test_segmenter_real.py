"""Real-domain segmenter training: recipe fields, VerSe subjects by name, mixed cohorts, the
real-domain augmentations and the loss mask on unannotated bone
(``healthivert.training.real_domain``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.losses import DiceCELoss

from healthivert.errors import InputError
from healthivert.segmentation.config import SegmenterConfig
from healthivert.training.real_domain import (
    RandFieldOfViewd,
    RandThickSlicesd,
    masked_dice_ce,
    pick_subjects,
    sacrum_below_l5,
    tree_studies,
    unlabelled_bone,
)
from healthivert.training.segmenter import (
    PatchSampler,
    SegmenterTrainConfig,
    _cohorts,
    load_segmenter_config,
    verse_cohort,
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


def test_a_subject_named_for_its_folder_stands_for_all_its_scans(tmp_path):
    """Leaving a subject out must leave out every scan of it (VerSe 2019's split scans)."""
    for stem in ("sub-verse400_split-verse090", "sub-verse400_split-verse155", "sub-verse008"):
        sub = stem.split("_")[0]
        for folder, name in (("rawdata", f"{stem}_ct.nii.gz"), ("derivatives", f"{stem}_seg-vert_msk.nii.gz")):
            (tmp_path / folder / sub).mkdir(parents=True, exist_ok=True)
            (tmp_path / folder / sub / name).write_bytes(b"")
    names = lambda studies: [s.subject for s in studies]  # noqa: E731
    assert names(tree_studies(str(tmp_path), (), ("sub-verse400",))) == ["sub-verse008"]
    assert names(tree_studies(str(tmp_path), ("sub-verse400",), ())) == [
        "sub-verse400_split-verse090", "sub-verse400_split-verse155"]
    assert names(tree_studies(str(tmp_path), (), ("sub-verse400_split-verse090",))) == [
        "sub-verse008", "sub-verse400_split-verse155"]


@pytest.mark.parametrize(("text", "message"), [
    ("source: mixed\n", "needs verse_root"),
    ("source: blend\nverse_root: x\n", "must be phantom or verse or mixed"),
    ("source: mixed\nverse_root: x\nphantom_fraction: 1.0\n", "strictly between 0 and 1"),
    ("source: mixed\nverse_root: x\nphantom_fraction: 0\n", "strictly between 0 and 1"),
    ("subjects: [sub-verse007]\n", "source must be verse or mixed"),
    ("exclude_subjects: [sub-verse007]\n", "source must be verse or mixed"),
    ("augmentation: heavy\n", "augmentation must be one of"),
    ("threads: -1\n", "threads"),
    ("ignore_unlabelled_bone: true\n", "source must be verse or mixed"),
    ("crop_ratios: [1, 2]\n", "crop_ratios must be 3 non-negative numbers"),
    ("crop_ratios: [1, -1, 1]\n", "crop_ratios must be 3 non-negative numbers"),
    ("crop_ratios: [0, 0, 0]\n", "positive sum"),
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
    assert cfg.ignore_unlabelled_bone is False  # tried, worse (docs/experiments.md)
    assert cfg.crop_ratios == (1, 2, 1)


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


def test_crop_ratios_centre_patches_on_the_sacrum_and_skip_a_class_a_study_lacks():
    """A small sacrum far from the vertebrae: without ratios few patches reach it; at 1 : 2 : 1
    about a quarter are centred on it, and a study without one still gives patches."""
    label = np.zeros((1, 40, 40, 120), np.uint8)
    label[:, 15:25, 15:25, 60:115] = 1
    label[:, 17:23, 17:23, 2:6] = 2  # 144 voxels, 4 % of the bone, 55 voxels below the vertebrae
    study = {"image": np.random.default_rng(0).random(label.shape, np.float32), "label": label}
    net = replace(SMALL, patch=(24, 24, 24))
    reach = lambda sampler: sum(int((sampler[i][1] == 2).any()) for i in range(80))  # noqa: E731
    assert reach(PatchSampler([study], net, seed=4)) < 12
    assert 12 <= reach(PatchSampler([study], net, seed=4, ratios=(1, 2, 1))) <= 32
    no_sacrum = {"image": study["image"], "label": np.where(label == 2, 0, label).astype(np.uint8)}
    drawn = PatchSampler([no_sacrum], net, seed=4, ratios=(1, 2, 1))
    assert all(drawn[i][1].shape == (1, 24, 24, 24) for i in range(10))


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


def _two_vertebrae(hu_window=(-250.0, 1250.0)) -> tuple[np.ndarray, np.ndarray]:
    """A windowed image (2 mm grid) of two bone blocks along the last axis, each a 400 HU
    cortex around a dim 100 HU core, in 0 HU tissue; only the lower one annotated (class 1)."""
    hu = np.zeros((40, 40, 60), np.float32)
    label = np.zeros(hu.shape, np.uint8)
    for z0, annotated in ((8, True), (34, False)):
        hu[10:30, 10:30, z0:z0 + 16] = 400.0
        hu[13:27, 13:27, z0 + 3:z0 + 13] = 100.0  # trabecular core, below the bone threshold
        if annotated:
            label[10:30, 10:30, z0:z0 + 16] = 1
    lo, hi = hu_window
    return ((hu - lo) / (hi - lo))[None], label[None]


def test_unlabelled_bone_is_ignored_there_and_only_there():
    image, label = _two_vertebrae()
    ignore = unlabelled_bone(image, label, (-250.0, 1250.0), 2.0)[0].astype(bool)
    assert ignore[10:30, 10:30, 34:50].all()  # the unannotated block, its dim core included
    assert ignore[8, 20, 40] and ignore[20, 20, 51]  # its blurred edge (dilated by 4 mm)
    annotated = label[0] > 0
    assert not ignore[annotated].any()  # the expert mask is taught
    shell = np.zeros_like(annotated)
    shell[9:31, 9:31, 7:25] = True  # and so is a 2 mm shell around it
    assert not ignore[shell].any()
    assert not ignore[:, :, :5].any() and not ignore[:4].any()  # soft tissue away from bone is taught
    assert not ignore[:, :, 25:30].any()  # the gap between them: 6 mm from the unannotated block


def _lumbar_end(lowest: int) -> tuple[np.ndarray, np.ndarray]:
    """A 2 mm grid (x left-right, z up): an annotated vertebra ``lowest`` (VerSe label) at
    slices 30-44, an unannotated bone block below it across the midline (S1), a bone block
    below it 60 mm to the side (an iliac wing) and one above it on the midline (T12, not
    annotated); 400 HU bone in 0 HU tissue, windowed."""
    hu = np.zeros((80, 30, 60), np.float32)
    labels = np.zeros(hu.shape, np.uint8)
    hu[30:50, 10:25, 30:45] = 400.0
    labels[30:50, 10:25, 30:45] = lowest
    hu[28:52, 8:27, 12:27] = 400.0   # S1, 6 mm below
    hu[68:76, 8:27, 12:27] = 400.0   # 60-70 mm from the midline
    hu[30:50, 10:25, 49:58] = 400.0  # above, unannotated
    return ((hu + 250.0) / 1500.0)[None], labels[None]


@pytest.mark.parametrize("lowest, taught", [(24, True), (25, True), (22, False)])
def test_the_sacrum_below_l5_is_the_unannotated_bone_below_on_the_midline(lowest, taught):
    image, labels = _lumbar_end(lowest)
    sacrum = sacrum_below_l5(image, labels, (-250.0, 1250.0), 2.0)
    assert sacrum[29:51, 9:26, 13:26].all() == taught  # S1 (less the blurred outline)
    assert not sacrum[60:].any()  # the iliac wing
    assert not sacrum[:, :, 45:].any() and not sacrum[labels[0] > 0].any()  # T12, and L5 itself


def test_the_sacrum_taught_from_verse_masks_comes_with_its_own_cache(tmp_path):
    """A recipe teaching the sacrum below L5 keeps its VerSe targets apart from one that does
    not (the flag changes the class target, so it changes the cache name); it adds sacrum and
    leaves the vertebrae as they are."""
    tree, manifest, subjects = phantom_verse_tree(tmp_path, "L4", "L5", slice_mm=2.0)
    cfg = SegmenterTrainConfig(source="verse", verse_root=str(tree), manifest=str(manifest),
                               workdir=str(tmp_path / "work"), network=SMALL)
    plain = verse_cohort(cfg, verse_studies(cfg, ("train",), named=True))[0]["label"]
    taught = verse_cohort(replace(cfg, sacrum_below_l5=True), verse_studies(cfg, ("train",), named=True))[0]["label"]
    cache = sorted(p.name for p in (tmp_path / "work" / "cache").iterdir())
    assert cache == [f"verse_{subjects[0]}_2mm.npz", f"verse_{subjects[0]}_2mm_sacrum.npz"]
    assert np.array_equal(taught == 1, plain == 1)
    # the phantom's own sacrum label is kept, and the bone around it below L5 is added
    assert (taught == 2).sum() > (plain == 2).sum() and ((taught == 2) | (plain != 2)).all()
    with pytest.raises(ValueError, match="sacrum_below_l5 concerns VerSe subjects"):
        SegmenterTrainConfig(source="phantom", sacrum_below_l5=True)


def test_masked_dice_ce_is_dice_ce_and_ignores_the_masked_voxels():
    rng = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 3, 8, 8, 8, generator=rng)
    target = torch.randint(0, 3, (2, 1, 8, 8, 8), generator=rng)
    none = torch.zeros_like(target)
    reference = DiceCELoss(to_onehot_y=True, softmax=True)(logits, target)
    assert torch.allclose(masked_dice_ce(logits, target, none), reference, atol=1e-6)
    ignore = torch.zeros_like(target)
    ignore[:, :, :4] = 1
    changed_logits, changed_target = logits.clone(), target.clone()
    changed_logits[:, :, :4] = torch.randn(2, 3, 4, 8, 8, generator=rng) * 5
    changed_target[:, :, :4] = 2
    base = masked_dice_ce(logits, target, ignore)
    assert torch.allclose(masked_dice_ce(changed_logits, changed_target, ignore), base, atol=1e-6)
    assert not torch.allclose(base, reference)
    leaf = logits.clone().requires_grad_(True)
    masked_dice_ce(leaf, target, ignore).backward()
    assert float(leaf.grad[:, :, :4].abs().max()) == 0.0 and float(leaf.grad[:, :, 4:].abs().max()) > 0


def test_patch_sampler_carries_the_loss_mask_and_phantoms_ignore_nothing():
    image, label = _two_vertebrae()
    real = {"image": image, "label": label, "ignore": unlabelled_bone(image, label, (-250.0, 1250.0), 2.0)}
    phantom = {"image": image.copy(), "label": label.copy()}
    sampler = PatchSampler([phantom, real], SMALL, seed=1, weights=[0.5, 0.5], augmentation="real")
    assert sampler.studies[0]["ignore"].shape == label.shape and not sampler.studies[0]["ignore"].any()
    items = [sampler[i] for i in range(12)]
    assert all(len(item) == 3 and item[2].shape == item[1].shape for item in items)
    assert any(bool(item[2].any()) for item in items)
    plain = PatchSampler([phantom], SMALL, seed=1)
    assert len(plain[0]) == 2  # no loss mask: (image, label) as before
