"""Vector-quantised latent bottleneck for the HealthiVert-GAN generator: SimVQ or plain VQ.

SimVQ (arXiv 2411.02038) keeps a frozen random codebook and learns one linear map of it,
so every code moves at every step and none dies. Both variants come from
``vector-quantize-pytorch`` (a maintained implementation; not rewritten here), behind one
module with a config switch, and :class:`CodeUsage` measures codebook utilisation and
perplexity so the two can be compared on the same data and steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from vector_quantize_pytorch import SimVQ, VectorQuantize

KINDS = ("simvq", "vq")


@dataclass(frozen=True)
class VQConfig:
    """Bottleneck settings: ``kind`` "simvq" or "vq", feature ``dim``, ``codebook_size``.

    ``code_dim``: codes live in a lower-dimensional space (1x1 projections in and out; None
    keeps ``dim``); ``normalise``: every feature channel is instance-normalised (zero mean, unit
    variance over each slice, no affine; the same in training and inference) before the
    nearest-code search, so the features spread
    over the codebook instead of collapsing onto the few codes aligned with their common
    direction. ``data_init``: on the first training batch the codebook is fitted to the data:
    SimVQ's linear map is set so the codes take the features' mean-free covariance (the frozen
    random codebook is whitened, then coloured by the features' covariance); plain VQ uses the
    library's k-means initialisation, so both start on an equal footing.
    """

    kind: str = "simvq"
    dim: int = 64
    codebook_size: int = 512
    commitment_weight: float = 0.25
    code_dim: int | None = None
    normalise: bool = False
    data_init: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"VQ kind must be one of {KINDS}; got {self.kind!r}")
        if self.dim < 1 or self.codebook_size < 2:
            raise ValueError(f"dim >= 1 and codebook_size >= 2 needed; got {self.dim}, {self.codebook_size}")


class VQBottleneck(nn.Module):
    """Quantise a channel-first feature map (B, C, H, W) with SimVQ or plain VQ.

    Args:
        cfg: the bottleneck's settings.

    Example:
        >>> vq = VQBottleneck(VQConfig(dim=8, codebook_size=16))
        >>> q, codes, loss = vq(torch.randn(2, 8, 4, 4))
        >>> q.shape, codes.shape
        (torch.Size([2, 8, 4, 4]), torch.Size([2, 4, 4]))
    """

    def __init__(self, cfg: VQConfig) -> None:
        super().__init__()
        self.cfg = cfg
        code_dim = cfg.code_dim or cfg.dim
        self.project_in = nn.Conv2d(cfg.dim, code_dim, 1) if cfg.code_dim else nn.Identity()
        self.project_out = nn.Conv2d(code_dim, cfg.dim, 1) if cfg.code_dim else nn.Identity()
        self.norm = nn.InstanceNorm2d(code_dim, affine=False) if cfg.normalise else nn.Identity()
        if cfg.kind == "simvq":
            self.quantizer = SimVQ(dim=code_dim, codebook_size=cfg.codebook_size, channel_first=True,
                                   rotation_trick=True, input_to_quantize_commit_loss_weight=cfg.commitment_weight)
        else:
            self.quantizer = VectorQuantize(dim=code_dim, codebook_size=cfg.codebook_size, accept_image_fmap=True,
                                            channel_last=False, commitment_weight=cfg.commitment_weight,
                                            kmeans_init=cfg.data_init)
        # saved with the weights, so loading a trained bottleneck never re-initialises it
        self.register_buffer("initialised", torch.tensor(not (cfg.data_init and cfg.kind == "simvq")))
        self.recent: torch.Tensor | None = None  # the last training batch's features, for restart_codes

    @torch.no_grad()
    def restart_codes(self, dead: torch.Tensor, generator: torch.Generator | None = None) -> int:
        """Move each SimVQ code marked in ``dead`` (bool, one per code) onto a feature of the last
        training batch, drawn at random without replacement; returns how many moved.

        SimVQ's codes are its frozen random codebook C seen through the learnt map W (codes = C
        W^T), so a code is moved by solving W c = z for its frozen row. Codes still die when the
        features gather where few codes lie (measured: 97 % -> 66 % of 64 codes over 6000 GAN
        steps); restarting unused codes on live features is the remedy of Jukebox and SoundStream.
        Hand-written: the library restarts dead codes for ``VectorQuantize`` only.
        """
        if self.cfg.kind != "simvq":
            raise ValueError("restart_codes is for SimVQ; plain VQ has the library's threshold_ema_dead_code")
        index = torch.nonzero(dead.to(self.quantizer.frozen_codebook.device)).flatten()
        if self.recent is None or len(index) == 0:
            return 0
        take = torch.randperm(len(self.recent), generator=generator)[:len(index)].to(index.device)
        index = index[:len(take)]
        w = self.quantizer.code_transform.weight.double()
        frozen = torch.linalg.lstsq(w, self.recent[take].T.double()).solution.T
        self.quantizer.frozen_codebook[index] = frozen.to(self.quantizer.frozen_codebook.dtype)
        return len(index)

    @torch.no_grad()
    def _fit_codebook(self, z: torch.Tensor) -> None:
        """SimVQ's map W set so the codes C W have the features' covariance (moment matching):
        W = cov(C)^-1/2 cov(z)^1/2. Hand-written: the library offers no data-dependent init."""
        def sqrt_and_inv_sqrt(cov: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            vals, vecs = torch.linalg.eigh(cov + 1e-6 * torch.eye(len(cov), dtype=cov.dtype, device=cov.device))
            vals = vals.clamp_min(1e-6)
            return (vecs * vals.sqrt()) @ vecs.T, (vecs / vals.sqrt()) @ vecs.T

        flat = z.movedim(1, -1).reshape(-1, z.shape[1]).double()
        codes = self.quantizer.frozen_codebook.double()
        _, c_inv = sqrt_and_inv_sqrt(torch.cov(codes.T))
        z_sqrt, _ = sqrt_and_inv_sqrt(torch.cov(flat.T))
        self.quantizer.code_transform.weight.copy_((c_inv @ z_sqrt).T.float())
        self.initialised.fill_(True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(quantised features, code index per position, quantisation loss). Distances in float32."""
        z = self.norm(self.project_in(x.float()))
        if self.training and not bool(self.initialised):
            self._fit_codebook(z)
        if self.training:
            self.recent = z.detach().movedim(1, -1).reshape(-1, z.shape[1]).float()
        quantised, codes, loss = self.quantizer(z)
        return self.project_out(quantised).to(x.dtype), codes, loss


class CodeUsage:
    """Counts code use over a window (an epoch, say): utilisation and perplexity."""

    def __init__(self, codebook_size: int) -> None:
        self.counts = torch.zeros(codebook_size, dtype=torch.long)

    def update(self, codes: torch.Tensor) -> None:
        self.counts += torch.bincount(codes.detach().flatten().cpu(), minlength=len(self.counts))

    @property
    def utilisation(self) -> float:
        """Fraction of the codebook used at least once (0-1)."""
        return float((self.counts > 0).float().mean())

    @property
    def perplexity(self) -> float:
        """exp(entropy) of the code distribution: the number of equally used codes it equals."""
        p = self.counts.float() / max(int(self.counts.sum()), 1)
        p = p[p > 0]
        return float(torch.exp(-(p * p.log()).sum()))
