"""Network weights on disk: safetensors files (tensors only), each carrying its config and model
card as JSON in the file's metadata. The one place they are written and read: the segmenter
(``segmentation.network``), the GAN (``synthesis.gan.model``) and so both trainers go through it.

A missing file, or one without a config in its metadata (not ours), is an InputError, never
a run with random weights.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write


def write_weights(path: str | Path, state: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> Path:
    """``state`` (detached, on the CPU) as a safetensors file, each ``meta`` value stored as JSON;
    written under a temporary name and renamed."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    text = {k: json.dumps(v) for k, v in meta.items()}
    return atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=text))


def read_weights(path: str | Path, kind: str, train_with: str, device: str = "cpu"
                 ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata with its JSON values decoded) of a weights file written by
    :func:`write_weights`; ``kind`` names the model in the errors ("segmentation"), ``train_with``
    is the command that trains it."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {kind} weights are missing; train them with `{train_with}`")
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if "config" not in meta:
        raise InputError(f"{path}: not {kind} weights (no config in the metadata)")
    return load_file(str(path), device=device), {k: json.loads(v) for k, v in meta.items()}


def prefixed(modules: Mapping[str, torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The state of several modules in one mapping, each key prefixed by its module's name."""
    return {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}


def load_prefixed(state: Mapping[str, torch.Tensor], modules: Mapping[str, torch.nn.Module]) -> None:
    """Load each module's part of a :func:`prefixed` state."""
    for name, module in modules.items():
        module.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + ".")})
