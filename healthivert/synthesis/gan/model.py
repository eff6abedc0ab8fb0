"""The trained HealthiVert-GAN as one object: generator, HGAM fracture classifier, config;
batching of canvas samples into network inputs; safetensors storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.visualize import GradCAMpp

from healthivert.models import sha256_file
from healthivert.synthesis.gan.calibration import HeightCalibration
from healthivert.synthesis.gan.canvas import CanvasSample, band_mask, repack_window, shown_rows
from healthivert.synthesis.gan.networks import GANConfig, Generator, cam_layer, fracture_classifier
from healthivert.weights import load_prefixed, prefixed, read_weights, write_weights

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "synthesizer_gan.safetensors"


def weights_digest(path: str | Path = DEFAULT_WEIGHTS) -> str:
    """SHA-256 (hex) of a weights file: what measurements through that GAN are keyed by."""
    return sha256_file(path)


class BatchGradCAMpp(GradCAMpp):
    """MONAI's Grad-CAM++ for a batch of windows in one forward and backward pass.

    MONAI 1.6's ``GradCAMpp.compute_map`` multiplies the gradient by ``exp(score)`` with the
    score of shape (B,) broadcast against the gradient's last spatial axis, which is right only
    for a batch of one; calling it window by window cost three quarters of the GAN's inference
    time on the CPU. This is its ``compute_map`` with the score broadcast per sample; hooks,
    upsampling and normalisation stay MONAI's.
    """

    def compute_map(self, x, class_idx=None, retain_graph=False, layer_idx=-1, **kwargs):  # type: ignore[override]
        _, acti, grad = self.nn_module(x, class_idx=class_idx, retain_graph=retain_graph, **kwargs)
        acti, grad = acti[layer_idx], grad[layer_idx]
        b, c, *spatial = grad.shape
        ones = [1] * len(spatial)
        alpha_nr = grad.pow(2)
        alpha_dr = alpha_nr.mul(2) + acti.mul(grad.pow(3)).view(b, c, -1).sum(-1).view(b, c, *ones)
        alpha_dr = torch.where(alpha_dr != 0.0, alpha_dr, torch.ones_like(alpha_dr))
        alpha = alpha_nr.div(alpha_dr + 1e-7)
        relu_grad = F.relu(self.nn_module.score.exp().view(b, 1, *ones) * grad)
        weights = (alpha * relu_grad).view(b, c, -1).sum(-1).view(b, c, *ones)
        return F.relu((weights * acti).sum(1, keepdim=True))


@dataclass
class GANModel:
    """Generator and HGAM classifier with their config; ``use_attention`` False feeds an
    all-ones inverted attention map (no HGAM); ``calibration`` maps the pseudo-healthy column
    heights (the identity until ``calibrate_synthesizer`` fits it)."""

    config: GANConfig
    generator: Generator
    classifier: torch.nn.Module
    use_attention: bool = True
    calibration: HeightCalibration = field(default_factory=HeightCalibration)
    _cam: BatchGradCAMpp | None = field(default=None, repr=False)

    @classmethod
    def create(cls, config: GANConfig, use_attention: bool = True) -> GANModel:
        return cls(config, Generator(config), fracture_classifier(config), use_attention)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks stored in a weights file, by the name their tensors are prefixed with."""
        return {"generator": self.generator, "classifier": self.classifier}

    def to(self, device: torch.device | str) -> GANModel:
        self.generator.to(device)
        self.classifier.to(device)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.generator.parameters()).device

    def attention(self, windows: torch.Tensor) -> torch.Tensor:
        """Grad-CAM++ maps (B, 1, H, W) in [0, 1] of the "fracture" logit on unmasked windows."""
        if not self.use_attention:
            return torch.zeros_like(windows)
        was_training = self.classifier.training
        self.classifier.eval()
        if self._cam is None:  # built once: each GradCAMpp registers hooks on the classifier
            self._cam = BatchGradCAMpp(nn_module=self.classifier, target_layers=cam_layer(self.config))
        with torch.enable_grad():
            maps = self._cam(x=windows.detach().clone().requires_grad_(True), class_idx=1)
        self.classifier.train(was_training)
        self.classifier.zero_grad(set_to_none=True)
        return torch.nan_to_num(maps.detach(), nan=0.0).clamp(0, 1)

    def inputs(self, samples: list[CanvasSample]) -> dict[str, torch.Tensor]:
        """Network inputs and truths for a list of canvas samples (on the model's device)."""
        dev = self.device
        windows = torch.from_numpy(np.stack([s.window for s in samples])[:, None]).to(dev)
        cams = self.attention(windows).cpu().numpy()[:, 0]
        band = band_mask()
        hidden = ~shown_rows(self.config.context_mm)  # the truth is cut there too (the
        # discriminator would otherwise tell the real slice by its outer rows)
        ct = np.stack([np.where(hidden[:, None], -1.0, s.ct) for s in samples])
        adjacent = np.stack([np.where(hidden[:, None], 0.0, s.adjacent) for s in samples])
        x = np.zeros((len(samples), 5, *band.shape), np.float32)
        for i, s in enumerate(samples):
            x[i, 0] = ct[i] * (1 - band)
            x[i, 1] = band
            x[i, 2] = s.position
            x[i, 3] = 1.0 if s.view == "sagittal" else -1.0
            x[i, 4] = 1.0 - repack_window(cams[i], s, 0.0)
            x[i, 4, hidden] = 1.0
            if not self.config.attention_in_band:
                x[i, 4] = np.where(band > 0, 1.0, x[i, 4])
        def as_t(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(dev)

        return {"input": as_t(x), "ct": as_t(ct[:, None]),
                "target": as_t(np.stack([s.target for s in samples])[:, None]),
                "adjacent": as_t(adjacent[:, None]),
                "height": as_t(np.array([s.height_mm for s in samples]))}


def save_gan(model: GANModel, path: str | Path, card: dict | None = None) -> Path:
    """Generator + classifier weights as safetensors; config, height calibration and card in
    its metadata."""
    meta = {"config": model.config.to_dict(), "use_attention": model.use_attention,
            "height_calibration": model.calibration.to_dict(), "card": card or {}}
    return write_weights(path, prefixed(model.modules()), meta)


def load_gan(path: str | Path = DEFAULT_WEIGHTS, device: str = "cpu") -> tuple[GANModel, dict]:
    """The GAN and its card from a safetensors file; a missing or foreign file is an InputError
    (never a silent run with random weights)."""
    state, meta = read_weights(path, "HealthiVert-GAN",
                               "healthivert train synthesizer --config pipelines/synthesizer.yaml", device)
    model = GANModel.create(GANConfig.from_dict(meta["config"]), meta["use_attention"])
    if "height_calibration" in meta:  # weights written before calibration existed: the identity
        model.calibration = HeightCalibration.from_dict(meta["height_calibration"])
    load_prefixed(state, model.modules())
    for module in model.modules().values():
        module.eval()
    return model.to(device), meta.get("card", {})
