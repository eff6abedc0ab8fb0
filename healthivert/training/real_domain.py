"""Real-domain pieces of segmenter training: VerSe subjects chosen by name (the synthesizer's
trainer chooses them here too: ``verse_subject_rows``), the MONAI
augmentations that make a training patch look like a real scan (thick slices along any axis,
a field of view that stops inside the spine), and the loss mask that keeps bone the experts
did not annotate out of the loss (``unlabelled_bone``, ``masked_dice_ce``).

Real VerSe crops are often sagittal or coronal reconstructions (sub-verse007: 3 mm slices
left-right) cut tight around the annotated vertebrae; the phantoms are axial, with slices of
1-3 mm along the spine and a wide field of view. Patches are at the network's spacing
(2 mm), channel first, axes (R, A, S) as inference sees them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.transforms import MapTransform, RandomizableTransform, Resize
from scipy import ndimage

from healthivert.errors import InputError
from healthivert.io.verse_tree import VerseStudy, read_verse_tree
from healthivert.training.config import verse_rows


def pick_subjects(available: Sequence[str], include: Sequence[str], exclude: Sequence[str],
                  where: str) -> list[str]:
    """The subjects to train on: ``include`` (all of ``available`` when empty) less ``exclude``.

    Raises:
        InputError: a named subject is not available, one is both included and excluded, or
            none is left.
    """
    unknown = sorted((set(include) | set(exclude)) - set(available))
    if unknown:
        raise InputError(f"{where}: no complete VerSe study (ct and mask) for {unknown}; available: "
                         f"{sorted(available)}")
    both = sorted(set(include) & set(exclude))
    if both:
        raise InputError(f"{where}: {both} both included (subjects) and excluded (exclude_subjects)")
    chosen = [s for s in (include or available) if s not in set(exclude)]
    if not chosen:
        raise InputError(f"{where}: every VerSe subject is excluded; nothing to train on")
    return chosen


def tree_studies(root: str, include: Sequence[str], exclude: Sequence[str]) -> list[VerseStudy]:
    """The studies of a VerSe tree with a CT and a mask, chosen by ``pick_subjects``."""
    studies = {s.subject: s for s in read_verse_tree(root) if s.ct is not None and s.mask is not None}

    def scans(names: Sequence[str]) -> list[str]:  # a subject folder's name stands for all its scans
        return [hit for n in names for hit in
                ([n] if n in studies else [s for s in sorted(studies) if studies[s].in_folder(n)] or [n])]

    chosen = pick_subjects(sorted(studies), scans(include), scans(exclude), root)
    return [studies[s] for s in chosen]


def verse_subject_rows(manifest: str, verse_root: str, splits: tuple[str, ...], include: Sequence[str] = (),
                       exclude: Sequence[str] = (), strict: bool = True):
    """The manifest's rows (one per graded vertebra, joined to the tree's files: ``verse_rows``)
    of the subjects chosen by name (``include``, from any split) or else by ``splits``, less
    ``exclude``.

    ``strict`` (a training cohort): subjects are chosen by ``pick_subjects`` (a named or excluded
    subject absent from those rows, or none left, is an InputError). Otherwise (validation,
    calibration) the excluded subjects are dropped where present; none left is an InputError.
    """
    if include:
        from healthivert.io.manifest import read_manifest

        splits = tuple(sorted(read_manifest(manifest)["split"].unique()))
    rows = verse_rows(manifest, verse_root, splits)
    available = sorted(rows["subject"].unique())
    where = f"{verse_root} (manifest {manifest}, splits {list(splits)})"
    if strict:
        chosen = pick_subjects(available, include, exclude, where)
    else:
        chosen = [s for s in available if s not in set(exclude)]
        if not chosen:
            raise InputError(f"{where}: every study {available} is excluded (exclude_subjects)")
    return rows[rows["subject"].isin(chosen)]


class _RandKeysTransform(RandomizableTransform, MapTransform):
    """A random dictionary transform: one draw per call (``randomize``), then ``_apply`` on
    each of its keys when the draw says so. (The two below differ only in what they apply.)"""

    def _apply(self, image):
        raise NotImplementedError

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = self._apply(d[key])
        return d


class RandThickSlicesd(_RandKeysTransform):
    """Thick slices along one random axis: the image is averaged down ("area") by a factor
    drawn from ``factor`` along that axis, then resampled back (trilinear), as a scan
    reconstructed at ``factor`` x the network's spacing (2 mm: 3-6 mm slices for 1.5-3). The
    label is left at full resolution, the experts' outline."""

    def __init__(self, keys: Sequence[Hashable], prob: float = 0.5, factor: tuple[float, float] = (1.5, 3.0),
                 axes: Sequence[int] = (0, 1, 2)) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.factor, self.axes = factor, tuple(axes)
        self._axis, self._f = 0, 1.0

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._axis = int(self.R.choice(self.axes))
        self._f = float(self.R.uniform(*self.factor))

    def _apply(self, image):
        shape = tuple(image.shape[1:])
        coarse = list(shape)
        coarse[self._axis] = max(1, round(shape[self._axis] / self._f))
        down = Resize(spatial_size=coarse, mode="area")(image)
        return Resize(spatial_size=shape, mode="trilinear", align_corners=False)(down)


