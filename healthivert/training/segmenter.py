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

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss
from monai.transforms import (
    Compose,
    RandAdjustContrastd,
    RandAffined,
    RandCropByPosNegLabeld,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandHistogramShiftd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SpatialPadd,
)
from monai.utils import set_determinism

from healthivert.errors import InputError
from healthivert.io.atomic import atomic_write, atomic_write_npz
from healthivert.io.images import load_ct, load_mask
from healthivert.io.verse_tree import VerseStudy
from healthivert.io.volume import Volume
from healthivert.labels import VERTEBRA_LABELS
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.segmentation.config import SACRUM_CLASS, VERTEBRA_CLASS, SegmenterConfig
from healthivert.segmentation.identify import SACRUM_LABEL
from healthivert.segmentation.infer import predict_classes, preprocess, resample_labels
from healthivert.segmentation.network import build_network, load_weights, save_weights
from healthivert.training.config import (
    build_checked,
    check_data_source,
    read_recipe,
    select_device,
    verse_rows,
    with_tuples,
)
from healthivert.training.loop import SeededDraws, batches, out_of_time
from healthivert.training.real_domain import (
    RandFieldOfViewd,
    RandThickSlicesd,
    masked_dice_ce,
    pick_subjects,
    tree_studies,
    unlabelled_bone,
)

log = logging.getLogger(__name__)
Progress = Callable[[int, int, str], None]

#: the recipe's ``augmentation`` choices, as the model card words them
AUGMENTATIONS = {
    "standard": "intensity scale/shift, histogram shift, gamma, noise, blur, rotation/scaling",
    "real": "intensity scale/shift (wider), histogram shift, gamma, noise, blur, rotation/scaling, "
            "thick slices (3-6 mm) along a random axis, field of view ending in the patch",
}


@dataclass(frozen=True)
class SegmenterTrainConfig:
    """``pipelines/segmenter.yaml``: data, schedule and output of a segmenter training run.

    ``source`` "phantom" generates cohorts from seeds; "verse" reads the CTs and masks of a
    VerSe download tree (``verse_root``), the subjects of ``train_splits`` / ``val_splits`` in
    ``manifest`` (the HealthiVert-GAN paper's split); "mixed" trains on both, the phantoms of
    ``train_studies`` and the VerSe subjects, ``phantom_fraction`` of the patches drawn from
    phantoms, and validates on the phantoms of ``val_studies`` only (no real subject is
    scored during a run, so a held-out one stays unseen).

    ``subjects`` names the VerSe training subjects (any in the tree with a CT and a mask; the
    manifest's splits are then not used for training); ``exclude_subjects`` leaves subjects
    out of training and validation (a leave-one-subject-out run). ``augmentation`` "real"
    adds thick slices along a random axis, a field of view that ends in the patch and wider
    intensity scale and offset (``healthivert.training.real_domain``) to "standard".
    ``threads``: torch CPU threads (0: torch's default). ``ignore_unlabelled_bone`` (verse or
    mixed): in a VerSe study, bone outside the experts' mask (the sacrum, vertebrae above and
    below the annotation: ``real_domain.unlabelled_bone``) is left out of the loss instead of
    taught as background; phantom patches are scored whole.
    """

    source: str = "phantom"
    verse_root: str | None = None
    manifest: str = "data_manifests/verse2019.csv"
    train_splits: tuple[str, ...] = ("train",)
    val_splits: tuple[str, ...] = ("val",)
    subjects: tuple[str, ...] = ()
    exclude_subjects: tuple[str, ...] = ()
    phantom_fraction: float = 0.5
    augmentation: str = "standard"
    threads: int = 0
    ignore_unlabelled_bone: bool = False
    train_studies: int = 24
    train_seed: int = 2000
    val_studies: int = 3
    val_seed: int = 3000
    top: str = "T8"
    bottom: str = "L5"
    pelvis: bool = False
    pelvis_fraction: float = 1.0
    dim_bone_fraction: float = 0.0
    margin_below_mm: tuple[float, float] | None = None
    margin_above_mm: tuple[float, float] | None = None
    steps: int = 800
    batch: int = 1
    workers: int = 0
    lr: float = 1e-3
    init_weights: str | None = None
    time_limit_min: float = 0.0
    eval_every: int = 100
    checkpoint_every: int = 50
    seed: int = 0
    device: str = "auto"
    workdir: str = "build/segmenter"
    output: str = "healthivert/models/segmenter_unet.safetensors"
    network: SegmenterConfig = field(default_factory=SegmenterConfig)

    def __post_init__(self) -> None:
        check_data_source(self.source, self.verse_root, ("phantom", "verse", "mixed"))
        if self.steps < 1 or self.batch < 1 or self.workers < 0 or self.time_limit_min < 0 or self.threads < 0:
            raise ValueError("steps and batch must be >= 1, workers, threads and time_limit_min >= 0")
        for name in ("pelvis_fraction", "dim_bone_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1]; got {getattr(self, name)}")
        if self.source == "mixed" and not 0.0 < self.phantom_fraction < 1.0:
            raise ValueError(f"phantom_fraction must lie strictly between 0 and 1 for source mixed; "
                             f"got {self.phantom_fraction}")
        if self.source == "phantom" and (self.subjects or self.exclude_subjects or self.ignore_unlabelled_bone):
            raise ValueError("subjects, exclude_subjects and ignore_unlabelled_bone concern VerSe subjects: "
                             "source must be verse or mixed")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {list(AUGMENTATIONS)}; got {self.augmentation!r}")


