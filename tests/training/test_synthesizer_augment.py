"""Real-CT domain randomisation of GAN training slices (``augmentation: real``)."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.synthesis.gan.canvas import BAND_MM, BAND_TOP, VertebraStack, make_sample, normalise_hu
from healthivert.training.gan_augment import RealDomain, RealDomainAugment, make_augmenter, to_hu
from healthivert.training.synthesizer import SliceDataset, SliceSampler, SynthesizerTrainConfig, Vertebra

LR, AP, SI = np.arange(-30, 31), np.arange(-45, 36), np.arange(-40, 41)


def phantom_stack(label: int = 20) -> VertebraStack:
    """Three box vertebrae (heights 24 mm, discs 8 mm) with a 541 HU cortex rim and a 181 HU
    core in 43 HU soft tissue, air beyond 30 mm anterior: the phantoms' figures."""
    hu = np.full((len(LR), len(AP), len(SI)), 43.0, np.float32)
    hu[:, AP > 30] = -1000.0
    labels = np.zeros(hu.shape, np.uint8)
    body = np.zeros(hu.shape, np.float32)
    foot = (np.abs(LR)[:, None] <= 18) & (np.abs(AP)[None, :] <= 15)
    core = (np.abs(LR)[:, None] <= 16) & (np.abs(AP)[None, :] <= 13)
    for lab, centre in ((label - 1, 32), (label, 0), (label + 1, -32)):
        rows = np.abs(SI - centre) < 12
        inner = np.abs(SI - centre) < 10
        labels[foot[..., None] & rows] = lab
        hu[foot[..., None] & rows] = 541.0
        hu[core[..., None] & inner] = 181.0
        if lab == label:
            body[foot[..., None] & rows] = 1.0
    return VertebraStack(label, normalise_hu(hu), body, labels, LR, AP)


@pytest.fixture(scope="module")
def stack() -> VertebraStack:
    return phantom_stack()


def _draws(stack, view, seed, n=8, domain=None):
    aug = RealDomainAugment(domain)
    rng = np.random.default_rng(seed)
    return [aug.augment(stack, view, 30 if view == "sagittal" else 45, rng) for _ in range(n)]


def test_none_is_the_identity_and_unknown_kinds_are_refused(stack):
    assert make_augmenter("none") is None
    with pytest.raises(ValueError, match="augmentation"):
        make_augmenter("cartoon")
    with pytest.raises(ValueError, match="augmentation"):
        SynthesizerTrainConfig(augmentation="cartoon")
    with pytest.raises(ValueError, match="twin_truth"):
        SynthesizerTrainConfig(augmentation="real", twin_truth=True)
    vertebrae = [Vertebra(stack, 0)]
    assert SliceSampler(vertebrae, 5).augment is None and SliceDataset(vertebrae, 5).augment is None
    # with every operation off, the augmenter draws its seed after the slice is chosen and
    # changes nothing: the same slice, the same canvas as without it
    off = RealDomain(bone_prob=0.0, thick_prob=0.0, smooth_prob=0.0, noise_prob=0.0, scale_prob=0.0,
                     shift_prob=0.0, fov_si_prob=0.0, fov_across_prob=0.0)
    for seed in range(4):
        (i, plain), = SliceSampler(vertebrae, seed).draw(1)
        (j, still), = SliceSampler(vertebrae, seed, augment=RealDomainAugment(off)).draw(1)
        assert i is j and np.array_equal(plain.target, still.target)
        assert np.allclose(plain.ct, still.ct, atol=1e-5)


@pytest.mark.parametrize("view", ["sagittal", "coronal"])
def test_seeded_draws_repeat(stack, view):
    a, b = _draws(stack, view, 11), _draws(stack, view, 11)
    c = _draws(stack, view, 12)
    assert all(np.array_equal(x.ct, y.ct) and np.array_equal(x.labels, y.labels) for x, y in zip(a, b))
    assert any(not np.array_equal(x.ct, y.ct) for x, y in zip(a, c))
    ds = SliceDataset([Vertebra(stack, 0)], 3, augmentation="real")
    assert np.array_equal(ds[4].ct, SliceDataset([Vertebra(stack, 0)], 3, augmentation="real")[4].ct)


@pytest.mark.parametrize("view", ["sagittal", "coronal"])
def test_intensity_operations_leave_the_truth_unchanged(stack, view):
    no_fov = RealDomain(fov_si_prob=0.0, fov_across_prob=0.0, bone_prob=1.0, noise_prob=1.0, smooth_prob=1.0,
                        thick_prob=1.0, scale_prob=1.0, shift_prob=1.0)
    index = 30 if view == "sagittal" else 45
    plain = make_sample(stack, view, index)
    for augmented in _draws(stack, view, 3, domain=no_fov):
        assert augmented.body is stack.body and np.array_equal(augmented.labels, stack.labels)
        s = make_sample(augmented, view, index)
        assert np.array_equal(s.target, plain.target) and np.array_equal(s.adjacent, plain.adjacent)
        assert s.height_mm == plain.height_mm and s.body_rows == plain.body_rows
        assert np.array_equal(s.src, plain.src) and np.array_equal(s.window_src, plain.window_src)
        assert not np.array_equal(s.ct, plain.ct)
        assert s.ct.min() >= -1.0 and s.ct.max() <= 1.0 and np.isfinite(s.ct).all()


def test_bone_is_dimmed_towards_real_ct_and_soft_tissue_kept(stack):
    only_bone = RealDomain(bone_prob=1.0, texture_hu=(0.0, 0.0), thick_prob=0.0, smooth_prob=0.0, noise_prob=0.0,
                           scale_prob=0.0, shift_prob=0.0, fov_si_prob=0.0, fov_across_prob=0.0)
    for augmented in _draws(stack, "sagittal", 4, domain=only_bone):
        hu, before = to_hu(augmented.ct[30]), to_hu(stack.ct[30])
        core, rim, soft = np.isclose(before, 181.0, atol=1.0), np.isclose(before, 541.0, atol=1.0), before < 50
        assert 85.0 - 1 <= hu[core].mean() <= 160.0 + 1
        assert 260.0 - 1 <= hu[rim].mean() <= 460.0 + 1
        assert np.allclose(hu[soft], before[soft], atol=1.0)


def test_field_of_view_ends_in_the_context_never_in_the_body(stack):
    fov = RealDomain(bone_prob=0.0, thick_prob=0.0, smooth_prob=0.0, noise_prob=0.0, scale_prob=0.0,
                     shift_prob=0.0, fov_si_prob=1.0, fov_across_prob=1.0)
    body = stack.body >= 0.5
    cut_any = False
    for view in ("sagittal", "coronal"):
        index = 30 if view == "sagittal" else 45
        plain = make_sample(stack, view, index)
        for augmented in _draws(stack, view, 8, domain=fov):
            outside = augmented.ct == -1.0
            assert not (outside & body).any()
            assert not augmented.labels[outside & (stack.ct > -1.0)].any()  # labels cut with the CT
            s = make_sample(augmented, view, index)
            assert np.array_equal(s.target, plain.target) and s.height_mm == plain.height_mm
            band = slice(BAND_TOP, BAND_TOP + BAND_MM)
            assert (s.adjacent <= plain.adjacent).all()  # neighbours only lost, never gained
            cut_any |= bool((s.ct[:BAND_TOP] == -1).all(axis=1).any() or (s.ct[band] == -1).all(axis=0).any())
    assert cut_any
