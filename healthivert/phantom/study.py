"""Synthetic thoracolumbar CT studies with known fractures and known heights.

``make_phantom`` builds one study from a seed (deterministic); ``write_phantom`` writes it in
the VerSe layout with a ``truth.json``; ``write_cohort`` makes N studies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from healthivert.io.atomic import atomic_write_text
from healthivert.io.centroids import centroids_from_mask, write_centroids
from healthivert.io.images import write_volume
from healthivert.io.verse_tree import study_paths
from healthivert.io.volume import SourceGeometry, Volume, empty_sitk_image
from healthivert.labels import VERSE_NAMES, verse_label
from healthivert.phantom.anatomy import vertebra_shape
from healthivert.phantom.fracture import MORPHOLOGIES, fracture_for_grade, truth_record
from healthivert.phantom.render import (
    HU,
    Grid,
    PlacedVertebra,
    Texture,
    finish_ct,
    paint_background,
    paint_pelvis,
    paint_vertebra_bone,
    paint_vertebra_soft,
)
from healthivert.phantom.spine import local_frame, make_centreline

ORIENTATIONS = ("LPS", "RAS", "IPL", "LAS", "PIR", "RPI")
SLICE_SPACINGS_MM = (1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
SACRUM_LABEL = 26


@dataclass(frozen=True)
class FractureSpec:
    """A requested fracture: vertebra name, Genant grade (1-3) and morphology."""

    vertebra: str
    grade: int
    morphology: str

    def __post_init__(self) -> None:
        if self.grade not in (1, 2, 3):
            raise ValueError(f"fracture grade must be 1-3; got {self.grade}")
        if self.morphology not in MORPHOLOGIES:
            raise ValueError(f"morphology must be one of {MORPHOLOGIES}; got {self.morphology!r}")
        verse_label(self.vertebra)


@dataclass(frozen=True)
class PhantomConfig:
    """What to synthesise. ``None`` fields are drawn from the seed.

    Attributes:
        top, bottom: vertebra range, cranial to caudal (T1..L5).
        fractures: explicit fractures; when None, ``n_fractures`` random ones.
        n_fractures: (min, max) number of random fractures.
        deformity_rate: chance that an unfractured vertebra has a sub-threshold (<20 %) deformity.
        in_plane_mm, slice_mm: voxel size; None draws a realistic one.
        orientation: axis codes of the written files; None draws one of ``ORIENTATIONS``.
        noise_hu: standard deviation of the image noise (HU).
        blur_mm: point-spread function sigma (mm).
        margin_mm: field of view beyond the top and bottom vertebrae along the spine (mm);
            negative values cut those vertebrae.
        margin_below_mm: the margin below the bottom vertebra, when it differs (mm).
        pelvis: with L5 in view, paint the sacrum's alae and lower segments and the iliac
            wings (for segmenter training; off by default, so other uses are unchanged).
        dim_bone: draw the HU of the posterior elements, ribs and cortex per study, from just
            above the trabecular bone up to the defaults (thin laminae and cortex read dim at
            thick slices and in osteoporotic bone: 150-200 HU on real CT); for segmenter
            training, off by default (the other draws of a seed are unchanged either way).
        real_contrast: draw the study's tissue HU and texture from what real CT reads
            (``REAL_CONTRAST``; ``docs/experiments.md``: trabecular cores ~105-130 HU with an
            IQR of ~115 HU, cortex rims ~290-370 HU, discs ~70-90 HU, soft tissue -10..35 HU,
            all spread wider than the default phantom's): dim, heterogeneous bone for segmenter
            training. Overrides ``dim_bone``. Off by default; drawn from a seeded stream of its
            own, so the study's other draws (anatomy, fractures, spacing) are unchanged.
        intact: draw the study with its fractures, then leave every body at its healthy
            height: the fractured study's intact twin (the same anatomy, noise and other draws;
            the neighbours placed by healthy heights). A pseudo-healthy body should be the same
            in both twins.
        body_proportions: every body's (height, depth, width) scaled by these factors, beyond
            the level's table and the study's size (real bodies are relatively wider than
            the table's: ``benchmarks/gan_domain.py``); the default leaves every draw unchanged.
        vary_proportions: draw the study's body proportions (``PROPORTION_RANGES``) on top of
            ``body_proportions``, from a stream of their own (the other draws stay as they are):
            people's bodies differ in height for the same endplate size, which a network
            trained on fixed proportions reads the height from (``benchmarks/gan_domain.py``).
    """

    top: str = "T8"
    bottom: str = "L5"
    fractures: tuple[FractureSpec, ...] | None = None
    n_fractures: tuple[int, int] = (0, 3)
    deformity_rate: float = 0.25
    in_plane_mm: float | None = None
    slice_mm: float | None = None
    orientation: str | None = None
    noise_hu: float = 20.0
    blur_mm: float = 0.6
    margin_mm: float = 12.0
    margin_below_mm: float | None = None
    pelvis: bool = False
    dim_bone: bool = False
    real_contrast: bool = False
    intact: bool = False
    body_proportions: tuple[float, float, float] = (1.0, 1.0, 1.0)
    vary_proportions: bool = False

    def __post_init__(self) -> None:
        # checked here, not deep in rendering: a bad orientation used to fail in SimpleITK after
        # the whole study was built, and a zero spacing was silently replaced by a drawn one
        for name in ("in_plane_mm", "slice_mm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive voxel size in mm; got {value}")
        if self.orientation is not None:
            codes = str(self.orientation).upper()
            axes = sorted("LRAPSI".index(c) // 2 for c in codes if c in "LRAPSI")
            if len(codes) != 3 or axes != [0, 1, 2]:
                raise ValueError(f"orientation must be three axis codes, one of L/R, A/P and S/I "
                                 f"(e.g. LPS); got {self.orientation!r}")

    def labels(self) -> list[int]:
        lo, hi = verse_label(self.top), verse_label(self.bottom)
        if not (8 <= lo <= hi <= 24):
            raise ValueError(f"vertebra range must run cranial to caudal within T1..L5; got {self.top}-{self.bottom}")
        return list(range(lo, hi + 1))


@dataclass
class PhantomStudy:
    """A synthetic study: CT (HU), vertebra mask, body-only mask (VerSe labels) and truth."""

    subject: str
    ct: Volume
    mask: Volume
    body_mask: Volume
    truth: dict = field(default_factory=dict)


def _draw_fractures(cfg: PhantomConfig, labels: list[int], rng: np.random.Generator) -> dict[int, tuple[int, str]]:
    if cfg.fractures is not None:
        out = {}
        for f in cfg.fractures:
            lab = verse_label(f.vertebra)
            if lab not in labels:
                raise ValueError(f"fracture at {f.vertebra} is outside the range {cfg.top}-{cfg.bottom}")
            out[lab] = (f.grade, f.morphology)
        return out
    n = int(rng.integers(cfg.n_fractures[0], cfg.n_fractures[1] + 1))
    chosen = rng.choice(labels, size=min(n, len(labels)), replace=False)
    return {int(lab): (int(rng.integers(1, 4)), str(rng.choice(MORPHOLOGIES))) for lab in chosen}


def _dim_bone_hu(trabecular_hu: float, seed: int) -> dict[str, float]:
    """Posterior-element, rib and cortical HU of one study (``dim_bone``), drawn from their own
    seeded stream so the study's other draws do not move."""
    rng = np.random.default_rng([seed, 13])
    posterior = float(rng.uniform(trabecular_hu + 40.0, HU["posterior"]))
    return {"posterior": posterior, "rib": float(rng.uniform(trabecular_hu + 40.0, HU["rib"])),
            "cortical": float(rng.uniform(max(posterior, 400.0), HU["cortical"]))}


#: ``real_contrast``: the uniform range (lo, hi) of each drawn value, painted HU before the
#: point-spread blur and noise (measured rims mix the painted 1 mm cortex with what lies beside
#: it), texture SDs (HU) and correlation (mm) of ``render.Texture``, image noise SD (HU)
REAL_CONTRAST = {
    "trabecular": (100.0, 180.0), "cortical": (420.0, 720.0), "disc": (55.0, 100.0),
    "muscle": (-10.0, 45.0), "fat": (-120.0, -70.0), "csf": (0.0, 25.0),
    "bone_sd_hu": (60.0, 110.0), "soft_sd_hu": (25.0, 60.0), "correlation_mm": (1.0, 2.0),
    "noise_hu": (15.0, 35.0),
}


def real_contrast_draw(seed: int) -> dict[str, float]:
    """The tissue HU, texture and noise of study ``seed`` under ``real_contrast``, from a
    seeded stream of their own: ``REAL_CONTRAST``'s ranges, posterior elements and ribs
    between the trabecular and the cortical HU."""
    rng = np.random.default_rng([seed, 31])
    out = {k: float(rng.uniform(lo, hi)) for k, (lo, hi) in REAL_CONTRAST.items()}
    out["posterior"] = float(rng.uniform(out["trabecular"] + 80.0, max(out["cortical"], out["trabecular"] + 80.0)))
    out["rib"] = float(rng.uniform(out["trabecular"] + 80.0, max(out["cortical"], out["trabecular"] + 80.0)))
    return out


#: per-study (height, depth, width) factors of ``vary_proportions``: adult vertebral body height
#: at a level varies between people by roughly 6-8 % (1 SD), endplate size by about as much, the
#: two only partly together; these uniform ranges span about two SDs each side. (Not fitted to
#: any real case: the real VerSe crops are for checking.)
PROPORTION_RANGES = ((0.86, 1.16), (0.92, 1.08), (0.90, 1.12))


def study_proportions(cfg: PhantomConfig, seed: int) -> tuple[float, float, float]:
    """The body proportions of study ``seed``: ``cfg.body_proportions``, times a draw from
    ``PROPORTION_RANGES`` when ``cfg.vary_proportions``."""
    if not cfg.vary_proportions:
        return cfg.body_proportions
    rng = np.random.default_rng([seed, 29])
    return tuple(float(k * rng.uniform(lo, hi)) for k, (lo, hi) in zip(cfg.body_proportions, PROPORTION_RANGES))


def make_phantom(cfg: PhantomConfig, seed: int, subject: str | None = None) -> PhantomStudy:
    """Build one phantom study, deterministically from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = cfg.labels()
    subject = subject or f"sub-phantom{seed:04d}"
    scale = float(rng.uniform(0.92, 1.08))
    shapes = {lab: vertebra_shape(lab, rng, scale, study_proportions(cfg, seed)) for lab in labels}
    fractures = _draw_fractures(cfg, labels, rng)
    trab_hu = float(rng.uniform(90.0, 230.0))  # study bone density: osteoporotic to normal
    real = real_contrast_draw(seed) if cfg.real_contrast else None
    if real is not None:
        trab_hu = real["trabecular"]
    placed_fx = {}
    for lab in labels:
        sh = shapes[lab]
        grade, morph = fractures.get(lab, (0, str(rng.choice(MORPHOLOGIES))))
        deformity = float(rng.uniform(0.04, 0.16)) if rng.random() < cfg.deformity_rate else 0.0
        fracture = fracture_for_grade(sh, grade, morph, rng, deformity)  # drawn either way: twins share draws
        placed_fx[lab] = None if cfg.intact and grade else fracture
    truths = {lab: truth_record(shapes[lab], placed_fx[lab]) for lab in labels}

    # place vertebrae along a curved centreline by the mid height their neighbours rest on: the
    # fractured one for a crush (both endplates sink evenly) and a wedge, the healthy one for a
    # biconcave body, whose endplates sink inside an intact rim while the disc fills the hollow
    # (placing it by its fractured middle thinned the discs at its rim by the height loss)
    heights = {lab: truths[lab]["healthy_heights_mm" if truths[lab]["morphology"] == "biconcave"
                               else "fractured_heights_mm"]["middle"] for lab in labels}
    # extent of each body below its frame origin: a wedge lowers only its superior endplate, so
    # its inferior one stays at half the healthy height (placing it by half the fractured height
    # thinned the disc below by half the height loss)
    below = {lab: (truths[lab]["healthy_heights_mm"]["middle"] if truths[lab]["morphology"] == "wedge"
                   else heights[lab]) / 2 for lab in labels}
    disc_top = shapes[labels[0]].disc_below
    length = 40 + sum(heights[lab] + shapes[lab].disc_below for lab in labels) + disc_top
    curve = make_centreline(
        length, kyphosis_mm=float(rng.uniform(6, 18)), junction=float(rng.uniform(0.35, 0.6)),
        scoliosis_mm=float(rng.uniform(0, 8)), scoliosis_wavelength_mm=float(rng.uniform(300, 600)),
        phase=float(rng.uniform(0, 2 * np.pi)),
    )
    placed: list[PlacedVertebra] = []
    cursor = 20.0 + disc_top
    prev_disc = disc_top
    for lab in labels:
        s_centre = cursor + heights[lab] - below[lab]
        axes = local_frame(curve.superior_tangent(s_centre), float(rng.uniform(-6, 6)))
        placed.append(PlacedVertebra(shapes[lab], placed_fx[lab], curve.at(s_centre), axes,
                                     trab_hu * float(rng.uniform(0.9, 1.1)), prev_disc))
        cursor = s_centre + below[lab] + shapes[lab].disc_below
        prev_disc = shapes[lab].disc_below
    sacrum = None
    if labels[-1] == 24:
        sh = vertebra_shape(24, rng, scale * 1.05)
        s_centre = cursor + sh.height / 2
        axes = local_frame(curve.superior_tangent(s_centre), 0.0)
        tilt = np.deg2rad(30.0)  # sacral promontory faces anteriorly
        rot = np.array([[1, 0, 0], [0, np.cos(tilt), np.sin(tilt)], [0, -np.sin(tilt), np.cos(tilt)]])
        sacrum = PlacedVertebra(sh, None, curve.at(s_centre), axes @ rot, trab_hu, prev_disc)

    # grid: spine extent plus soft tissue, in RAS axis order
    in_plane = cfg.in_plane_mm or float(np.round(rng.uniform(0.6, 1.0), 3))
    slice_mm = cfg.slice_mm or float(rng.choice(SLICE_SPACINGS_MM))
    z_factor = max(1, int(np.ceil(slice_mm / 1.0)))
    z_factor += 1 - z_factor % 2  # odd, so a fine slice sits at every final slice centre
    top_v, bot_v = placed[0], placed[-1]
    z_hi = top_v.centre[2] + top_v.shape.height / 2 + cfg.margin_mm
    z_lo = bot_v.centre[2] - bot_v.shape.height / 2 - (
        cfg.margin_mm if cfg.margin_below_mm is None else cfg.margin_below_mm)
    pts = curve.points[(curve.points[:, 2] <= z_hi) & (curve.points[:, 2] >= z_lo)]
    lo = np.array([pts[:, 0].min() - 85, pts[:, 1].min() - 85, z_lo])
    hi = np.array([pts[:, 0].max() + 85, pts[:, 1].max() + 100, z_hi])
    spacing = np.array([in_plane, in_plane, slice_mm])
    shape = tuple(int(n) for n in np.floor((hi - lo) / spacing) + 1)
    fine_spacing = np.array([in_plane, in_plane, slice_mm / z_factor])
    fine_origin = lo - np.array([0, 0, (z_factor // 2) * fine_spacing[2]])
    fine = Grid(fine_origin, fine_spacing, (shape[0], shape[1], shape[2] * z_factor))

    diaphragm = next((v.centre[2] for v in placed if v.shape.label == 19), None)
    if diaphragm is None and labels[-1] < 19:
        diaphragm = z_lo - 100.0
    hu = paint_background(fine, curve, diaphragm, tone=real)
    label = np.zeros(fine.shape, np.uint8)
    body = np.zeros(fine.shape, np.uint8)
    bone = np.zeros(fine.shape, bool) if real is not None else None
    everything = placed + ([sacrum] if sacrum else [])
    for v in everything:
        paint_vertebra_soft(hu, fine, v, tone=real)
    tone = real if real is not None else _dim_bone_hu(trab_hu, seed) if cfg.dim_bone else None
    for v in everything:
        lab = SACRUM_LABEL if v is sacrum else v.shape.label
        paint_vertebra_bone(hu, label, body, fine, v, lab, ribs=v.shape.label <= 19 and v is not sacrum,
                            bone_hu=tone, bone=bone)
    if sacrum is not None and cfg.pelvis:
        pelvis_kw = {} if real is None else {"cortical_hu": 0.8 * real["cortical"], "bone": bone}
        paint_pelvis(hu, label, fine, sacrum, SACRUM_LABEL, **pelvis_kw)
    texture = None if real is None else Texture(real["bone_sd_hu"], real["soft_sd_hu"], real["correlation_mm"])
    noise = cfg.noise_hu if real is None else real["noise_hu"]
    ct = finish_ct(hu, fine, z_factor, cfg.blur_mm, noise, rng, bone=bone, texture=texture)
    centre_slices = slice(z_factor // 2, None, z_factor)
    grid = Grid(lo, spacing, shape)
    orientation = cfg.orientation or str(rng.choice(ORIENTATIONS))

    def volume(array: np.ndarray) -> Volume:
        return Volume(array, grid.affine, _source_for(array, grid.affine, orientation))

    ct_vol = volume(ct)
    mask_vol = volume(label[:, :, centre_slices].copy())
    body_vol = volume(body[:, :, centre_slices].copy())
    present = set(np.unique(mask_vol.array).tolist())
    coms = centroids_from_mask(mask_vol)
    vertebrae = []
    for v in placed:
        lab = v.shape.label
        rec = {"label": lab, "name": VERSE_NAMES[lab], **truths[lab]}
        rec.update({
            "in_mask": lab in present,
            "centroid_mm": [round(float(c), 3) for c in coms[lab]] if lab in coms else None,
            "body_centre_mm": [round(float(c), 3) for c in v.centre],
            "axes": {k: [round(float(c), 6) for c in v.axes[:, i]] for i, k in enumerate(("lr", "ap", "si"))},
            "body_size_mm": {"height": round(v.shape.height, 3), "depth": round(v.shape.depth, 3),
                             "width": round(v.shape.width, 3)},
            "posterior_wall_mm": round(v.shape.posterior_wall, 3),
            "trabecular_hu": round(v.trabecular_hu, 1),
        })
        vertebrae.append(rec)
    truth = {
        "subject": subject,
        "seed": seed,
        "coordinate_system": "RAS",
        "units": {"lengths": "mm", "ct": "HU", "rhlv": "fraction"},
        "section_definition": "mean body height along the local spine axis in each third of the "
                              "body's AP extent, central 40 % of its LR extent",
        "spacing_mm": [float(x) for x in spacing],
        "orientation": orientation,
        "trabecular_hu": round(trab_hu, 1),
        "config": _config_dict(cfg),
        "vertebrae": vertebrae,
    }
    return PhantomStudy(subject, ct_vol, mask_vol, body_vol, truth)


def _config_dict(cfg: PhantomConfig) -> dict:
    d = asdict(cfg)
    d["n_fractures"] = list(cfg.n_fractures)
    if cfg.fractures is not None:
        d["fractures"] = [asdict(f) for f in cfg.fractures]
    return d


def _source_for(array: np.ndarray, affine: np.ndarray, orientation: str) -> SourceGeometry:
    """The grid the study's files are written on: the RAS grid reoriented to ``orientation``."""
    return SourceGeometry.of(sitk.DICOMOrient(empty_sitk_image(array.shape, affine), orientation))


def write_phantom(study: PhantomStudy, root: str | Path) -> dict[str, Path]:
    """Write a study in the VerSe layout under ``root`` (files renamed into place when done)."""
    paths = study_paths(root, study.subject)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    write_volume(study.ct, paths["ct"])
    write_volume(study.mask, paths["mask"])
    write_volume(study.body_mask, paths["body_mask"])
    write_centroids(centroids_from_mask(study.mask), paths["centroids"], study.mask, fmt="verse")
    # truth last: its presence marks a complete study
    atomic_write_text(paths["truth"], json.dumps(study.truth, indent=1) + "\n")
    return paths


def write_cohort(
    root: str | Path, n: int, seed: int, cfg: PhantomConfig | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> list[str]:
    """Write ``n`` studies with seeds ``seed, seed+1, ...``; returns their subject ids."""
    if n < 1:
        raise ValueError(f"n must be at least 1; got {n}")
    cfg = cfg or PhantomConfig()
    subjects = []
    for i in range(n):
        study = make_phantom(cfg, seed + i)
        write_phantom(study, root)
        subjects.append(study.subject)
        if progress:
            progress(i + 1, n, study.subject)
    return subjects
