"""HealthiVert-GAN networks, losses and storage: shapes, gradient flow of every generator term
(the edge loss included), per-sample contextual attention, checkpoint round trip."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from healthivert.errors import InputError
from healthivert.synthesis.gan.canvas import BAND_MM, BAND_TOP, COLS, ROWS, band_mask
from healthivert.synthesis.gan.losses import LossWeights, discriminator_loss, edge_loss, generator_losses
from healthivert.synthesis.gan.model import GANModel, load_gan, save_gan
from healthivert.synthesis.gan.networks import ContextualAttention, GANConfig, discriminators
from tests.tiny_gan import TINY


def fake_batch(n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    band = torch.from_numpy(band_mask())[None, None].expand(n, 1, ROWS, COLS)
    ct = torch.rand(n, 1, ROWS, COLS, generator=g) * 2 - 1
    target = torch.zeros(n, 1, ROWS, COLS)
    target[:, :, BAND_TOP + 8:BAND_TOP + 32, 20:60] = 1
    adjacent = torch.zeros(n, 1, ROWS, COLS)
    adjacent[:, :, :BAND_TOP - 6, 20:60] = 1
    x = torch.cat([ct * (1 - band), band, torch.zeros(n, 1, ROWS, COLS), torch.ones(n, 1, ROWS, COLS),
                   torch.ones(n, 1, ROWS, COLS)], 1)
    return {"input": x, "ct": ct, "target": target, "adjacent": adjacent, "height": torch.full((n,), 24.0)}


@pytest.fixture(scope="module")
def tiny() -> GANModel:
    torch.manual_seed(0)
    return GANModel.create(TINY)


def test_generator_output_shapes_and_ranges(tiny):
    out = tiny.generator(fake_batch()["input"])
    for key in ("coarse_ct", "fine_ct", "adjacent", "target", "composite"):
        assert out[key].shape == (2, 1, ROWS, COLS), key
    assert out["fine_ct"].abs().max() <= 1 and out["codes"].shape == (2, ROWS // 4, COLS // 4)
    assert out["height"].shape == (2,) and ((out["height"] >= 0) & (out["height"] <= BAND_MM)).all()
    # outside the band the composite is the input itself
    x = fake_batch()["input"]
    outside = x[:, 1:2] == 0
    assert torch.equal(out["composite"][outside], x[:, :1][outside])


def test_every_generator_loss_term_reaches_the_generator(tiny):
    """Each term alone gives a non-zero gradient on generator weights; the edge loss reaches
    the fine generator's output layer (it is computed on the soft mask, not a binarised one)."""
    batch = fake_batch()
    discs = discriminators(TINY)
    for name in ("l1", "dice_adjacent", "dice_target", "bce_target", "edge", "height", "vq", "adversarial"):
        tiny.generator.zero_grad(set_to_none=True)
        out = tiny.generator(batch["input"])
        terms = generator_losses(batch, out, discs, LossWeights())
        terms[name].backward()
        grads = [p.grad for p in tiny.generator.parameters() if p.grad is not None]
        total = sum(float(g.abs().sum()) for g in grads)
        assert total > 0, f"{name} sends no gradient to the generator"
    tiny.generator.zero_grad(set_to_none=True)
    out = tiny.generator(batch["input"])
    edge_loss(out["target"], batch["target"]).backward()
    assert float(tiny.generator.fine.decoder.out.weight.grad.abs().sum()) > 0


def test_edge_loss_is_zero_for_a_perfect_soft_mask_and_positive_otherwise():
    truth = fake_batch()["target"]
    perfect = torch.where(truth > 0, torch.tensor(20.0), torch.tensor(-20.0))
    assert float(edge_loss(perfect, truth)) < 1e-6
    assert float(edge_loss(torch.zeros_like(truth), truth)) > 0.01


def test_discriminator_step_changes_only_what_it_should(tiny):
    batch = fake_batch()
    discs = discriminators(TINY)
    tiny.generator.zero_grad(set_to_none=True)
    out = tiny.generator(batch["input"])
    loss = discriminator_loss(batch, out, discs)
    loss.backward()
    assert all(p.grad is None for p in tiny.generator.parameters())  # generator output detached
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in discs.parameters())


def test_contextual_attention_rebuilds_holes_from_their_own_sample_only():
    """Each sample's hole is filled from that sample's known positions (the published code
    used the first sample's mask for the whole batch)."""
    att = ContextualAttention()
    f = torch.zeros(2, 3, 6, 6)
    f[0, 0] = 1.0  # sample 0's known features: channel 0
    f[1, 1] = 1.0  # sample 1's: channel 1
    hole = torch.zeros(2, 1, 6, 6)
    hole[0, :, 2:4, 2:4] = 1
    hole[1, :, 0:2, 0:2] = 1
    out = att(f * (1 - hole), hole)
    assert torch.allclose(out[0, :, 2:4, 2:4], torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 2, 2), atol=1e-4)
    assert torch.allclose(out[1, :, 0:2, 0:2], torch.tensor([0, 1.0, 0])[:, None, None].expand(3, 2, 2), atol=1e-4)
    assert torch.equal(out * (1 - hole), f * (1 - hole))


