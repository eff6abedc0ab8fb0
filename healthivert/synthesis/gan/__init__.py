"""HealthiVert-GAN (arXiv 2503.05990) with a SimVQ bottleneck: canvas, networks, losses,
model storage and the ``gan`` synthesizer."""

from healthivert.synthesis.gan.canvas import VertebraStack, make_sample
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, GANModel, load_gan, save_gan
from healthivert.synthesis.gan.networks import GANConfig

__all__ = ["DEFAULT_WEIGHTS", "GANConfig", "GANModel", "VertebraStack", "load_gan", "make_sample", "save_gan"]
