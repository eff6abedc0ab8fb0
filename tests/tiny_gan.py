"""An untrained tiny HealthiVert-GAN for tests of mechanics (training loops, calibration,
plumbing) that do not need a good network: about 100 times cheaper than the shipped one."""

from __future__ import annotations

from pathlib import Path

import torch

from healthivert.synthesis.gan.model import GANModel, save_gan
from healthivert.synthesis.gan.networks import GANConfig

TINY = GANConfig(width=8, codebook_size=16, code_dim=4, disc_width=8, classifier_channels=(4, 8))


def save_tiny_gan(path: Path) -> Path:
    """Seeded untrained tiny weights saved at ``path`` (safetensors), as the shipped ones are."""
    torch.manual_seed(0)
    return save_gan(GANModel.create(TINY), path, {"trained_on": "nothing"})
