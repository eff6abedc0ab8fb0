"""Real-CT domain randomisation for HealthiVert-GAN training (``augmentation: real``).

The GAN trains on phantom stacks; real CT differs in bone contrast (trabecular core ~105-130
HU median with an IQR of ~115 HU, cortex rim ~290-370 HU; phantoms 181 and 541 HU, IQR 35:
docs/experiments.md), intensity scale and offset, noise, blur, slice thickness and a field of
view that can end in the context. Each drawn training slice gets a random mix of these on a
slab of its stack (the slice and ``SLAB_MM`` mm either side, enough for the 3-D blur and thick
slices), before ``make_sample`` builds the canvas, so the context, the band's CT truth and the
classifier's window see the same scan.

Intensity operations change the CT only: the target body, its heights and the slice's row
mapping are untouched. The field-of-view cut moves the truth with it: the neighbours' labels
(the ``adjacent`` truth) beyond the cut are dropped, as the segmenter finds nothing outside a
scan; the plane always lies beyond the target's body, which stays whole (straightened crops cut
by the field of view are not trained on). Outside the scan the CT is -1024 HU, as
``straighten_volume`` fills it.

Stacks are at 1 mm, axes (LR, AP, SI), CT normalised to [-1, 1] over ``HU_WINDOW``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from monai.transforms import (
    Compose,
    MapTransform,
    RandGaussianNoised,
    RandGaussianSmoothd,
    Randomizable,
    RandomizableTransform,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from scipy import ndimage

from healthivert.synthesis.gan.canvas import VertebraStack, hu_from_normalised, normalise_hu
from healthivert.training.real_domain import RandThickSlicesd

AUGMENTATIONS = ("none", "real")
SLAB_MM = 6  # slices each side of the drawn one that are augmented with it (3-D blur, thick slices)
OUT_OF_SCAN_HU = -1024.0  # what straightening fills outside the scan with
AIR_HU = -1000.0  # a clipped pixel (<= -300 HU in the window) is taken as air for the HU operations


@dataclass(frozen=True)
class RealDomain:
    """Ranges of the real-CT randomisation; each operation applies with its own probability.

    Attributes:
        bone_prob: chance of the bone-contrast remap: phantom trabecular bone (``phantom_core_hu``)
            mapped to a value drawn from ``core_hu``, cortex (``phantom_cortex_hu``) to one from
            ``cortex_hu``, HU below ``soft_hu`` unchanged (piecewise linear, monotone).
        texture_hu: SD (HU, drawn from the range) of a smooth random texture added to bone
            (weight 0 at ``soft_hu``, 1 from the phantom core up): real trabecular bone is
            heterogeneous.
        thick_prob, thick_factor: slices thicker along one random axis (1 mm x factor).
        smooth_prob, smooth_sigma_mm: Gaussian blur, sigma drawn per axis (mm).
        noise_prob, noise_hu: Gaussian noise, SD drawn from [0, noise_hu] (HU).
        scale_prob, scale: HU multiplied by 1 + u, u in [-scale, scale].
        shift_prob, shift_hu: HU offset in [-shift_hu, shift_hu].
        fov_si_prob, fov_si_mm: the scan ends this many mm beyond the body's top or bottom.
        fov_across_prob, fov_across_mm: the scan ends this many mm beyond the vertebrae's extent
            along the slice's column axis (AP in a sagittal slice, LR in a coronal one).
    """

    bone_prob: float = 0.8
    soft_hu: float = 60.0
    phantom_core_hu: float = 181.0
    phantom_cortex_hu: float = 541.0
    core_hu: tuple[float, float] = (85.0, 160.0)
    cortex_hu: tuple[float, float] = (260.0, 460.0)
    texture_hu: tuple[float, float] = (0.0, 60.0)
    thick_prob: float = 0.4
    thick_factor: tuple[float, float] = (1.5, 3.5)
    smooth_prob: float = 0.5
    smooth_sigma_mm: tuple[float, float] = (0.3, 1.2)
    noise_prob: float = 0.5
    noise_hu: float = 40.0
    scale_prob: float = 0.5
    scale: float = 0.1
    shift_prob: float = 0.5
    shift_hu: float = 40.0
    fov_si_prob: float = 0.3
    fov_si_mm: tuple[int, int] = (1, 24)
    fov_across_prob: float = 0.3
    fov_across_mm: tuple[int, int] = (0, 15)


def to_hu(ct: np.ndarray) -> np.ndarray:
    """Normalised CT back to HU; clipped pixels at the window's floor read as air."""
    return np.where(ct <= -1.0 + 1e-4, AIR_HU, hu_from_normalised(ct)).astype(np.float32)


