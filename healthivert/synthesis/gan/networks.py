"""HealthiVert-GAN networks: coarse generator (SimVQ bottleneck), fine generator with
contextual attention, PatchGAN discriminators and the small fracture classifier for HGAM.

Tensors are (B, C, ROWS, COLS) on the canvas of :mod:`healthivert.synthesis.gan.canvas`.
Generator inputs: channel 0 the masked CT ([-1, 1], 0 in the band), 1 the band mask, 2 the
slice's position across the body, 3 the view (+1 sagittal, -1 coronal), 4 the inverted
attention map (1 - Grad-CAM++).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from monai.networks.nets import Classifier, PatchDiscriminator
from torch import nn

from healthivert.synthesis.gan.canvas import BAND_MM, BAND_TOP, COLS, ROWS
from healthivert.synthesis.vq import VQBottleneck, VQConfig

IN_CHANNELS = 5


@dataclass(frozen=True)
class GANConfig:
    """Network sizes. ``width`` is the first layer's channels (the paper's is 32 at 256 px)."""

    width: int = 16
    vq_kind: str = "simvq"
    codebook_size: int = 64
    code_dim: int | None = 16
    vq_normalise: bool = True
    vq_data_init: bool = True
    dilations: tuple[int, ...] = (2, 4, 8, 16)
    disc_width: int = 16
    classifier_channels: tuple[int, ...] = (8, 16, 32, 64)
    # HGAM's heat map is computed on the unmasked window; inside the band it outlines the real
    # body, so False blanks it there (the input then shows nothing of the target's height)
    attention_in_band: bool = True
    # context rows shown on each side of the band (mm); None shows the whole canvas. The
    # straightened crop reaches 40 mm from the centroid, so a taller body leaves fewer rows
    # beyond its endplates and the canvas's outer rows run into fill: on the shipped cohort a
    # third of the slices, the rows left following the body's height (r = -0.71), a height cue
    # the band was meant to hide (benchmarks/crop_fill.py). 24 mm keeps fill out of 98.7 %.
    context_mm: int | None = None

    def __post_init__(self) -> None:
        self.vq()  # a bad quantiser kind or size fails here, with the config
        if self.context_mm is not None and not 0 <= self.context_mm <= BAND_TOP:
            raise ValueError(f"context_mm must be 0..{BAND_TOP} (mm beside the band); got {self.context_mm}")
        if self.width < 2 or self.width % 2:
            raise ValueError(f"width must be an even number >= 2; got {self.width}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GANConfig:
        data = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)

    def vq(self) -> VQConfig:
        return VQConfig(kind=self.vq_kind, dim=4 * self.width, codebook_size=self.codebook_size,
                        code_dim=self.code_dim, normalise=self.vq_normalise, data_init=self.vq_data_init)


class GatedConv(nn.Module):
    """Gated convolution (DeepFill v2): ELU(features) x sigmoid(gate). Written here because
    neither MONAI nor torch ships one; it is two convolutions in one."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation)
        # He init: torch's default shrinks the signal ~3x a layer, and through ten gated layers
        # the bottleneck's features came out near-constant (every position on one code)
        nn.init.kaiming_normal_(self.conv.weight, nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(x).chunk(2, dim=1)
        return F.elu(f) * torch.sigmoid(g)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class HeightHead(nn.Module):
    """Body height (mm) from pooled features: sigmoid x ``BAND_MM``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(channels, 32), nn.ELU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(x.mean(dim=(2, 3)))).squeeze(1) * BAND_MM


class Encoder(nn.Module):
    """Two stride-2 downsamplings to (4 w) x ROWS/4 x COLS/4."""

    def __init__(self, cin: int, w: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(GatedConv(cin, w, 5), GatedConv(w, 2 * w, 3, 2), GatedConv(2 * w, 2 * w),
                                    GatedConv(2 * w, 4 * w, 3, 2), GatedConv(4 * w, 4 * w))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Decoder(nn.Module):
    """Upsampling back to the canvas; ``guide`` channels (the inverted attention map) are
    concatenated at both upsampled scales. Outputs a CT (tanh) and a segmentation logit."""

    def __init__(self, w: int, guide: int) -> None:
        super().__init__()
        self.d0 = GatedConv(4 * w, 4 * w)
        self.d1 = nn.Sequential(GatedConv(4 * w + guide, 2 * w), GatedConv(2 * w, 2 * w))
        self.d2 = nn.Sequential(GatedConv(2 * w + guide, w), GatedConv(w, w // 2))
        self.out = nn.Conv2d(w // 2, 2, 3, padding=1)
        self.guide = guide

    def forward(self, x: torch.Tensor, guide: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        x = _up(self.d0(x))
        if self.guide:
            x = torch.cat([x, F.interpolate(guide, size=x.shape[2:], mode="bilinear", align_corners=False)], 1)
        x = _up(self.d1(x))
        if self.guide:
            x = torch.cat([x, guide], 1)
        ct, seg = self.out(self.d2(x)).chunk(2, dim=1)
        return torch.tanh(ct), seg


class CoarseGenerator(nn.Module):
    """Masked slice -> coarse CT, adjacent vertebrae's segmentation (logits), height (mm);
    the dilated bottleneck is vector-quantised (SimVQ or plain VQ)."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        w = cfg.width
        self.encoder = Encoder(IN_CHANNELS, w)
        self.dilated = nn.Sequential(*[GatedConv(4 * w, 4 * w, 3, dilation=d) for d in cfg.dilations])
        self.vq = VQBottleneck(cfg.vq())
        self.height = HeightHead(4 * w)
        self.decoder = Decoder(w, guide=1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.dilated(self.encoder(x))
        q, codes, vq_loss = self.vq(z)
        ct, seg = self.decoder(q, x[:, 4:5])
        return {"ct": ct, "seg": seg, "height": self.height(q), "codes": codes, "vq_loss": vq_loss}


class ContextualAttention(nn.Module):
    """Contextual attention (Yu et al. 2018) on a feature map: every hole position is rebuilt as
    a softmax-weighted mix of the known positions, weighted by cosine similarity of 3x3 patches
    (softmax scale 10). Written here: no maintained library ships it. Unlike the published
    code, each sample uses its own hole mask; patches are taken at the feature map's own rate.
    """

    def __init__(self, scale: float = 10.0) -> None:
        super().__init__()
        self.scale = scale

    def forward(self, f: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        b, c, h, w = f.shape
        patches = F.normalize(F.unfold(f, 3, padding=1), dim=1)  # (B, C*9, L)
        score = torch.einsum("bkq,bkl->bql", patches, patches) * self.scale  # query x key
        known = (hole.flatten(1) < 0.5)[:, None, :]  # keys must lie outside the hole
        score = score.masked_fill(~known, torch.finfo(score.dtype).min)
        attn = torch.softmax(score, dim=-1)
        rebuilt = torch.einsum("bql,bcl->bcq", attn, f.flatten(2)).view(b, c, h, w)
        return f * (1 - hole) + rebuilt * hole


class FineGenerator(nn.Module):
    """Coarse composite -> fine CT, the target's segmentation (logits) and a refined height.
    A dilated branch and a contextual-attention branch, merged."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        w = cfg.width
        self.enc_a = Encoder(IN_CHANNELS, w)
        self.dilated = nn.Sequential(*[GatedConv(4 * w, 4 * w, 3, dilation=d) for d in cfg.dilations])
        self.enc_b = Encoder(IN_CHANNELS, w)
        self.attention = ContextualAttention()
        self.after = GatedConv(4 * w, 4 * w)
        self.merge = GatedConv(8 * w, 4 * w)
        self.height = HeightHead(4 * w)
        self.decoder = Decoder(w, guide=0)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        a = self.dilated(self.enc_a(x))
        fb = self.enc_b(x)
        hole = F.interpolate(x[:, 1:2], size=fb.shape[2:], mode="nearest")
        b = self.after(self.attention(fb, hole))
        m = self.merge(torch.cat([a, b], 1))
        ct, seg = self.decoder(m, None)
        return {"ct": ct, "seg": seg, "height": self.height(m)}


class Generator(nn.Module):
    """Coarse then fine. Input (B, 5, ROWS, COLS); the fine stage sees the masked CT with the
    band filled by the coarse CT, and the coarse adjacent segmentation in place of the attention
    channel."""

    def __init__(self, cfg: GANConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.coarse = CoarseGenerator(cfg)
        self.fine = FineGenerator(cfg)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        band = x[:, 1:2]
        c = self.coarse(x)
        composite = x[:, :1] * (1 - band) + c["ct"] * band
        f = self.fine(torch.cat([composite, x[:, 1:4], torch.sigmoid(c["seg"])], 1))
        return {"coarse_ct": c["ct"], "adjacent": c["seg"], "coarse_height": c["height"], "codes": c["codes"],
                "vq_loss": c["vq_loss"], "fine_ct": f["ct"], "target": f["seg"], "height": f["height"],
                "composite": x[:, :1] * (1 - band) + f["ct"] * band}


def discriminators(cfg: GANConfig) -> nn.ModuleDict:
    """Three PatchGANs (MONAI): the whole slice, the target segmentation (with its CT) and the
    band's local crop."""

    def patch(cin: int) -> PatchDiscriminator:
        return PatchDiscriminator(spatial_dims=2, num_layers_d=3, channels=cfg.disc_width, in_channels=cin,
                                  out_channels=1, norm="BATCH")

    return nn.ModuleDict({"whole": patch(2), "seg": patch(2), "local": patch(1)})


def fracture_classifier(cfg: GANConfig) -> Classifier:
    """Fracture / no fracture from an unmasked slice (MONAI ``Classifier``, two logits)."""
    return Classifier(in_shape=(1, ROWS, COLS), classes=2, channels=cfg.classifier_channels,
                      strides=(2,) * len(cfg.classifier_channels))


CLASSIFIER_CAM_LAYER = "net.layer_{}"


def cam_layer(cfg: GANConfig) -> str:
    """The classifier layer Grad-CAM++ reads (its last convolutional block)."""
    return CLASSIFIER_CAM_LAYER.format(len(cfg.classifier_channels) - 1)


def local_crop(x: torch.Tensor) -> torch.Tensor:
    """The band rows x the central 48 columns (the local discriminator's view)."""
    c0 = (COLS - 48) // 2
    return x[:, :, BAND_TOP:BAND_TOP + BAND_MM, c0:c0 + 48]
