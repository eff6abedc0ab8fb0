"""The segmenter's configuration: network shape, spacing and intensity window (one place)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

#: output classes of the network
CLASSES = ("background", "vertebra", "sacrum")
VERTEBRA_CLASS, SACRUM_CLASS = 1, 2


@dataclass(frozen=True)
class SegmenterConfig:
    """Everything inference and training must agree on.

    Attributes:
        spacing_mm: isotropic voxel size the network works at.
        hu_window: HU range mapped to [0, 1] (clipped).
        patch: training patch and sliding-window size (voxels at ``spacing_mm``).
        channels, strides, res_units: MONAI UNet shape.
    """

    spacing_mm: float = 2.0
    hu_window: tuple[float, float] = (-250.0, 1250.0)
    patch: tuple[int, int, int] = (80, 80, 80)
    channels: tuple[int, ...] = (16, 32, 64, 128)
    strides: tuple[int, ...] = (2, 2, 2)
    res_units: int = 1

    def __post_init__(self) -> None:
        if self.spacing_mm <= 0:
            raise ValueError(f"spacing_mm must be positive; got {self.spacing_mm}")
        if len(self.channels) != len(self.strides) + 1:
            raise ValueError("channels needs one more entry than strides")
        factor = 1
        for s in self.strides:
            factor *= s
        if any(p % factor for p in self.patch):
            raise ValueError(f"patch {self.patch} must be divisible by {factor}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SegmenterConfig:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict) -> SegmenterConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    @classmethod
    def from_file(cls, path: str | Path) -> SegmenterConfig:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
