"""CT to VerSe-labelled vertebra mask: MONAI preprocessing, sliding-window UNet, identification.

The CT (a RAS :class:`Volume`) is resampled to the network's spacing with MONAI's
``Spacing``, windowed with ``ScaleIntensityRange``, segmented with
``sliding_window_inference``, cleaned (per-class largest pieces, holes filled), identified
(:mod:`healthivert.segmentation.identify`) and resampled back onto the CT's own grid: the
bone outline from the linearly resampled foreground probability, each voxel of it taking the
label of the nearest identified voxel, finished at the CT's cortex
(:mod:`healthivert.segmentation.outline`); then neighbouring arches are parted at the CT's own
joint spaces (:mod:`healthivert.segmentation.boundaries`).
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
from healthivert.labels import is_anchored
from healthivert.segmentation.boundaries import body_zone, confident_markers, flood_from_markers
from healthivert.segmentation.config import SACRUM_CLASS, VERTEBRA_CLASS, SegmenterConfig
from healthivert.segmentation.field_of_view import AIR_HU, fill_outside_body
from healthivert.segmentation.identify import Identification, identify
from healthivert.segmentation.outline import grow_into_cortex, nearest_label_within

Progress = Callable[[int, int, str], None]

#: bone where the resampled foreground probability exceeds this. Chosen with the shipped
#: weights on phantom seeds 8100-8103 (never benchmarked): mean Dice per vertebra 0.903 with
#: nearest-neighbour labels, 0.920 / 0.927 / 0.921 / 0.904 at 0.4 / 0.5 / 0.6 / 0.7.
FOREGROUND_P = 0.5


@dataclass
class Segmentation:
    """A predicted mask on the CT's grid (VerSe labels) and notes on how labels were anchored."""

    mask: Volume
    anchor: str  # how the labels were anchored: one of identify's ``ANCHOR_*`` texts
    notes: list[str]
    guessed: tuple[int, ...] = ()  # labels beside a cut no disc showed: their boundary is a guess
    doubtful: tuple[int, ...] = ()  # labels long enough to hold two vertebrae (no disc found inside)

    @property
    def anchored(self) -> bool:
        """Whether the labels rest on an anchor that was seen (or given) and not contradicted."""
        return is_anchored(self.anchor)


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
    return _resample(labels.astype(np.uint8), affine, reference.shape, reference.affine, sitk.sitkNearestNeighbor,
                     sitk.sitkUInt8)


def _resample(array: np.ndarray, affine: np.ndarray, shape: tuple[int, ...], target_affine: np.ndarray,
              interpolator: int, pixel: int) -> np.ndarray:
    moving = sitk_from_array(array, affine)
    target = empty_sitk_image(shape, target_affine, pixel)
    out = sitk.Resample(moving, target, sitk.Transform(), interpolator, 0, pixel)
    return np.transpose(sitk.GetArrayFromImage(out), (2, 1, 0))


def _box(mask: np.ndarray, reference: Volume, pad: np.ndarray | int = 0
         ) -> tuple[tuple[slice, ...], tuple[int, ...], np.ndarray]:
    """The bounding box of ``mask`` (on ``reference``'s grid), padded by ``pad`` voxels and
    clipped to the grid: (slices, shape, the box's own affine)."""
    found = np.argwhere(mask)
    lo = np.maximum(found.min(axis=0) - pad, 0)
    hi = np.minimum(found.max(axis=0) + pad + 1, reference.shape)
    box_affine = reference.affine.copy()
    box_affine[:3, 3] = reference.affine[:3, :3] @ lo + reference.affine[:3, 3]
    return tuple(slice(a, b) for a, b in zip(lo, hi)), tuple(int(n) for n in hi - lo), box_affine


