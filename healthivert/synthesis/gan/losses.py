"""HealthiVert-GAN losses. Every term is differentiable in the generator's soft outputs:
the edge loss (EEM) compares Sobel magnitudes of the *soft* segmentation, not a binarised
one (the published code binarised it, so that term passed no gradient)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from healthivert.synthesis.gan.networks import local_crop


@dataclass(frozen=True)
class LossWeights:
    """Weights of the generator's terms (L1 is a per-pixel mean inside the band, not a sum)."""

    adversarial: float = 0.1
    l1: float = 10.0
    dice_adjacent: float = 1.0
    dice_target: float = 1.5
    bce_target: float = 1.0
    edge: float = 10.0
    height: float = 4.0
    vq: float = 1.0

    def to_dict(self) -> dict:
        return asdict(self)


_dice = DiceLoss(sigmoid=True, batch=False, smooth_nr=1e-5, smooth_dr=1e-5)
_SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def sobel_magnitude(x: torch.Tensor) -> torch.Tensor:
    """Sobel gradient magnitude of (B, 1, H, W), differentiable (a fixed 3x3 convolution)."""
    k = torch.stack([_SOBEL, _SOBEL.T])[:, None].to(x)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k)
    return torch.sqrt((g ** 2).sum(1, keepdim=True) + 1e-8)


def edge_loss(seg_logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """EEM: MSE between Sobel magnitudes of the soft segmentation and of the truth."""
    return F.mse_loss(sobel_magnitude(torch.sigmoid(seg_logits)), sobel_magnitude(truth))


def band_l1(pred: torch.Tensor, truth: torch.Tensor, band: torch.Tensor) -> torch.Tensor:
    """Mean absolute error inside the band, per sample, then over the batch."""
    return ((pred - truth).abs() * band).sum(dim=(1, 2, 3)).div(band.sum(dim=(1, 2, 3)).clamp_min(1)).mean()


def relative_height_error(pred_mm: torch.Tensor, truth_mm: torch.Tensor) -> torch.Tensor:
    """Mean |predicted - true| / true height."""
    return ((pred_mm - truth_mm).abs() / truth_mm.clamp_min(1.0)).mean()


def adversarial(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Vanilla GAN loss (BCE with logits) against all-real or all-fake."""
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    return F.binary_cross_entropy_with_logits(logits, target)


def disc_inputs(batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor] | None) -> dict[str, torch.Tensor]:
    """What each discriminator sees: the truth (``out`` None) or the generator's output."""
    band = batch["input"][:, 1:2]
    if out is None:
        ct, seg = batch["ct"], batch["target"]
    else:
        ct, seg = out["composite"], torch.sigmoid(out["target"])
    return {"whole": torch.cat([ct, band], 1), "seg": torch.cat([seg, ct], 1), "local": local_crop(ct)}


def generator_losses(batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], discs, w: LossWeights
                     ) -> dict[str, torch.Tensor]:
    """Every generator term (weighted) and their sum under "total"."""
    band = batch["input"][:, 1:2]
    terms = {
        "l1": w.l1 * (band_l1(out["coarse_ct"], batch["ct"], band) + band_l1(out["fine_ct"], batch["ct"], band)),
        "dice_adjacent": w.dice_adjacent * _dice(out["adjacent"], batch["adjacent"]),
        "dice_target": w.dice_target * _dice(out["target"], batch["target"]),
        "bce_target": w.bce_target * F.binary_cross_entropy_with_logits(out["target"], batch["target"]),
        "edge": w.edge * edge_loss(out["target"], batch["target"]),
        "height": w.height * (relative_height_error(out["coarse_height"], batch["height"])
                              + relative_height_error(out["height"], batch["height"])),
        "vq": w.vq * out["vq_loss"],
    }
    if w.adversarial > 0 and discs is not None:
        fake = disc_inputs(batch, out)
        terms["adversarial"] = w.adversarial * torch.stack(
            [adversarial(discs[k](fake[k])[-1], True) for k in discs]).mean()
    terms["total"] = torch.stack(list(terms.values())).sum()
    return terms


def discriminator_loss(batch: dict[str, torch.Tensor], out: dict[str, torch.Tensor], discs) -> torch.Tensor:
    """Mean over the three discriminators of real-vs-fake BCE (generator output detached)."""
    real = disc_inputs(batch, None)
    fake = {k: v.detach() for k, v in disc_inputs(batch, out).items()}
    return torch.stack([(adversarial(discs[k](real[k])[-1], True) + adversarial(discs[k](fake[k])[-1], False)) / 2
                        for k in discs]).mean()