def load_segmenter_config(path: str | Path) -> SegmenterTrainConfig:
    """Read and check a segmenter recipe."""
    data = read_recipe(path)
    net = {k: tuple(v) if isinstance(v, list) else v for k, v in (data.pop("network", None) or {}).items()}
    network = build_checked(SegmenterConfig, net, f"{path}: network")
    data = with_tuples(data, "train_splits", "val_splits", "subjects", "exclude_subjects")
    return build_checked(SegmenterTrainConfig, {**data, "network": network}, str(path))


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
    carries a pelvis, and a seeded ``dim_bone_fraction`` has dim posterior elements, ribs and
    cortex (``PhantomConfig.dim_bone``)."""
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
                         margin_below_mm=below, dim_bone=_has_dim_bone(seed, cfg))


def _has_dim_bone(seed: int, cfg: SegmenterTrainConfig) -> bool:
    return float(np.random.default_rng([seed, 17]).random()) < cfg.dim_bone_fraction


def _has_pelvis(seed: int, cfg: SegmenterTrainConfig) -> bool:
    return cfg.pelvis and (cfg.pelvis_fraction >= 1.0
                           or float(np.random.default_rng([seed, 11]).random()) < cfg.pelvis_fraction)


def _cache_name(seed: int, cfg: SegmenterTrainConfig) -> str:
    extra = ("_pelvis" if _has_pelvis(seed, cfg) else "") + ("_dim" if _has_dim_bone(seed, cfg) else "") + (
        "_below{:g}-{:g}".format(*cfg.margin_below_mm) if cfg.margin_below_mm is not None else "") + (
        "_above{:g}-{:g}".format(*cfg.margin_above_mm) if cfg.margin_above_mm is not None else "")
    return f"phantom{seed}_{cfg.network.spacing_mm:g}mm{extra}.npz"


def _arrays(ct: Volume, mask: Volume, net: SegmenterConfig) -> dict[str, np.ndarray]:
    """Network input and class target of one study, preprocessed exactly as inference does."""
    image = preprocess(ct, net)
    target = resample_labels(mask.with_array(class_map(mask.array)), net)
    return {"image": image.numpy().astype(np.float32), "label": np.round(target.numpy()).astype(np.uint8)}


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
        name = f"verse_{study.subject}_{cfg.network.spacing_mm:g}mm.npz"
        out.append(_cached_arrays(cache / name, lambda s=study: _arrays(load_ct(s.ct), load_mask(s.mask), cfg.network)))
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


def _augment(cfg: SegmenterConfig, seed: int, kind: str = "standard", masked: bool = False) -> Compose:
    """Patch sampling and domain randomisation. Phantom tissue contrasts are fixed per tissue;
    real scans differ (osteoporotic trabecular bone near disc HU, dimmer cortex and endplates at
    thick slices, other kernels), so the intensity mapping is bent non-linearly
    (histogram shift, gamma), and shape by small rotations and scalings. ``kind`` "real" also
    thickens the slices along a random axis (real VerSe crops include 3 mm sagittal
    reconstructions), ends the field of view inside the patch (tight crops) and widens the
    intensity scale (25 %) and offset (0.1 of the window, 150 HU). ``masked``: the studies
    carry a loss mask (``ignore``), moved with the label (zeroed where the field of view
    zeroes the label: the cut is taught as background)."""
    real = kind == "real"
    maps = ["label", "ignore"] if masked else ["label"]
    aug = Compose([
        SpatialPadd(keys=["image", *maps], spatial_size=cfg.patch),
        RandCropByPosNegLabeld(keys=["image", *maps], label_key="label", spatial_size=cfg.patch,
                               pos=3, neg=1, num_samples=1),
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
                 augmentation: str = "standard") -> None:
        super().__init__(seed)
        self.masked = any("ignore" in s for s in studies)
        self.studies = [_with_ignore(s) for s in studies] if self.masked else studies
        self.weights = weights
        self.aug = _augment(net, seed, augmentation, self.masked)

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
               if cfg.dim_bone_fraction else ""))


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


def _initial_weights(cfg: SegmenterTrainConfig) -> torch.nn.Module:
    """The recipe's ``init_weights`` (fine-tuning), refused if its network differs."""
    model, net, _ = load_weights(cfg.init_weights)
    if net != cfg.network:
        raise InputError(f"{cfg.init_weights}: its network {net} differs from the recipe's {cfg.network}")
    return model


