"""The segmentation network (MONAI UNet) and its weights (safetensors, with the config)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch
from monai.networks.nets import UNet

from healthivert.segmentation.config import CLASSES, SegmenterConfig
from healthivert.weights import read_weights, write_weights

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "segmenter_unet.safetensors"


def build_network(cfg: SegmenterConfig) -> UNet:
    """A 3-D MONAI UNet: 1 input channel (windowed CT), one output per class in ``CLASSES``."""
    return UNet(spatial_dims=3, in_channels=1, out_channels=len(CLASSES), channels=cfg.channels,
                strides=cfg.strides, num_res_units=cfg.res_units, norm="instance")


def save_weights(model: torch.nn.Module, cfg: SegmenterConfig, path: str | Path, card: dict | None = None) -> Path:
    """Weights as safetensors; the config (and a card) travel in its metadata."""
    return write_weights(path, model.state_dict(), {"config": asdict(cfg), "card": card or {}})


def load_weights(path: str | Path = DEFAULT_WEIGHTS, device: str = "cpu") -> tuple[UNet, SegmenterConfig, dict]:
    """The network, its config and card from a safetensors file (fails loudly if missing)."""
    state, meta = read_weights(path, "segmentation",
                               "healthivert train segmenter --config pipelines/segmenter.yaml", device)
    cfg = SegmenterConfig.from_dict(meta["config"])
    model = build_network(cfg)
    model.load_state_dict(state)
    model.eval()
    return model.to(device), cfg, meta.get("card", {})
