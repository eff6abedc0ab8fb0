"""Pseudo-healthy synthesis: what each vertebra looked like before it fractured."""

from healthivert.synthesis import prior as _prior  # noqa: F401  (registers "prior")
from healthivert.synthesis.base import SYNTHESIZERS, PseudoHealthy, get_synthesizer, register_synthesizer


@register_synthesizer("gan")
def _gan_synthesizer(weights: str | None = None):
    """HealthiVert-GAN (``synthesis.gan.infer.gan_synthesizer``), imported on first use: it
    brings PyTorch and MONAI, which a run with the prior, and each batch worker, need not load."""
    from healthivert.synthesis.gan.infer import gan_synthesizer

    return gan_synthesizer(weights)


__all__ = ["SYNTHESIZERS", "PseudoHealthy", "get_synthesizer", "register_synthesizer"]