def dice_per_class(pred: np.ndarray, truth: np.ndarray, classes=(VERTEBRA_CLASS, SACRUM_CLASS)) -> dict[int, float]:
    """Dice of each class (NaN where absent from both)."""
    out = {}
    for c in classes:
        p, t = pred == c, truth == c
        denom = p.sum() + t.sum()
        out[c] = float(2 * (p & t).sum() / denom) if denom else float("nan")
    return out


def train_segmenter(cfg: SegmenterTrainConfig, progress: Progress | None = None) -> dict:
    """Train (or resume) and write the weights; returns the final metrics."""
    set_determinism(seed=cfg.seed)
    device = select_device(cfg.device)
    work = Path(cfg.workdir)
    work.mkdir(parents=True, exist_ok=True)
    (work / "config.json").write_text(json.dumps(asdict(cfg), indent=1, default=list))
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    train, val, weights, subjects = _cohorts(cfg, progress)
    model = build_network(cfg.network).to(device)
    optimiser = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=1e-5)
    dice_ce = DiceCELoss(to_onehot_y=True, softmax=True)
    step, history = 0, []
    ckpt = work / "checkpoint.pt"
    if ckpt.is_file():  # our own file, and loaded tensors-only (weights_only) all the same
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        step, history = int(state["step"]), json.loads(state["history"])
        log.info("resumed at step %d", step)
    if step == 0 and cfg.init_weights:
        model.load_state_dict(_initial_weights(cfg).state_dict())
        log.info("starting from %s", cfg.init_weights)
    sampler = PatchSampler(train, cfg.network, cfg.seed, weights, cfg.augmentation)
    patches = batches(sampler, cfg.batch, cfg.workers, step, cfg.steps, device)
    t0, running = time.time(), []
    while step < cfg.steps:
        model.train()
        x, y, *ignore = (t.to(device, non_blocking=True) for t in next(patches))
        optimiser.zero_grad()
        loss = masked_dice_ce(model(x), y, ignore[0]) if ignore else dice_ce(model(x), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        step += 1
        running.append(loss.item())
        stop = out_of_time(t0, cfg.time_limit_min)
        if step % cfg.eval_every == 0 or step == cfg.steps or stop:
            metrics = evaluate(model, val, cfg.network)
            history.append({"step": step, "loss": float(np.mean(running)), **metrics,
                            "seconds": round(time.time() - t0, 1)})
            log.info("step %d loss %.4f val dice %s", step, np.mean(running), metrics)
            running = []
        if step % cfg.checkpoint_every == 0 or step == cfg.steps or stop:
            state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                     "history": json.dumps(history)}
            atomic_write(ckpt, lambda tmp, s=state: torch.save(s, tmp))
        if progress:
            progress(step, cfg.steps, f"loss {np.mean(running) if running else history[-1]['loss']:.4f}")
        if stop:
            log.warning("time limit of %g min reached at step %d of %d", cfg.time_limit_min, step, cfg.steps)
            break
    final = history[-1] if history else {}
    data, validation = _data_card(cfg, subjects, len(val), final)
    if cfg.ignore_unlabelled_bone:
        data += "; bone outside the VerSe experts' masks left out of the loss"
    card = {"trained_on": f"{data}; augmentation: {AUGMENTATIONS[cfg.augmentation]}", "steps": step,
            "batch": cfg.batch, "validation": validation, "history": history}
    save_weights(model.cpu(), cfg.network, cfg.output, card)
    return final


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
