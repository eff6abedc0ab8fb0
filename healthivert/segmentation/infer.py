"""CT to VerSe-labelled vertebra mask: MONAI preprocessing, sliding-window UNet, identification.

The CT (a RAS :class:`Volume`) is resampled to the network's spacing with MONAI's
``Spacing``, windowed with ``ScaleIntensityRange``, segmented with
``sliding_window_inference``, cleaned (per-class largest pieces, holes filled), identified
(:mod:`healthivert.segmentation.identify`) and resampled back onto the CT's own grid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk
import torch
from monai.data import MetaTensor
from monai.inferers import sliding_window_inference
from monai.transforms import Compose, ScaleIntensityRange, Spacing
from scipy import ndimage

from healthivert.errors import InputError
from healthivert.io.volume import Volume, empty_sitk_image, sitk_from_array
from healthivert.segmentation.config import SACRUM_CLASS, VERTEBRA_CLASS, SegmenterConfig
from healthivert.segmentation.identify import identify

Progress = Callable[[int, int, str], None]


@dataclass
class Segmentation:
    """A predicted mask on the CT's grid (VerSe labels) and notes on how labels were anchored."""

    mask: Volume
    anchored_on_sacrum: bool
    notes: list[str]


def preprocess(ct: Volume, cfg: SegmenterConfig) -> MetaTensor:
    """Windowed CT at the network's spacing, channel first, as a MONAI MetaTensor."""
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(ct.array, dtype=np.float32))[None],
                       affine=torch.from_numpy(ct.affine))
    lo, hi = cfg.hu_window
    transforms = Compose([
        Spacing(pixdim=(cfg.spacing_mm,) * 3, mode="bilinear", padding_mode="border"),
        ScaleIntensityRange(a_min=lo, a_max=hi, b_min=0.0, b_max=1.0, clip=True),
    ])
    return transforms(image)


def resample_labels(labels: Volume, cfg: SegmenterConfig) -> MetaTensor:
    """A label map at the network's spacing (nearest neighbour), channel first."""
    image = MetaTensor(torch.from_numpy(np.ascontiguousarray(labels.array, dtype=np.float32))[None],
                       affine=torch.from_numpy(labels.affine))
    return Spacing(pixdim=(cfg.spacing_mm,) * 3, mode="nearest", padding_mode="zeros")(image)


def _clean(classes: np.ndarray) -> np.ndarray:
    """Fill holes per class (the trabecular core of a thick slice can come out as background)."""
    out = classes.copy()
    for c in (VERTEBRA_CLASS, SACRUM_CLASS):
        filled = ndimage.binary_fill_holes(classes == c)
        out[filled & (out == 0)] = c
    return out


def _to_grid(labels: np.ndarray, affine: np.ndarray, reference: Volume) -> np.ndarray:
    """Nearest-neighbour resampling of a label map onto the reference's grid (SimpleITK)."""
    moving = sitk_from_array(labels.astype(np.uint8), affine)
    target = empty_sitk_image(reference.shape, reference.affine)
    out = sitk.Resample(moving, target, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)
    return np.transpose(sitk.GetArrayFromImage(out), (2, 1, 0))


@torch.no_grad()
def predict_classes(model: torch.nn.Module, image: MetaTensor, cfg: SegmenterConfig) -> np.ndarray:
    """Class index per voxel at the network's spacing."""
    logits = sliding_window_inference(image[None].as_tensor(), roi_size=cfg.patch, sw_batch_size=1,
                                      predictor=model, overlap=0.25, mode="gaussian")
    return logits[0].argmax(dim=0).numpy().astype(np.uint8)


def segment_ct(ct: Volume, model: torch.nn.Module, cfg: SegmenterConfig) -> Segmentation:
    """Segment and label the vertebrae of a CT; the mask is on the CT's grid.

    Raises:
        InputError: no vertebra found (no spine in the field of view).
    """
    image = preprocess(ct, cfg)
    affine = image.affine.numpy()
    classes = _clean(predict_classes(model, image, cfg))
    ident = identify(classes, affine)
    if not (ident.labels > 0).any() or not ((ident.labels > 0) & (ident.labels < 26)).any():
        raise InputError("no vertebra found in the CT: is the spine in the field of view?")
    labels = _to_grid(ident.labels, affine, ct)
    if not ((labels > 0) & (labels < 26)).any():
        raise InputError("no vertebra found in the CT: is the spine in the field of view?")
    return Segmentation(Volume(labels, ct.affine, ct.source), ident.anchored_on_sacrum, ident.notes)
