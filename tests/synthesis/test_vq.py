"""The SimVQ / VQ bottleneck and its codebook-usage metrics."""

from __future__ import annotations

import math

import pytest
import torch

from healthivert.synthesis.vq import CodeUsage, VQBottleneck, VQConfig


@pytest.mark.parametrize("kind", ["simvq", "vq"])
def test_shapes_and_gradient_reach_the_input(kind):
    torch.manual_seed(0)
    vq = VQBottleneck(VQConfig(kind=kind, dim=8, codebook_size=32))
    x = torch.randn(2, 8, 6, 5, requires_grad=True)
    q, codes, loss = vq(x)
    assert q.shape == x.shape and codes.shape == (2, 6, 5)
    assert int(codes.min()) >= 0 and int(codes.max()) < 32
    (q.square().mean() + loss).backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0  # straight-through / rotation trick


def test_simvq_trains_only_its_linear_map_of_a_frozen_codebook():
    vq = VQBottleneck(VQConfig(kind="simvq", dim=8, codebook_size=32))
    trainable = [n for n, p in vq.named_parameters() if p.requires_grad]
    assert trainable and all("transform" in n for n in trainable), trainable


@pytest.mark.parametrize(
    ("codes", "size", "utilisation", "perplexity"),
    [
        ([0, 1, 2, 3], 4, 1.0, 4.0),
        ([0, 0, 0, 0], 4, 0.25, 1.0),
        ([0, 0, 1, 1], 8, 0.25, 2.0),
    ],
)
def test_code_usage(codes, size, utilisation, perplexity):
    usage = CodeUsage(size)
    usage.update(torch.tensor(codes))
    assert usage.utilisation == pytest.approx(utilisation)
    assert usage.perplexity == pytest.approx(perplexity)


@pytest.mark.parametrize("bad", [{"kind": "gumbel"}, {"codebook_size": 1}, {"dim": 0}])
def test_config_checks(bad):
    with pytest.raises(ValueError):
        VQConfig(**bad)


def test_perplexity_of_empty_usage_is_one():
    assert math.isclose(CodeUsage(4).perplexity, 1.0)


CUDA = pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"))


@pytest.mark.parametrize("device", ["cpu", CUDA])
def test_data_init_fits_simvq_codes_to_the_features_covariance_once(device):
    torch.manual_seed(0)
    vq = VQBottleneck(VQConfig(dim=8, codebook_size=64, data_init=True)).to(device)
    scale = torch.linspace(0.2, 3.0, 8, device=device)
    z = torch.randn(4, 8, 12, 12, device=device) * scale[None, :, None, None]
    vq.eval()
    vq(z)  # inference never fits
    assert not bool(vq.initialised)
    vq.train()
    vq(z)
    assert bool(vq.initialised)
    codes_cov = torch.cov(vq.quantizer.codebook.detach().T)
    feats_cov = torch.cov(z.movedim(1, -1).reshape(-1, 8).T)
    assert torch.allclose(codes_cov, feats_cov, rtol=0.05, atol=0.05)
    before = vq.quantizer.codebook.detach().clone()
    vq(z * 10)  # later batches do not refit
    assert torch.equal(vq.quantizer.codebook.detach(), before)
    fresh = VQBottleneck(VQConfig(dim=8, codebook_size=64, data_init=True)).to(device).train()
    fresh.load_state_dict(vq.state_dict())  # a loaded bottleneck keeps its codes
    fresh(z)
    assert torch.equal(fresh.quantizer.codebook.detach(), before)


def test_restarted_codes_land_on_features_and_bring_unused_codes_back():
    """Features gathered far from the codebook use few codes; restarting the unused ones on the
    batch's features puts each exactly on a feature (through SimVQ's map) and spreads the use."""
    torch.manual_seed(0)
    vq = VQBottleneck(VQConfig(dim=8, codebook_size=32)).train()
    z = 5.0 + 0.3 * torch.randn(2, 8, 10, 10)  # one tight cluster, off the random codebook
    _, codes, _ = vq(z)
    usage = CodeUsage(32)
    usage.update(codes)
    dead = usage.counts == 0
    assert usage.utilisation < 0.5
    live_before = vq.quantizer.codebook.detach()[~dead].clone()
    moved = vq.restart_codes(dead, torch.Generator().manual_seed(1))
    assert moved == int(dead.sum())
    features = z.movedim(1, -1).reshape(-1, 8)
    restarted = vq.quantizer.codebook.detach()[dead]
    nearest = torch.cdist(restarted, features, compute_mode="donot_use_mm_for_euclid_dist").min(dim=1).values
    assert float(nearest.max()) < 1e-3  # each restarted code is one of the features
    assert len(torch.unique(restarted, dim=0)) == moved  # on distinct features
    after = CodeUsage(32)
    after.update(vq(z)[1])
    assert after.utilisation > 2 * usage.utilisation
    assert torch.equal(vq.quantizer.codebook.detach()[~dead], live_before)  # used codes stay put


def test_restart_needs_a_training_batch_and_simvq():
    vq = VQBottleneck(VQConfig(dim=8, codebook_size=16))
    assert vq.restart_codes(torch.ones(16, dtype=torch.bool)) == 0  # nothing seen yet: nothing moves
    vq.eval()(torch.randn(1, 8, 4, 4))
    assert vq.restart_codes(torch.ones(16, dtype=torch.bool)) == 0  # inference batches are not kept
    with pytest.raises(ValueError, match="SimVQ"):
        VQBottleneck(VQConfig(kind="vq", dim=8, codebook_size=16)).restart_codes(torch.ones(16, dtype=torch.bool))