class RandBoneContrastd(RandomizableTransform, MapTransform):
    """Phantom bone towards real bone (HU in, HU out): a monotone piecewise-linear remap that
    dims the trabecular core and the cortex by drawn amounts (soft tissue below ``soft_hu``
    unchanged, the phantom disc ~105 HU lands near the real ~80), then a smooth random texture
    (Gaussian noise blurred by 1 mm, SD drawn from ``texture_hu``) weighted towards bone."""

    def __init__(self, keys, domain: RealDomain) -> None:
        MapTransform.__init__(self, keys)
        RandomizableTransform.__init__(self, domain.bone_prob)
        self.d = domain
        self._core, self._cortex, self._texture = domain.phantom_core_hu, domain.phantom_cortex_hu, 0.0
        self._seed = 0

    def randomize(self, data=None) -> None:
        super().randomize(None)
        self._core = float(self.R.uniform(*self.d.core_hu))
        self._cortex = float(self.R.uniform(*self.d.cortex_hu))
        self._texture = float(self.R.uniform(*self.d.texture_hu))
        self._seed = int(self.R.randint(2**31 - 1))

    def remap(self, hu: np.ndarray) -> np.ndarray:
        """The drawn piecewise-linear remap (HU to HU)."""
        d = self.d
        top = 3000.0
        xs = [-3000.0, d.soft_hu, d.phantom_core_hu, d.phantom_cortex_hu, top]
        ys = [-3000.0, d.soft_hu, self._core, self._cortex,
              self._cortex + (top - d.phantom_cortex_hu) * self._cortex / d.phantom_cortex_hu]
        return np.interp(hu, xs, ys).astype(np.float32)

    def __call__(self, data):
        d = dict(data)
        self.randomize()
        if not self._do_transform:
            return d
        for key in self.key_iterator(d):
            hu = np.asarray(d[key][0], np.float32)
            out = self.remap(hu)
            if self._texture > 0:
                g = np.random.default_rng(self._seed).standard_normal(hu.shape).astype(np.float32)
                g = ndimage.gaussian_filter(g, 1.0)
                g /= max(float(g.std()), 1e-6)
                weight = np.clip((hu - self.d.soft_hu) / (self.d.phantom_core_hu - self.d.soft_hu), 0.0, 1.0)
                out = out + self._texture * weight * g
            d[key] = torch.as_tensor(out[None])
        return d


def intensity_chain(domain: RealDomain) -> Compose:
    """The intensity operations, on a dict {"ct": (1, X, Y, Z) HU tensor}: bone contrast, thick
    slices (``real_domain.RandThickSlicesd``), blur, noise, scale and offset (MONAI)."""
    sigma = domain.smooth_sigma_mm
    return Compose([
        RandBoneContrastd(["ct"], domain),
        RandThickSlicesd(["ct"], prob=domain.thick_prob, factor=domain.thick_factor),
        RandGaussianSmoothd(["ct"], sigma_x=sigma, sigma_y=sigma, sigma_z=sigma, prob=domain.smooth_prob),
        RandGaussianNoised(["ct"], prob=domain.noise_prob, mean=0.0, std=domain.noise_hu),
        RandScaleIntensityd(["ct"], factors=domain.scale, prob=domain.scale_prob),
        RandShiftIntensityd(["ct"], offsets=domain.shift_hu, prob=domain.shift_prob),
    ])


