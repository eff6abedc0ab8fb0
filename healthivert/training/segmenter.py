"""``healthivert train segmenter``: a MONAI UNet trained on phantom CTs (domain-randomised),
on a VerSe download tree, or on both mixed (``source: mixed``, real-domain augmentation in
:mod:`healthivert.training.real_domain`).

Studies are generated (phantoms) or read (VerSe) once, preprocessed exactly as inference
does (network spacing, HU window) and cached in the work folder; training samples random
patches with MONAI dictionary augmentations (intensity, histogram shift, gamma, noise, blur,
rotation and scaling). Resumable: a checkpoint is written every ``checkpoint_every`` steps
and picked up on the next run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandCropByLabelClassesd,
    RandCropByPosNegLabeld,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandHistogramShiftd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write_npz
from healthivert.io.images import load_ct, load_mask
from healthivert.io.verse_tree import VerseStudy
from healthivert.io.volume import Volume
from healthivert.labels import VERTEBRA_LABELS
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.segmentation.config import CLASSES, SACRUM_CLASS, VERTEBRA_CLASS, SegmenterConfig
from healthivert.segmentation.identify import SACRUM_LABEL
from healthivert.segmentation.infer import predict_classes, preprocess, resample_labels
from healthivert.segmentation.network import build_network, load_weights, save_weights
from healthivert.training.config import TrainRecipe, load_train_recipe, verse_rows
from healthivert.training.real_domain import (
    RandFieldOfViewd,
    RandThickSlicesd,
    masked_dice_ce,
    pick_subjects,
    sacrum_below_l5,
    tree_studies,
    unlabelled_bone,
)
from healthivert.training.trainer import Progress, SeededDraws, Trainer

log = logging.getLogger(__name__)

#: the recipe's ``augmentation`` choices, as the model card words them
AUGMENTATIONS = {
    "standard": "intensity scale/shift, histogram shift, gamma, noise, blur, rotation/scaling",
    "real": "intensity scale/shift (wider), histogram shift, gamma, noise, blur, rotation/scaling, "
            "thick slices (3-6 mm) along a random axis, field of view ending in the patch",
}


@dataclass(frozen=True)
class SegmenterTrainConfig(TrainRecipe):
    """``pipelines/segmenter.yaml``: data, schedule and output of a segmenter training run; the
    fields every training recipe shares are documented in ``config.TrainRecipe``.

    ``source`` "mixed" trains on both the phantoms of ``train_studies`` and the VerSe
    subjects, ``phantom_fraction`` of the patches drawn from phantoms, and validates on the
    phantoms of ``val_studies`` only (no real subject is scored during a run, so a held-out one
    stays unseen). ``subjects`` may name any subject in the tree with a CT and a mask.

    ``augmentation`` "real" adds thick slices along a random axis, a field of view that ends in
    the patch and wider intensity scale and offset (``healthivert.training.real_domain``) to
    "standard". ``ignore_unlabelled_bone`` (verse or mixed): in a VerSe study, bone outside the
    experts' mask (the sacrum, vertebrae above and below the annotation:
    ``real_domain.unlabelled_bone``) is left out of the loss instead of taught as background;
    phantom patches are scored whole. ``sacrum_below_l5`` (verse or mixed): in a VerSe study
    annotated down to L5, the unannotated bone below it on the midline is taught as sacrum
    (``real_domain.sacrum_below_l5``) instead of background. ``pelvis``, ``pelvis_fraction``,
    ``dim_bone_fraction``, ``real_contrast_fraction`` (the share of phantoms drawn with real-like tissue HU and texture,
    ``PhantomConfig.real_contrast``), ``margin_below_mm`` and ``margin_above_mm`` shape the
    phantom studies (``_phantom_config``).
    """

    SOURCES = ("phantom", "verse", "mixed")

    phantom_fraction: float = 0.5
    augmentation: str = "standard"
    ignore_unlabelled_bone: bool = False
    sacrum_below_l5: bool = False
    pelvis: bool = False
    pelvis_fraction: float = 1.0
    dim_bone_fraction: float = 0.0
    real_contrast_fraction: float = 0.0
    margin_below_mm: tuple[float, float] | None = None
    margin_above_mm: tuple[float, float] | None = None
    crop_ratios: tuple[float, float, float] | None = None
    workdir: str = "build/segmenter"
    output: str = "healthivert/models/segmenter_unet.safetensors"
    network: SegmenterConfig = field(default_factory=SegmenterConfig)

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("pelvis_fraction", "dim_bone_fraction", "real_contrast_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {getattr(self, name)}")
        if self.source == "mixed" and not 0.0 < self.phantom_fraction < 1.0:
            raise ValueError(f"phantom_fraction must lie strictly between 0 and 1 for source mixed; "
                             f"got {self.phantom_fraction}")
        for name in ("ignore_unlabelled_bone", "sacrum_below_l5"):
            if self.source == "phantom" and getattr(self, name):
                raise ValueError(f"{name} concerns VerSe subjects: source must be verse or mixed")
        if self.crop_ratios is not None and (len(self.crop_ratios) != len(CLASSES) or min(self.crop_ratios) < 0
                                             or sum(self.crop_ratios) <= 0):
            raise ValueError(f"crop_ratios must be {len(CLASSES)} non-negative numbers {list(CLASSES)} with a "
                             f"positive sum; got {self.crop_ratios}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {list(AUGMENTATIONS)}; got {self.augmentation!r}")


def load_segmenter_config(path: str | Path) -> SegmenterTrainConfig:
    """Read and check a segmenter recipe."""
    return load_train_recipe(SegmenterTrainConfig, path, network=SegmenterConfig)


def class_map(labels: np.ndarray) -> np.ndarray:
    """Training target from a VerSe mask: 0 background, 1 vertebra, 2 sacrum."""
    out = np.zeros(labels.shape, np.uint8)
    out[np.isin(labels, sorted(VERTEBRA_LABELS))] = VERTEBRA_CLASS
    out[labels == SACRUM_LABEL] = SACRUM_CLASS
    return out


def _phantom_config(seed: int, cfg: SegmenterTrainConfig) -> PhantomConfig:
    """The phantom of one training study: with ``margin_below_mm`` (lo, hi), the view below
    the bottom vertebra is drawn from that range, seeded by the study (the sacrum and pelvis
    seen whole or in part, as abdominal CTs do); ``margin_above_mm`` likewise above the top
    vertebra, where a negative margin cuts it at the edge of the view, as real scans cut the
    vertebra at their ends; with ``pelvis``, a seeded ``pelvis_fraction`` of the studies
    carries a pelvis, a seeded ``dim_bone_fraction`` has dim posterior elements, ribs and
    cortex (``PhantomConfig.dim_bone``) and a seeded ``real_contrast_fraction`` real-like tissue
    HU and texture (``PhantomConfig.real_contrast``)."""
    below, above = None, PhantomConfig.margin_mm
    if cfg.margin_below_mm is not None:
        lo, hi = cfg.margin_below_mm
        below = float(np.random.default_rng([seed, 7]).uniform(lo, hi))
    if cfg.margin_above_mm is not None:
        lo, hi = cfg.margin_above_mm
        above = float(np.random.default_rng([seed, 5]).uniform(lo, hi))
        if below is None:  # the view below keeps the default margin
            below = PhantomConfig.margin_mm
    return PhantomConfig(top=cfg.top, bottom=cfg.bottom, pelvis=_has_pelvis(seed, cfg), margin_mm=above,
                         margin_below_mm=below, dim_bone=_has_dim_bone(seed, cfg),
                         real_contrast=_has_real_contrast(seed, cfg))


def _drawn(seed: int, stream: int, fraction: float) -> bool:
    """Whether study ``seed`` falls in a seeded ``fraction`` of the studies (one stream per
    property, so the draws of one do not move another's)."""
    return float(np.random.default_rng([seed, stream]).random()) < fraction


def _has_real_contrast(seed: int, cfg: SegmenterTrainConfig) -> bool:
    return _drawn(seed, 19, cfg.real_contrast_fraction)


def _has_dim_bone(seed: int, cfg: SegmenterTrainConfig) -> bool:
    return _drawn(seed, 17, cfg.dim_bone_fraction)


def _has_pelvis(seed: int, cfg: SegmenterTrainConfig) -> bool:
    return cfg.pelvis and (cfg.pelvis_fraction >= 1.0 or _drawn(seed, 11, cfg.pelvis_fraction))


def _cache_name(seed: int, cfg: SegmenterTrainConfig) -> str:
    extra = ("_pelvis" if _has_pelvis(seed, cfg) else "") + ("_dim" if _has_dim_bone(seed, cfg) else "") + (
        "_realct" if _has_real_contrast(seed, cfg) else "") + (
        "_below{:g}-{:g}".format(*cfg.margin_below_mm) if cfg.margin_below_mm is not None else "") + (
        "_above{:g}-{:g}".format(*cfg.margin_above_mm) if cfg.margin_above_mm is not None else "")
    return f"phantom{seed}_{cfg.network.spacing_mm:g}mm{extra}.npz"


def _arrays(ct: Volume, mask: Volume, net: SegmenterConfig, sacrum_below: bool = False) -> dict[str, np.ndarray]:
    """Network input and class target of one study, preprocessed exactly as inference does;
    with ``sacrum_below`` (a VerSe study), the bone below its L5 taught as sacrum."""
    image = preprocess(ct, net).numpy().astype(np.float32)
    labels = np.round(resample_labels(mask, net).numpy()).astype(np.uint8)  # nearest: VerSe labels kept
    target = class_map(labels)
    if sacrum_below:
        below = sacrum_below_l5(image, labels, net.hu_window, net.spacing_mm)
        target[0][below & (target[0] == 0)] = SACRUM_CLASS
    return {"image": image, "label": target}


def _study_arrays(seed: int, cfg: SegmenterTrainConfig) -> dict[str, np.ndarray]:
    study = make_phantom(_phantom_config(seed, cfg), seed)
    return _arrays(study.ct, study.mask, cfg.network)


def _cached_arrays(path: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if not path.is_file():
        atomic_write_npz(path, build())
    with np.load(path) as data:
        return {"image": data["image"], "label": data["label"]}


def verse_studies(cfg: SegmenterTrainConfig, splits: tuple[str, ...], named: bool = False) -> list[VerseStudy]:
    """The VerSe studies of a run: by name (``subjects``, when ``named`` and given) or the
    manifest's ``splits``; less ``exclude_subjects``."""
    if named and cfg.subjects:
        return tree_studies(cfg.verse_root, cfg.subjects, cfg.exclude_subjects)
    rows = verse_rows(cfg.manifest, cfg.verse_root, splits).drop_duplicates("subject")
    by_name = {r.subject: VerseStudy(r.subject, Path(r.ct), Path(r.mask)) for r in rows.itertuples()}
    kept = [s for s in by_name if s not in set(cfg.exclude_subjects)]
    if named:  # training: a misspelt exclusion or nothing left is an error
        kept = pick_subjects(list(by_name), (), cfg.exclude_subjects, f"{cfg.verse_root} (splits {list(splits)})")
    return [by_name[s] for s in kept]


def verse_cohort(cfg: SegmenterTrainConfig, studies: list[VerseStudy], progress: Progress | None = None
                 ) -> list[dict]:
    """Preprocessed VerSe studies (CT and mask), cached; with ``ignore_unlabelled_bone``, each
    with its loss mask (``ignore``: 1 on bone outside the experts' mask)."""
    cache = Path(cfg.workdir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, study in enumerate(studies):
        name = f"verse_{study.subject}_{cfg.network.spacing_mm:g}mm{'_sacrum' if cfg.sacrum_below_l5 else ''}.npz"
        out.append(_cached_arrays(cache / name, lambda s=study: _arrays(load_ct(s.ct), load_mask(s.mask),
                                                                      cfg.network, cfg.sacrum_below_l5)))
        if cfg.ignore_unlabelled_bone:
            item = out[-1]
            item["ignore"] = unlabelled_bone(item["image"], item["label"], cfg.network.hu_window,
                                             cfg.network.spacing_mm)
        if progress:
            progress(i + 1, len(studies), study.subject)
    return out


def cached_cohort(seeds: range, cfg: SegmenterTrainConfig, progress: Progress | None = None) -> list[dict]:
    """Preprocessed phantom studies, generated once and kept in ``workdir/cache``."""
    cache = Path(cfg.workdir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for i, seed in enumerate(seeds):
        out.append(_cached_arrays(cache / _cache_name(seed, cfg), lambda seed=seed: _study_arrays(seed, cfg)))
        if progress:
            progress(i + 1, len(seeds), f"phantom {seed}")
    return out


def _crop(cfg: SegmenterConfig, keys: list[str], ratios: tuple[float, ...] | None
          ) -> RandCropByPosNegLabeld | RandCropByLabelClassesd:
    """Patch centres: on bone three times in four, or per class in ``ratios`` (background,
    vertebra, sacrum; a class absent from the study is skipped)."""
    if ratios is None:
        return RandCropByPosNegLabeld(keys=keys, label_key="label", spatial_size=cfg.patch, pos=3, neg=1,
                                      num_samples=1)
    return RandCropByLabelClassesd(keys=keys, label_key="label", spatial_size=cfg.patch, ratios=list(ratios),
                                   num_classes=len(CLASSES), num_samples=1, warn=False)


def _augment(cfg: SegmenterConfig, seed: int, kind: str = "standard", masked: bool = False,
             ratios: tuple[float, ...] | None = None) -> Compose:
    """Patch sampling and domain randomisation. Phantom tissue contrasts are fixed per tissue;
    real scans differ (osteoporotic trabecular bone near disc HU, dimmer cortex and endplates at
    thick slices, other kernels), so the intensity mapping is bent non-linearly
    (histogram shift, gamma), and shape by small rotations and scalings. ``kind`` "real" also
    thickens the slices along a random axis (real VerSe crops include 3 mm sagittal
    reconstructions), ends the field of view inside the patch (tight crops) and widens the
    intensity scale (25 %) and offset (0.1 of the window, 150 HU). ``masked``: the studies
    carry a loss mask (``ignore``), moved with the label (zeroed where the field of view
    zeroes the label: the cut is taught as background). ``ratios``: see :func:`_crop`."""
    real = kind == "real"
    maps = ["label", "ignore"] if masked else ["label"]
    aug = Compose([
        SpatialPadd(keys=["image", *maps], spatial_size=cfg.patch),
        _crop(cfg, ["image", *maps], ratios),
        RandAffined(keys=["image", *maps], prob=0.4, rotate_range=(0.2, 0.2, 0.2), scale_range=0.1,
                    mode=("bilinear", *["nearest"] * len(maps)), padding_mode=("border", *["zeros"] * len(maps))),
        *([RandThickSlicesd(keys="image", prob=0.5, factor=(1.5, 3.0)),
           RandFieldOfViewd(keys=["image", *maps], prob=0.3)] if real else []),
        RandScaleIntensityd(keys="image", factors=0.25 if real else 0.15, prob=0.8),
        RandShiftIntensityd(keys="image", offsets=0.1 if real else 0.08, prob=0.8),
        RandHistogramShiftd(keys="image", num_control_points=(5, 10), prob=0.4),
        RandAdjustContrastd(keys="image", gamma=(0.7, 1.5), prob=0.3),
        RandGaussianSmoothd(keys="image", sigma_x=(0.2, 1.5), sigma_y=(0.2, 1.5), sigma_z=(0.2, 1.5), prob=0.5),
        RandGaussianNoised(keys="image", std=0.03, prob=0.6),
    ])
    aug.set_random_state(seed)
    return aug


class PatchSampler(SeededDraws):
    """Augmented training patches, item ``i`` drawn from its own seed (``seed``, ``i``); with
    ``weights``, study ``k`` is drawn with probability ``weights[k]`` (they sum to 1), else
    every study alike. When any study carries a loss mask (``ignore``), items are (image,
    label, ignore), studies without one ignoring nothing; else (image, label)."""

    def __init__(self, studies: list[dict], net: SegmenterConfig, seed: int, weights: list[float] | None = None,
                 augmentation: str = "standard", ratios: tuple[float, ...] | None = None) -> None:
        super().__init__(seed)
        self.masked = any("ignore" in s for s in studies)
        self.studies = [_with_ignore(s) for s in studies] if self.masked else studies
        self.weights = weights
        self.aug = _augment(net, seed, augmentation, self.masked, ratios)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        rng = self.rng(i)
        self.aug.set_random_state(seed=int(rng.integers(2**31)))
        k = int(rng.choice(len(self.studies), p=self.weights)) if self.weights else int(rng.integers(len(self.studies)))
        sample = self.aug(self.studies[k])[0]
        keys = ("image", "label", "ignore") if self.masked else ("image", "label")
        return tuple(sample[key].as_tensor() for key in keys)


def _with_ignore(study: dict) -> dict:
    """A study with a loss mask: its own, or one ignoring nothing (phantoms: every voxel taught)."""
    return study if "ignore" in study else {**study, "ignore": np.zeros_like(study["label"])}


def _cohorts(cfg: SegmenterTrainConfig, progress: Progress | None = None
             ) -> tuple[list[dict], list[dict], list[float] | None, list[str]]:
    """(training studies, validation studies, draw weights or None, VerSe subjects trained on)."""
    phantom_seeds = range(cfg.train_seed, cfg.train_seed + cfg.train_studies)
    phantom_val = range(cfg.val_seed, cfg.val_seed + cfg.val_studies)
    if cfg.source == "phantom":
        return cached_cohort(phantom_seeds, cfg, progress), cached_cohort(phantom_val, cfg), None, []
    real = verse_studies(cfg, cfg.train_splits, named=True)
    names = [s.subject for s in real]
    if cfg.source == "verse":
        val = verse_cohort(cfg, verse_studies(cfg, cfg.val_splits))
        return verse_cohort(cfg, real, progress), val, None, names
    phantoms = cached_cohort(phantom_seeds, cfg, progress)
    f = cfg.phantom_fraction
    weights = [f / len(phantoms)] * len(phantoms) + [(1 - f) / len(real)] * len(real)
    return phantoms + verse_cohort(cfg, real, progress), cached_cohort(phantom_val, cfg), weights, names


def _phantom_data(cfg: SegmenterTrainConfig) -> str:
    """The model card's words for the phantom training cohort."""
    return (f"{cfg.train_studies} phantom CT studies ({cfg.top}-{cfg.bottom}, seeds {cfg.train_seed}.."
            f"{cfg.train_seed + cfg.train_studies - 1}), random spacing"
            + ((", with a pelvis" if cfg.pelvis_fraction >= 1 else
                f", a pelvis in {cfg.pelvis_fraction:.0%} of them") if cfg.pelvis else "")
            + (", {:g}-{:g} mm seen below the bottom vertebra".format(*cfg.margin_below_mm)
               if cfg.margin_below_mm is not None else "")
            + (", {:g}-{:g} mm seen above the top vertebra (negative: cut by the view)".format(
                *cfg.margin_above_mm) if cfg.margin_above_mm is not None else "")
            + (f", dim posterior elements and cortex in {cfg.dim_bone_fraction:.0%} of them"
               if cfg.dim_bone_fraction else "")
            + (f", real-like tissue HU and texture in {cfg.real_contrast_fraction:.0%} of them"
               if cfg.real_contrast_fraction else ""))


def _data_card(cfg: SegmenterTrainConfig, subjects: list[str], n_val: int, final: dict) -> tuple[str, str]:
    """(trained on, validation) of the model card."""
    if cfg.source == "verse":
        chosen = f"subjects {subjects}" if cfg.subjects or cfg.exclude_subjects else f"splits {list(cfg.train_splits)}"
        data = f"{len(subjects)} VerSe CT studies (tree {cfg.verse_root}, {chosen})"
        validation = f"{n_val} VerSe studies, splits {list(cfg.val_splits)}, {final}"
    elif cfg.source == "mixed":
        data = (f"{_phantom_data(cfg)} and {len(subjects)} real VerSe CT studies {subjects} (tree {cfg.verse_root}); "
                f"{cfg.phantom_fraction:.0%} of the patches from phantoms")
        validation = f"{cfg.val_studies} phantom studies, seeds {cfg.val_seed}.., {final}"
    else:
        data = _phantom_data(cfg)
        validation = f"{cfg.val_studies} phantom studies, seeds {cfg.val_seed}.., {final}"
    if cfg.init_weights:
        data += f", starting from the weights {Path(cfg.init_weights).name}"
    return data, validation


def _initial_weights(path: str, network: SegmenterConfig) -> torch.nn.Module:
    """The weights at ``path`` (a recipe's ``init_weights``: fine-tuning), refused if their
    network differs from ``network``."""
    model, net, _ = load_weights(path)
    if net != network:
        raise InputError(f"{path}: its network {net} differs from the recipe's {network}")
    return model


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes=(VERTEBRA_CLASS, SACRUM_CLASS)) -> dict[int, float]:
    """Dice of each class (NaN where absent from both)."""
    out = {}
    for c in classes:
        p, t = pred == c, truth == c
        denom = p.sum() + t.sum()
        out[c] = float(2 * (p & t).sum() / denom) if denom else float("nan")
    return out


class SegmenterTrainer(Trainer):
    """The segmenter's steps in the shared loop: Dice + cross-entropy (masked where VerSe bone
    is unlabelled) on augmented patches, AdamW, gradients clipped at 5; validation is the mean
    Dice per class over whole volumes."""

    cfg: SegmenterTrainConfig

    def data(self) -> None:
        self.train, self.val, self.weights, self.subjects = _cohorts(self.cfg, self.progress)

    def build(self) -> None:
        self.model = build_network(self.cfg.network).to(self.device)
        self.optimiser = torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=1e-5)
        self.dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimiser": self.optimiser.state_dict()}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])

    def start_from(self, path: str) -> None:
        self.model.load_state_dict(_initial_weights(path, self.cfg.network).state_dict())
        log.info("starting from %s", path)

    def draws(self) -> PatchSampler:
        return PatchSampler(self.train, self.cfg.network, self.cfg.seed, self.weights, self.cfg.augmentation,
                            self.cfg.crop_ratios)

    def train_step(self, batch, step: int) -> dict[str, float]:
        self.model.train()
        x, y, *ignore = (t.to(self.device, non_blocking=True) for t in batch)
        self.optimiser.zero_grad()
        loss = masked_dice_ce(self.model(x), y, ignore[0]) if ignore else self.dice_ce(self.model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.optimiser.step()
        return {"loss": loss.item()}

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.val, self.cfg.network)

    def note(self, terms: dict[str, float]) -> str:
        loss = np.mean(self.running["loss"]) if self.running else self.history[-1]["loss"]
        return f"loss {loss:.4f}"

    def card(self, final: dict) -> dict:
        cfg = self.cfg
        data, validation = _data_card(cfg, self.subjects, len(self.val), final)
        if cfg.ignore_unlabelled_bone:
            data += "; bone outside the VerSe experts' masks left out of the loss"
        if cfg.crop_ratios is not None:
            data += "; patches centred on background / vertebra / sacrum in the ratio {:g} : {:g} : {:g}".format(
                *cfg.crop_ratios)
        return {"trained_on": f"{data}; augmentation: {AUGMENTATIONS[cfg.augmentation]}", "steps": self.step,
                "batch": cfg.batch, "validation": validation, "history": self.history}

    def save(self, card: dict) -> None:
        save_weights(self.model.cpu(), self.cfg.network, self.cfg.output, card)


def train_segmenter(cfg: SegmenterTrainConfig, progress: Progress | None = None) -> dict:
    """Train (or resume) and write the weights; returns the final metrics."""
    return SegmenterTrainer(cfg, progress).run()


def evaluate(model: torch.nn.Module, cohort: list[dict], net: SegmenterConfig) -> dict[str, float]:
    """Mean Dice per class over whole validation volumes (sliding window)."""
    from monai.data import MetaTensor

    model.eval()
    scores = {VERTEBRA_CLASS: [], SACRUM_CLASS: []}
    for item in cohort:
        device = next(model.parameters()).device
        pred = predict_classes(model.to(device), MetaTensor(torch.from_numpy(item["image"])), net)
        for c, d in dice_per_class(pred, item["label"][0]).items():
            if np.isfinite(d):
                scores[c].append(d)
    return {"dice_vertebra": float(np.mean(scores[VERTEBRA_CLASS]) if scores[VERTEBRA_CLASS] else np.nan),
            "dice_sacrum": float(np.mean(scores[SACRUM_CLASS]) if scores[SACRUM_CLASS] else np.nan)}
