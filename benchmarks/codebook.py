"""Codebook use of the SimVQ bottleneck against plain VQ, same data, steps and seed.

    .venv/bin/python benchmarks/codebook.py [--steps 400] [--codebook 512]

A small convolutional autoencoder (the bottleneck's setting in the generator, without the
GAN) is trained on sagittal slices of phantom CTs, windowed [-300, 800] HU -> [-1, 1] as the
HealthiVert-GAN generator sees them, once with each quantiser. Prints a markdown table:
codebook utilisation and perplexity on held-out slices, and reconstruction error.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.synthesis.vq import CodeUsage, VQBottleneck, VQConfig

SIZE = 96


def sagittal_slices(seeds: range) -> torch.Tensor:
    """Mid-spine sagittal slices (N, 1, SIZE, SIZE) of phantom CTs, windowed to [-1, 1]."""
    out = []
    for seed in seeds:
        study = make_phantom(PhantomConfig(top="T11", bottom="L3", slice_mm=1.5), seed)
        ct, mask = study.ct.array, study.mask.array
        xs = np.flatnonzero(mask.any(axis=(1, 2)))
        for x in np.linspace(xs[len(xs) // 4], xs[3 * len(xs) // 4], 8).astype(int):
            img = torch.from_numpy(np.clip((ct[x].astype(np.float32) + 300) / 550 - 1, -1, 1))[None, None]
            out.append(F.interpolate(img, size=(SIZE, SIZE), mode="bilinear", align_corners=False)[0])
    return torch.stack(out)


class AutoEncoder(nn.Module):
    def __init__(self, vq: VQConfig) -> None:
        super().__init__()
        self.encode = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ELU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ELU(),
                                    nn.Conv2d(64, vq.dim, 3, 1, 1))
        self.vq = VQBottleneck(vq)
        self.decode = nn.Sequential(nn.ConvTranspose2d(vq.dim, 64, 4, 2, 1), nn.ELU(),
                                    nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ELU(), nn.Conv2d(32, 1, 3, 1, 1))

    def forward(self, x):
        q, codes, loss = self.vq(self.encode(x))
        return torch.tanh(self.decode(q)), codes, loss


def run(kind: str, train: torch.Tensor, val: torch.Tensor, steps: int, codebook: int, seed: int) -> dict:
    torch.manual_seed(seed)
    cfg = VQConfig(kind=kind, dim=32, codebook_size=codebook)
    model = AutoEncoder(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    gen = torch.Generator().manual_seed(seed)
    t = time.time()
    for step in range(steps):
        lr_scale = min(1.0, (step + 1) / 50)  # warm-up
        for g in opt.param_groups:
            g["lr"] = 2e-4 * lr_scale
        batch = train[torch.randint(len(train), (8,), generator=gen)]
        recon, _, vq_loss = model(batch)
        loss = F.l1_loss(recon, batch) + vq_loss
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    model.eval()
    usage = CodeUsage(codebook)
    with torch.no_grad():
        recon, codes, _ = model(val)
        usage.update(codes)
    return {"kind": kind, "utilisation": usage.utilisation, "perplexity": usage.perplexity,
            "l1": float(F.l1_loss(recon, val)), "seconds": time.time() - t}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--codebook", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train, val = sagittal_slices(range(7000, 7006)), sagittal_slices(range(7100, 7102))
    rows = [run(kind, train, val, args.steps, args.codebook, args.seed) for kind in ("simvq", "vq")]
    print(f"{len(train)} training / {len(val)} held-out sagittal slices of phantom CTs ({SIZE}x{SIZE}), "
          f"{args.steps} steps, batch 8, codebook {args.codebook} x 32, seed {args.seed}, CPU:\n")
    print("| quantiser | codebook utilisation | perplexity | L1 (held-out) | train s | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        target = ">= 90 %" if r["kind"] == "simvq" else "-"
        print(f"| {r['kind']} | {100 * r['utilisation']:.1f} % | {r['perplexity']:.1f} | {r['l1']:.4f} | "
              f"{r['seconds']:.0f} | {target} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
