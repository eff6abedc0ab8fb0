"""Real-domain pieces of segmenter training: VerSe subjects chosen by name, and the MONAI
augmentations that make a training patch look like a real scan (thick slices along any axis,
a field of view that stops inside the spine).

Real VerSe crops are often sagittal or coronal reconstructions (sub-verse007: 3 mm slices
left-right) cut tight around the annotated vertebrae; the phantoms are axial, with slices of
1-3 mm along the spine and a wide field of view. Patches are at the network's spacing
(2 mm), channel first, axes (R, A, S) as inference sees them.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import MapTransform, RandomizableTransform, Resize

from healthivert.errors import InputError
from healthivert.io.verse_tree import VerseStudy, read_verse_tree


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
    chosen = pick_subjects(sorted(studies), include, exclude, root)
    return [studies[s] for s in chosen]


class RandThickSlicesd(RandomizableTransform, MapTransform):
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

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            shape = tuple(d[key].shape[1:])
            coarse = list(shape)
            coarse[self._axis] = max(1, round(shape[self._axis] / self._f))
            down = Resize(spatial_size=coarse, mode="area")(d[key])
            d[key] = Resize(spatial_size=shape, mode="trilinear", align_corners=False)(down)
        return d


class RandFieldOfViewd(RandomizableTransform, MapTransform):
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

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            d[key] = _cut(d[key], self._axis + 1, self._low_side, self._depth)
        return d


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
