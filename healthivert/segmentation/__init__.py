"""CT to a VerSe-labelled vertebra mask: MONAI UNet plus anatomical identification."""

from healthivert.segmentation.config import CLASSES, SegmenterConfig
from healthivert.segmentation.infer import Segmentation, segment_ct
from healthivert.segmentation.network import DEFAULT_WEIGHTS, build_network, load_weights, save_weights

__all__ = [
    "CLASSES",
    "DEFAULT_WEIGHTS",
    "Segmentation",
    "SegmenterConfig",
    "build_network",
    "load_weights",
    "save_weights",
    "segment_ct",
]