def test_attention_maps_are_per_sample_unit_range(tiny):
    windows = torch.rand(3, 1, ROWS, COLS) * 2 - 1
    maps = tiny.attention(windows)
    assert maps.shape == (3, 1, ROWS, COLS) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert not any(p.grad is not None for p in tiny.classifier.parameters())


def test_attention_of_a_batch_is_each_window_alone(tiny):
    """The batched Grad-CAM++ gives every window the map MONAI's GradCAMpp gives it alone."""
    from monai.visualize import GradCAMpp

    from healthivert.synthesis.gan.networks import cam_layer

    windows = torch.rand(5, 1, ROWS, COLS) * 2 - 1
    batched = tiny.attention(windows)
    tiny.classifier.eval()
    cam = GradCAMpp(nn_module=tiny.classifier, target_layers=cam_layer(tiny.config))
    with torch.enable_grad():
        alone = torch.cat([cam(x=w[None].clone().requires_grad_(True), class_idx=1) for w in windows])
    alone = torch.nan_to_num(alone.detach(), nan=0.0).clamp(0, 1)
    assert batched.shape == alone.shape and float(alone.max() - alone.min()) > 0.5
    assert torch.allclose(batched, alone, atol=2e-4)  # float32 rounding of batched convolutions


def test_checkpoint_round_trips(tmp_path, tiny):
    path = save_gan(tiny, tmp_path / "g.safetensors", {"trained_on": "nothing"})
    loaded, card = load_gan(path)
    assert card == {"trained_on": "nothing"} and loaded.config == TINY
    x = fake_batch()["input"]
    tiny.generator.eval()
    with torch.no_grad():
        a, b = tiny.generator(x), loaded.generator(x)
    tiny.generator.train()
    assert torch.allclose(a["fine_ct"], b["fine_ct"]) and torch.equal(a["codes"], b["codes"])
    assert np.allclose(tiny.attention(x[:, :1]).numpy(), loaded.attention(x[:, :1]).numpy(), atol=1e-6)


def test_missing_or_foreign_weights_fail_loudly(tmp_path):
    with pytest.raises(InputError, match="missing"):
        load_gan(tmp_path / "none.safetensors")
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(InputError, match="not HealthiVert-GAN"):
        load_gan(tmp_path / "other.safetensors")


@pytest.mark.parametrize("height", [16.0, 30.0, 36.0])
def test_limited_context_hides_the_crop_end_that_follows_the_body_height(height):
    """The crop ends 40 mm from the centroid: beyond a tall body's endplates fewer rows remain,
    and the canvas's outer rows run into fill, as many as the body is tall. With
    ``context_mm`` the network input, and the truth outside the band, are the same whatever
    the height; with the whole canvas shown, the tall body's input differs (the cue it hides)."""
    from healthivert.synthesis.gan.canvas import make_sample
    from tests.synthesis.test_gan_canvas import column_stack

    def stack(h: float):  # neighbours keep 8 mm discs; the crop ends at +-40 mm
        return column_stack({19: (-h / 2 - 8 - 10, 20), 20: (0, h), 21: (h / 2 + 8 + 10, 20)})

    def batch(cfg: GANConfig, h: float) -> dict[str, torch.Tensor]:
        return GANModel.create(cfg, use_attention=False).inputs([make_sample(stack(h), "sagittal", 30)])

    limited = replace(TINY, context_mm=20)
    ref, s = batch(limited, 20.0), batch(limited, height)
    assert torch.equal(ref["input"], s["input"])
    outside = torch.from_numpy(band_mask()) == 0  # the band holds the body: its truth differs
    for key in ("ct", "adjacent"):
        assert torch.equal(ref[key][..., outside], s[key][..., outside]), key
    assert float(s["ct"][0, 0, :BAND_TOP - 20].max()) == -1.0 and float(s["adjacent"][0, 0, :BAND_TOP - 20].max()) == 0
    whole_ref, whole = batch(TINY, 20.0), batch(TINY, height)
    assert torch.equal(whole_ref["input"], whole["input"]) == (height < 30)  # the crop end shows


def test_context_beyond_the_canvas_is_refused():
    with pytest.raises(ValueError, match="context_mm"):
        GANConfig(context_mm=BAND_TOP + 1)
