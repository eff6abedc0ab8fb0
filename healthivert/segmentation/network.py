"""The segmentation network (MONAI UNet) and its weights (safetensors, with the config)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from monai.networks.nets import UNet
from safetensors.torch import load_file, save_file

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write
from healthivert.segmentation.config import CLASSES, SegmenterConfig

DEFAULT_WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "segmenter_unet.safetensors"


def build_network(cfg: SegmenterConfig) -> UNet:
    """A 3-D MONAI UNet: 1 input channel (windowed CT), one output per class in ``CLASSES``."""
    return UNet(spatial_dims=3, in_channels=1, out_channels=len(CLASSES), channels=cfg.channels,
                strides=cfg.strides, num_res_units=cfg.res_units, norm="instance")


def save_weights(model: torch.nn.Module, cfg: SegmenterConfig, path: str | Path, card: dict | None = None) -> Path:
    """Weights as safetensors; the config (and a card) travel in its metadata."""
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = {"config": cfg.to_json(), "card": json.dumps(card or {})}
    return atomic_write(path, lambda tmp: save_file(state, str(tmp), metadata=meta))


def load_weights(path: str | Path = DEFAULT_WEIGHTS, device: str = "cpu") -> tuple[UNet, SegmenterConfig, dict]:
    """The network, its config and card from a safetensors file (fails loudly if missing)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: segmentation weights are missing; train them with "
                         "`healthivert train segmenter --config pipelines/segmenter.yaml`")
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "config" not in meta:
        raise InputError(f"{path}: not a HealthiVert segmenter (no config in its metadata)")
    cfg = SegmenterConfig.from_json(meta["config"])
    model = build_network(cfg)
    model.load_state_dict(load_file(str(path), device=device))
    model.eval()
    return model.to(device), cfg, json.loads(meta.get("card", "{}"))