class RealDomainAugment(Randomizable):
    """A drawn slice's stack made to look like a real scan (see the module's docstring).

    ``augment(stack, view, index, rng)`` returns a copy of ``stack`` whose CT (and, after a
    field-of-view cut, its labels) differ on the slab around slice ``index`` of ``view``; the
    body array is the same object. Seeded by one draw from ``rng``.
    """

    def __init__(self, domain: RealDomain | None = None) -> None:
        self.domain = domain or RealDomain()
        self.chain = intensity_chain(self.domain)

    def randomize(self, data=None) -> None:  # draws happen in augment, after set_random_state
        pass

    def augment(self, stack: VertebraStack, view: str, index: int, rng: np.random.Generator) -> VertebraStack:
        seed = int(rng.integers(2**31 - 1))
        self.set_random_state(seed)
        self.chain.set_random_state(seed + 1)
        axis = 0 if view == "sagittal" else 1  # the axis across the view's slices
        lo, hi = max(0, index - SLAB_MM), min(stack.ct.shape[axis], index + SLAB_MM + 1)
        where = (slice(lo, hi), slice(None)) if axis == 0 else (slice(None), slice(lo, hi))
        hu = to_hu(stack.ct[where])
        out = self.chain({"ct": torch.as_tensor(hu[None])})["ct"]
        ct = stack.ct.copy()
        ct[where] = normalise_hu(np.asarray(out[0], np.float32))
        labels = stack.labels
        cut = self._fov_cut(stack, view, where)
        if cut is not None:
            labels = labels.copy()
            ct[cut] = normalise_hu(np.float32(OUT_OF_SCAN_HU))
            labels[cut] = 0
        return replace(stack, ct=ct, labels=labels)

    def _fov_cut(self, stack: VertebraStack, view: str, where: tuple) -> tuple | None:
        """The index of the region a drawn field of view leaves out (None: no cut). Along SI it
        ends beyond the body's top or bottom (over the whole stack); across, beyond the
        vertebrae's labelled extent along the slice's column axis."""
        d = self.domain
        si_cut = self.R.random_sample() < d.fov_si_prob
        across_cut = self.R.random_sample() < d.fov_across_prob
        side_si, side_across = self.R.random_sample() < 0.5, self.R.random_sample() < 0.5
        mm_si = int(self.R.randint(d.fov_si_mm[0], d.fov_si_mm[1] + 1))
        mm_across = int(self.R.randint(d.fov_across_mm[0], d.fov_across_mm[1] + 1))
        mask = np.zeros(stack.ct.shape, bool)
        if si_cut:
            rows = np.flatnonzero(stack.body.max(axis=(0, 1)) >= 0.5)
            if rows.size:
                if side_si:
                    mask[:, :, rows[-1] + 1 + mm_si:] = True  # beyond the top (SI ascending)
                else:
                    mask[:, :, :max(rows[0] - mm_si, 0)] = True
        if across_cut:
            col_axis = 1 if view == "sagittal" else 0
            other = 0 if col_axis == 1 else 1
            present = np.flatnonzero(((stack.labels[where] > 0) | (stack.body[where] >= 0.5)).any(axis=(other, 2)))
            if present.size:
                cut = [slice(None)] * 3
                cut[other] = where[other]
                cut[col_axis] = (slice(present[-1] + 1 + mm_across, None) if side_across
                                 else slice(0, max(present[0] - mm_across, 0)))
                mask[tuple(cut)] = True
        return mask if mask.any() else None


def make_augmenter(kind: str) -> RealDomainAugment | None:
    """The augmentation a recipe names: None for "none" (the canvas as cached), else the real-CT
    randomisation."""
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}; got {kind!r}")
    return None if kind == "none" else RealDomainAugment()