class RandFieldOfViewd(_RandKeysTransform):
    """A field of view that ends inside the patch, as tight real crops do: across the spine
    (left-right or anterior-posterior axis) the image and label beyond a random plane are
    zeroed, as inference pads a narrow scan with zeros; along it (superior-inferior, the last
    axis) the patch is mirrored at the plane, as inference mirrors a scan's ends. The plane
    lies ``depth`` (fraction of the patch) in from a random side."""

    def __init__(self, keys: Sequence[Hashable], prob: float = 0.3, depth: tuple[float, float] = (0.1, 0.45)) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, prob)
        self.depth = depth
        self._axis, self._low_side, self._depth = 0, True, 0.0

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._axis = int(self.R.randint(3))
        self._low_side = bool(self.R.random() < 0.5)
        self._depth = float(self.R.uniform(*self.depth))

    def _apply(self, image):
        return _cut(image, self._axis + 1, self._low_side, self._depth)


def _cut(x: torch.Tensor, dim: int, low_side: bool, depth: float) -> torch.Tensor:
    """``x`` with its first (``low_side``) or last ``depth`` fraction along ``dim`` zeroed, or
    mirrored from the kept part when ``dim`` is the last (superior-inferior) axis."""
    n = x.shape[dim]
    k = int(np.clip(round(depth * n), 1, n // 2))
    out = x.clone()
    flip = dim == x.ndim - 1
    if low_side:
        out.narrow(dim, 0, k).copy_(x.narrow(dim, k, k).flip(dim) if flip else torch.zeros_like(x.narrow(dim, 0, k)))
    else:
        out.narrow(dim, n - k, k).copy_(x.narrow(dim, n - 2 * k, k).flip(dim) if flip
                                        else torch.zeros_like(x.narrow(dim, n - k, k)))
    return out


#: bone in a real CT: HU above this after a light Gaussian smoothing (real cortex reads
#: 290-370 HU, trabecular cores 105-130 HU median: the cores come in by hole filling)
BONE_HU = 150.0


def unlabelled_bone(image: np.ndarray, label: np.ndarray, hu_window: tuple[float, float], spacing_mm: float,
                    sigma_mm: float = 1.0, dilate_mm: float = 4.0, margin_mm: float = 2.0,
                    max_hole_mm2: float = 2000.0) -> np.ndarray:
    """Voxels of a VerSe study to leave out of the loss: bone the experts did not annotate.

    VerSe masks label only the annotated vertebrae; the sacrum and the vertebrae above and
    below the annotation are background in them, and training on them as such unteaches the
    sacrum class and the ends of the spine. Bone is ``BONE_HU`` after a Gaussian smoothing of
    ``sigma_mm``, its small in-slice holes (at most ``max_hole_mm2``, along each axis: the
    dim trabecular core inside the cortex, the spinal canal) filled, then dilated by
    ``dilate_mm`` (the unannotated vertebra's blurred edge); the expert mask and a shell of
    ``margin_mm`` around it are never ignored (the annotated vertebrae's surface, partial
    volume included, stays taught as background).

    Args:
        image: windowed CT at the network's spacing, values 0..1 over ``hu_window`` (HU),
            channel first (1, X, Y, Z).
        label: class target of the same grid (0 background, else annotated), (1, X, Y, Z).
        hu_window: (low, high) HU of the window.
        spacing_mm: the grid's isotropic spacing (mm).

    Returns:
        uint8 (1, X, Y, Z): 1 where the loss ignores the voxel.
    """
    seeds, near = _unannotated_bone(image, np.asarray(label[0]) > 0, hu_window, spacing_mm, sigma_mm, margin_mm,
                                    max_hole_mm2)
    ignore = ndimage.binary_dilation(seeds, _ball(dilate_mm / spacing_mm)) & ~near
    return ignore[None].astype(np.uint8)


def _unannotated_bone(image: np.ndarray, annotated: np.ndarray, hu_window: tuple[float, float], spacing_mm: float,
                      sigma_mm: float, margin_mm: float, max_hole_mm2: float) -> tuple[np.ndarray, np.ndarray]:
    """(bone outside the annotation and its shell, the annotation with its ``margin_mm`` shell):
    bone is ``BONE_HU`` after a Gaussian smoothing of ``sigma_mm``, its small in-slice holes
    filled (:func:`unlabelled_bone`)."""
    lo, hi = hu_window
    hu = lo + np.asarray(image[0], np.float32) * (hi - lo)
    bone = _fill_small_holes(ndimage.gaussian_filter(hu, sigma_mm / spacing_mm) > BONE_HU,
                             max_hole_mm2 / spacing_mm**2)
    near = ndimage.binary_dilation(annotated, _ball(margin_mm / spacing_mm)) | annotated
    return bone & ~near, near


#: the sacrum taught from a VerSe study: unannotated bone below the lowest lumbar vertebra's
#: centre, the pieces that cross the midline (within ``SACRUM_MIDLINE_MM`` of that vertebra
#: left to right), kept within ``SACRUM_HALF_WIDTH_MM`` of it (S1 and the inner alae; the
#: sacroiliac joints and the iliac wings lie farther out)
SACRUM_MIDLINE_MM = 15.0
SACRUM_HALF_WIDTH_MM = 45.0


def sacrum_below_l5(image: np.ndarray, labels: np.ndarray, hu_window: tuple[float, float], spacing_mm: float,
                    sigma_mm: float = 1.0, margin_mm: float = 2.0, max_hole_mm2: float = 2000.0) -> np.ndarray:
    """Where a VerSe study's sacrum is, from its CT and its experts' vertebra labels (bool).

    VerSe masks of the lumbar spine stop at L5 and leave the sacrum unlabelled, so a network
    fine-tuned on them as they are learns the real sacrum as background, or calls S1 and the
    pelvis vertebra (sub-verse014 held out: its L5 label took 25 ml of S1 and pelvis). Where the
    lowest annotated vertebra is L5 (or L6), the bone below its centre that is not annotated
    and crosses its midline is the sacrum; no sacrum otherwise (an empty mask). Bone is
    ``BONE_HU`` as in :func:`unlabelled_bone`; the annotated vertebrae and a ``margin_mm``
    shell stay theirs.

    Args:
        image: windowed CT at the network's spacing, 0..1 over ``hu_window``, (1, X, Y, Z), RAS.
        labels: VerSe labels on the same grid, (1, X, Y, Z).
    """
    lab = np.asarray(labels[0])
    present = set(np.unique(lab).tolist())
    lowest = 25 if 25 in present else 24
    if lowest not in present:
        return np.zeros(lab.shape, bool)
    bone, _ = _unannotated_bone(image, lab > 0, hu_window, spacing_mm, sigma_mm, margin_mm, max_hole_mm2)
    centre = np.argwhere(lab == lowest).mean(axis=0)
    x, _, z = np.indices(lab.shape, sparse=True)
    side = np.abs(x - centre[0]) * spacing_mm
    candidates = bone & (z < centre[2]) & (side <= SACRUM_HALF_WIDTH_MM)
    pieces, n = ndimage.label(candidates)
    crossing = np.unique(pieces[candidates & (side <= SACRUM_MIDLINE_MM)])
    return np.isin(pieces, crossing[crossing > 0])


def _ball(radius_vox: float) -> np.ndarray:
    """A ball structuring element of ``radius_vox`` voxels (at least the 6-neighbourhood)."""
    r = max(1, int(np.floor(radius_vox)))
    g = np.mgrid[-r:r + 1, -r:r + 1, -r:r + 1]
    return (g**2).sum(0) <= max(radius_vox, 1.0) ** 2


def _fill_small_holes(mask: np.ndarray, max_area_vox: float) -> np.ndarray:
    """``mask`` with every in-slice hole of at most ``max_area_vox`` voxels filled, slices taken
    along each axis in turn (a body ring in an axial slice, a body outline in a sagittal one);
    larger holes (the chest inside the ribs, the pelvis) stay open."""
    out = mask.copy()
    for axis in range(3):
        structure = np.zeros((3, 3, 3), bool)
        structure[tuple(slice(1, 2) if a == axis else slice(None) for a in range(3))] = True
        holes = ndimage.binary_fill_holes(mask, structure) & ~mask
        labels, n = ndimage.label(holes, structure)
        if n:
            small = np.bincount(labels.ravel())[1:] <= max_area_vox
            out |= np.concatenate([[False], small])[labels]
    return out


def masked_dice_ce(logits: torch.Tensor, target: torch.Tensor, ignore: torch.Tensor,
                   smooth: float = 1e-5) -> torch.Tensor:
    """MONAI's ``DiceCELoss(to_onehot_y=True, softmax=True)`` (Dice over every class, background
    included, per item and class, plus mean cross-entropy, weights 1 and 1) with the voxels of
    ``ignore`` left out of both terms: a weight of 0 for every class. ``DiceCELoss`` takes no
    voxel mask (its ``weight`` weighs classes), and MONAI's ``MaskedDiceLoss`` masks the Dice
    term only; so the two terms are written out here. With no voxel ignored it equals
    ``DiceCELoss``.

    Args:
        logits: (B, C, X, Y, Z) network output.
        target: (B, 1, X, Y, Z) class indices.
        ignore: (B, 1, X, Y, Z), nonzero where the voxel is left out.
    """
    keep = (ignore == 0).to(logits.dtype)
    classes = target[:, 0].long()
    ce = F.cross_entropy(logits, classes, reduction="none") * keep[:, 0]
    ce = ce.sum() / keep.sum().clamp_min(1.0)
    probs = torch.softmax(logits, 1) * keep
    onehot = F.one_hot(classes, logits.shape[1]).movedim(-1, 1).to(logits.dtype) * keep
    dims = tuple(range(2, logits.ndim))
    overlap = (probs * onehot).sum(dims)
    dice = 1.0 - (2.0 * overlap + smooth) / (probs.sum(dims) + onehot.sum(dims) + smooth)
    return dice.mean() + ce
