"""Pseudo-healthy synthesis: what each vertebra looked like before it fractured."""

from healthivert.synthesis import prior as _prior  # noqa: F401  (registers "prior")
from healthivert.synthesis.base import SYNTHESIZERS, PseudoHealthy, get_synthesizer, register_synthesizer
from healthivert.synthesis.gan import infer as _gan  # noqa: F401, E402  (registers "gan")

__all__ = ["SYNTHESIZERS", "PseudoHealthy", "get_synthesizer", "register_synthesizer"]