def labels_on_grid(labels: np.ndarray, foreground: np.ndarray, affine: np.ndarray, reference: Volume,
                   reach_mm: float) -> np.ndarray:
    """Identified labels (network grid, ``affine``) on the reference CT's grid, outlined at its
    own resolution: bone is where the foreground probability, linearly resampled, exceeds
    ``FOREGROUND_P`` within ``reach_mm`` of a nearest-neighbour-resampled label, and takes the
    label of the nearest one. Nearest-neighbour labels alone leave the network's 2 mm steps on a
    1 mm CT. Only the labels' bounding box is resampled, so a large CT costs no more memory."""
    nearest = _to_grid(labels, affine, reference)
    if not (nearest > 0).any():
        return nearest
    spacing = reference.spacing_mm
    box, shape, box_affine = _box(nearest > 0, reference, np.ceil(reach_mm / spacing).astype(int) + 1)
    bone = _resample(foreground.astype(np.float32), affine, shape, box_affine, sitk.sitkLinear,
                     sitk.sitkFloat32) > FOREGROUND_P
    out = np.zeros_like(nearest)
    out[box] = nearest_label_within(nearest[box], bone, spacing, reach_mm)
    return out


#: slices of the labels' box grown at a time (with a margin of the reach either side): the
#: distance transform keeps three indices per voxel, so a whole-spine CT is done in slabs
SLAB = 64


def finish_outline(labels: np.ndarray, reference: Volume, cfg: SegmenterConfig) -> np.ndarray:
    """``labels`` (the reference CT's grid) grown into the CT's cortex by half a network voxel
    (:mod:`healthivert.segmentation.outline`); only the labels' bounding box is worked on, in
    slabs of ``SLAB`` slices along the grid's last axis (the same result as all at once)."""
    if not (labels > 0).any():
        return labels
    spacing = reference.spacing_mm
    reach = cfg.spacing_mm / 2
    margin = np.ceil(reach / spacing).astype(int)
    box, _, _ = _box(labels > 0, reference, margin)
    out = labels.copy()
    z0, z1 = box[2].start, box[2].stop
    for start in range(z0, z1, SLAB):
        stop = min(start + SLAB, z1)
        lo, hi = max(start - margin[2], z0), min(stop + margin[2], z1)
        slab = (box[0], box[1], slice(lo, hi))
        grown = grow_into_cortex(labels[slab], reference.array[slab], spacing, reach)
        out[box[0], box[1], start:stop] = grown[:, :, start - lo:stop - lo]
    return out


def part_arches(labels: np.ndarray, ident: Identification, affine: np.ndarray, reference: Volume,
                cfg: SegmenterConfig, reach_mm: float) -> np.ndarray:
    """``labels`` (the reference CT's grid) with neighbouring arches parted at the CT's joint
    spaces (:mod:`healthivert.segmentation.boundaries`): the markers come from ``ident``
    (network grid, ``affine``), each body and a ``reach_mm`` rim keeping its label, except the
    bodies beside a cut that no disc showed (``ident.guessed_disc``), which the CT parts too.
    Only the labels' bounding box is resampled."""
    if not (labels > 0).any():
        return labels
    box, shape, box_affine = _box(labels > 0, reference)

    def onto_box(array: np.ndarray) -> np.ndarray:
        return _resample(array.astype(np.uint8), affine, shape, box_affine, sitk.sitkNearestNeighbor, sitk.sitkUInt8)

    sub = labels[box]
    # a body beside a disc no one saw (a cut at the expected length) is the CT's to part too
    bodies = np.where(np.isin(ident.bodies, ident.guessed_disc), 0, ident.bodies)
    markers = onto_box(confident_markers(ident.labels, bodies, cfg.spacing_mm))
    keep = onto_box(body_zone(bodies, cfg.spacing_mm, reach_mm)) > 0
    out = labels.copy()
    out[box] = flood_from_markers(sub, np.where(keep, sub, markers), reference.array[box], reference.spacing_mm)
    return out


#: windows overlap by half along the spine (RAS S), by a quarter across it: at a quarter along
#: it, where the windows fell decided whether the network called the real evaluation CT's S1
#: sacrum (found with both ends mirrored by half a window, lost at 0.375 or 0.625 of one, or with
#: the bottom unmirrored); at half it was found with each
WINDOW_OVERLAP = (0.25, 0.25, 0.5)
#: windows run four at a time: on the 2-core CPU the 3 mm example's 45 windows took 4.0 s
#: against 8.6 s one at a time (the same output: the network has no batch statistics)
WINDOW_BATCH = 4


@torch.no_grad()
def predict_probabilities(model: torch.nn.Module, image: MetaTensor, cfg: SegmenterConfig) -> np.ndarray:
    """Softmax per class (channel first) at the network's spacing. Windows run on the model's
    device (a GPU when it is there); the volume is stitched in host memory.

    The scan's top is mirrored outwards by half a window (superior-inferior, the third axis of
    a RAS image) before the windows run: a scan's field of view cuts the spine through a
    vertebra, and a network that sees bone stop at an edge of air or zeros loses most of that
    vertebra (phantom seeds 8300-8303 cut at both ends: their end vertebrae's Dice 0.83
    without the mirror, 0.94 with it). The bottom is not mirrored: what the view ends in there
    is usually the sacrum, and mirrored, the top of S1 reads as a vertebral body between two
    L5s (the real VerSe crops ending at S1: it joined L5; every real VerSe CT's bone Dice rose
    without that mirror, and the vertebra cut by a phantom's bottom kept its Dice)."""
    device = next(model.parameters()).device
    volume = image.as_tensor()
    pad = min(cfg.patch[2] // 2, volume.shape[-1] - 1)
    if pad > 0:
        volume = torch.nn.functional.pad(volume[None], (0, pad, 0, 0, 0, 0), mode="reflect")[0]
    logits = sliding_window_inference(volume[None], roi_size=cfg.patch, sw_batch_size=WINDOW_BATCH,
                                      predictor=model, overlap=WINDOW_OVERLAP, mode="gaussian",
                                      sw_device=device, device="cpu")
    probabilities = torch.softmax(logits[0], dim=0).numpy()
    return probabilities[..., :probabilities.shape[-1] - pad]


def network_input(image: MetaTensor, hu: np.ndarray, cfg: SegmenterConfig) -> MetaTensor:
    """``image`` (windowed, channel first) with the air and padding around the body filled by
    the scan's soft tissue (:mod:`healthivert.segmentation.field_of_view`); ``hu`` is the same
    image in HU (clipped to the window: a window whose floor lies above ``AIR_HU`` takes its
    floor for air)."""
    lo, hi = cfg.hu_window
    filled = fill_outside_body(hu, cfg.spacing_mm, air_hu=max(AIR_HU, lo))
    if filled is hu:
        return image
    out = image.clone()
    out[0] = torch.from_numpy(((filled - lo) / (hi - lo)).astype(np.float32))
    return out


def predict_classes(model: torch.nn.Module, image: MetaTensor, cfg: SegmenterConfig) -> np.ndarray:
    """Class index per voxel at the network's spacing."""
    return predict_probabilities(model, image, cfg).argmax(axis=0).astype(np.uint8)


def segment_ct(ct: Volume, model: torch.nn.Module, cfg: SegmenterConfig, fill_outside: bool = True) -> Segmentation:
    """Segment and label the vertebrae of a CT; the mask is on the CT's grid.

    ``fill_outside``: fill the air and padding far from the body before the network
    (:func:`network_input`); off only to measure what the fill does (``benchmarks/field_of_view.py``).

    Raises:
        InputError: no vertebra found (no spine in the field of view).
    """
    image = preprocess(ct, cfg)
    affine = image.affine.numpy()
    lo, hi = cfg.hu_window  # the windowed CT back in HU (clipped to the window: enough to find ribs)
    hu = image.as_tensor()[0].numpy() * (hi - lo) + lo
    prob = predict_probabilities(model, network_input(image, hu, cfg) if fill_outside else image, cfg)
    ident = identify(_clean(prob.argmax(axis=0).astype(np.uint8)), affine, hu=hu)
    if not (ident.labels > 0).any() or not ((ident.labels > 0) & (ident.labels < 26)).any():
        raise InputError("no vertebra found in the CT: is the spine in the field of view?")
    reach = 1.5 * cfg.spacing_mm
    labels = labels_on_grid(ident.labels, 1.0 - prob[0], affine, ct, reach_mm=reach)
    labels = finish_outline(labels, ct, cfg)
    labels = part_arches(labels, ident, affine, ct, cfg, reach)
    if not ((labels > 0) & (labels < 26)).any():
        raise InputError("no vertebra found in the CT: is the spine in the field of view?")
    return Segmentation(Volume(labels, ct.affine, ct.source), ident.anchor, ident.notes, ident.guessed_disc,
                        ident.doubtful)
