"""``healthivert train synthesizer``: HealthiVert-GAN on healthy vertebrae (grade <= 1 by default).

Studies (phantom cohorts, or a VerSe tree with the manifest's grades) are straightened once
and cached in the work folder as 1 mm stacks. The HGAM fracture classifier is trained first
(all grades: fractured vs not), then frozen; the GAN then trains on random slices (sagittal
and coronal, triangular weighting towards the body's centre) of the healthy vertebrae.
Resumable (checkpoint every ``checkpoint_every`` steps), seeded, CUDA when present. Every
``eval_every`` steps the validation vertebrae give band PSNR, target Dice, height error and
codebook utilisation / perplexity (logged and kept in the model card).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from monai.metrics import PSNRMetric, compute_dice

from healthivert.errors import InputError
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.atomic import atomic_write_npz
from healthivert.io.centroids import centroids_from_mask
from healthivert.parallel import map_in_order
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.synthesis.gan.canvas import (
    BAND_MM,
    BAND_TOP,
    VIEWS,
    CanvasSample,
    VertebraStack,
    make_sample,
    with_twin_band,
)
from healthivert.synthesis.gan.losses import LossWeights, discriminator_loss, generator_losses
from healthivert.synthesis.gan.model import GANModel, load_gan, save_gan
from healthivert.synthesis.gan.networks import GANConfig, discriminators
from healthivert.synthesis.vq import CodeUsage
from healthivert.training.config import TrainRecipe, load_train_recipe, load_verse_study
from healthivert.training.gan_augment import AUGMENTATIONS, RealDomainAugment, make_augmenter
from healthivert.training.gan_calibration import calibrate_synthesizer
from healthivert.training.real_domain import verse_subject_rows
from healthivert.training.trainer import Progress, SeededDraws, Trainer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SynthesizerTrainConfig(TrainRecipe):
    """``pipelines/synthesizer.yaml``: data, schedule and output of a GAN training run; the
    fields every training recipe shares are documented in ``config.TrainRecipe``.

    Attributes:
        max_grade: the GAN trains on vertebrae graded <= this (the paper: 1).
        deformity_rate: phantom cohorts only: chance that an unfractured vertebra carries a
            sub-threshold (< 20 %) deformity (``PhantomConfig.deformity_rate``). 0 trains on
            vertebrae at their healthy height only.
        twin_truth: phantom cohorts only: a fractured vertebra (grade >= 1, trained on when
            ``max_grade`` admits it) is shown as it is, body masked, and its truth inside the
            band is its intact twin's (``PhantomConfig.intact``: the same study at healthy
            height), so the network learns to restore it rather than to reproduce the fracture.
        vary_proportions: phantom cohorts only: each study draws its body proportions
            (``PhantomConfig.vary_proportions``), so a body's height cannot be read from its
            endplates' size.
        disc_jitter_mm: GAN training canvases move the context above and below the band by up
            to this many mm each (the discs next to the body read thinner or thicker), so that
            the disc's thickness, which a fracture changes, does not tell the body's height.
        augmentation: "none" (the cached stacks as they are) or "real": each drawn training
            slice is made to look like a real scan first (``gan_augment.py``: bone contrast
            dimmed towards real HU, intensity scale and offset, noise, blur, thick slices, a
            field of view that ends in the context); validation and calibration stay unaugmented.
        restart_codes_every: every this many steps, the SimVQ codes no training batch used in
            that window move onto features of the last batch (``VQBottleneck.restart_codes``);
            0 never restarts them.
        classifier_steps: HGAM classifier steps before the GAN (0 with ``use_attention`` off).
        adversarial_after: steps of reconstruction-only warm-up before the discriminators join.
        calibration_studies: after training, the height calibration (``gan_calibration.py``) is
            fitted on this many phantom studies (seeds ``calibration_seed``..), or for a VerSe
            tree on every study of ``calibration_splits`` (less ``exclude_subjects``); 0 leaves
            the identity.
    """

    train_studies: int = 30
    train_seed: int = 7000
    val_seed: int = 7500
    top: str = "T6"
    max_grade: int = 1
    deformity_rate: float = 0.25
    twin_truth: bool = False
    vary_proportions: bool = False
    disc_jitter_mm: int = 0
    augmentation: str = "none"
    restart_codes_every: int = 0
    steps: int = 4000
    batch: int = 12
    lr: float = 2e-4
    classifier_steps: int = 300
    adversarial_after: int = 200
    use_attention: bool = True
    eval_every: int = 250
    checkpoint_every: int = 100
    calibration_studies: int = 0
    calibration_seed: int = 8000
    calibration_splits: tuple[str, ...] = ("val",)
    workdir: str = "build/synthesizer"
    output: str = "healthivert/models/synthesizer_gan.safetensors"
    network: GANConfig = field(default_factory=GANConfig)
    loss: LossWeights = field(default_factory=LossWeights)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.calibration_studies < 0:
            raise ValueError(f"calibration_studies must be >= 0; got {self.calibration_studies}")
        if self.disc_jitter_mm < 0:
            raise ValueError(f"disc_jitter_mm must be >= 0; got {self.disc_jitter_mm}")
        if self.restart_codes_every < 0:
            raise ValueError(f"restart_codes_every must be >= 0; got {self.restart_codes_every}")
        if self.restart_codes_every and self.network.vq_kind != "simvq":
            raise ValueError("restart_codes_every needs vq_kind simvq")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}; got {self.augmentation!r}")
        if self.twin_truth and self.augmentation != "none":
            raise ValueError("twin_truth with augmentation: the twin's band would not be augmented with its context")
        if self.twin_truth and self.source != "phantom":
            raise ValueError("twin_truth needs phantom studies (a VerSe study has no intact twin)")
        if not 0.0 <= self.deformity_rate <= 1.0:
            raise ValueError(f"deformity_rate must be in [0, 1]; got {self.deformity_rate}")


def load_synthesizer_config(path: str | Path) -> SynthesizerTrainConfig:
    """Read and check a synthesizer recipe."""
    return load_train_recipe(SynthesizerTrainConfig, path, network=GANConfig, loss=LossWeights)


@dataclass
class Vertebra:
    """A cached training vertebra: its stack and reference Genant grade; ``twin``, for a
    fractured phantom vertebra trained with ``twin_truth``, its intact twin's stack."""

    stack: VertebraStack
    grade: int
    twin: VertebraStack | None = None


def stacks_of_study(mask, ct, centroids, grades: dict[int, int]) -> list[Vertebra]:
    """Straighten a study and keep its graded, whole vertebrae as 1 mm stacks."""
    _, vertebrae = straighten_vertebrae(mask, centroids, ct)
    return [Vertebra(VertebraStack.from_vertebra(v), grades[v.label]) for v in vertebrae
            if v.label in grades and v.body.any() and not v.cut_by_fov]


def _save_stacks(path: Path, items: list[Vertebra]) -> None:
    arrays = {"meta": np.array([[it.stack.label, it.grade] for it in items], dtype=int).reshape(-1, 2)}
    for i, it in enumerate(items):
        s = it.stack
        arrays.update({f"ct{i}": s.ct.astype(np.float16), f"body{i}": s.body.astype(np.float16),
                       f"labels{i}": s.labels, f"lr{i}": s.lr_mm, f"ap{i}": s.ap_mm})
    atomic_write_npz(path, arrays)


def _load_stacks(path: Path) -> list[Vertebra]:
    with np.load(path) as d:
        return [Vertebra(VertebraStack(int(lab), d[f"ct{i}"].astype(np.float32), d[f"body{i}"].astype(np.float32),
                                       d[f"labels{i}"], d[f"lr{i}"], d[f"ap{i}"]), int(grade))
                for i, (lab, grade) in enumerate(d["meta"])]


def _cached(cache: Path, name: str, build: Callable[[], list[Vertebra]]) -> list[Vertebra]:
    path = cache / f"{name}.npz"
    if not path.is_file():
        _save_stacks(path, build())
    return _load_stacks(path)


def _phantom_study_cached(cfg: SynthesizerTrainConfig, seed: int, intact: bool = False) -> list[Vertebra]:
    """One straightened phantom study (or its intact twin), from ``workdir/cache`` or built."""
    def build() -> list[Vertebra]:
        study = make_phantom(PhantomConfig(top=cfg.top, bottom=cfg.bottom, deformity_rate=cfg.deformity_rate,
                                           intact=intact, vary_proportions=cfg.vary_proportions), seed)
        grades = {v["label"]: int(v["genant_grade"]) for v in study.truth["vertebrae"]}
        return stacks_of_study(study.mask, study.ct, centroids_from_mask(study.mask), grades)

    cache = Path(cfg.workdir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    default = cfg.deformity_rate == PhantomConfig.deformity_rate  # keeps the older caches' names
    name = (f"phantom{seed}_{cfg.top}-{cfg.bottom}" + ("" if default else f"_d{cfg.deformity_rate:g}")
            + ("_intact" if intact else "") + ("_prop" if cfg.vary_proportions else ""))
    return _cached(cache, name, build)


def _with_twins(study: list[Vertebra], twin: list[Vertebra]) -> list[Vertebra]:
    """A study's vertebrae, each fractured one paired with its intact twin's stack (by label)."""
    twins = {v.stack.label: v.stack for v in twin}
    return [replace(v, twin=twins.get(v.stack.label)) if v.grade >= 1 else v for v in study]


def phantom_cohort(seeds: range, cfg: SynthesizerTrainConfig, progress: Progress | None = None,
                   twins: bool = False) -> list[Vertebra]:
    """Straightened phantom studies with their true grades (cached in ``workdir/cache``); with
    ``twins``, each fractured vertebra carries its intact twin's stack (``twin_truth``)."""
    out: list[Vertebra] = []
    for i, seed in enumerate(seeds):
        study = _phantom_study_cached(cfg, seed)
        out += _with_twins(study, _phantom_study_cached(cfg, seed, intact=True)) if twins else study
        if progress:
            progress(i + 1, len(seeds), f"phantom {seed}")
    return out


def prepare_phantom_cohort(cfg: SynthesizerTrainConfig, jobs: int, progress: Progress | None = None) -> int:
    """Build the recipe's phantom training, validation (and twin) caches with ``jobs`` worker
    processes (each study is one CPU-bound job; a cached study is skipped); returns the number
    of studies. Training then reads the caches (``train synthesizer --prepare-only``)."""
    if cfg.source != "phantom":
        raise InputError("--prepare-only builds phantom cohorts; a VerSe tree is read as it trains")
    train = range(cfg.train_seed, cfg.train_seed + cfg.train_studies)
    work = [(seed, False) for seed in (*train, *range(cfg.val_seed, cfg.val_seed + cfg.val_studies))]
    work += [(seed, True) for seed in train if cfg.twin_truth]
    map_in_order(_phantom_study_cached, [(cfg, seed, intact) for seed, intact in work], jobs, progress,
                 "phantom studies")
    return len(work)


def verse_cohort(cfg: SynthesizerTrainConfig, splits: tuple[str, ...], progress: Progress | None = None,
                 named: bool = False) -> list[Vertebra]:
    """Straightened VerSe studies graded by the manifest: those of ``splits`` or, when ``named``
    (training) and the recipe names them, its ``subjects``; less ``exclude_subjects`` (refused
    when ``named`` and a name is unknown: ``real_domain.verse_subject_rows``)."""
    rows = verse_subject_rows(cfg.manifest, cfg.verse_root, splits, cfg.subjects if named else (),
                              cfg.exclude_subjects, strict=named)
    cache = Path(cfg.workdir) / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    out: list[Vertebra] = []
    subjects = list(rows.groupby("subject"))
    for i, (subject, group) in enumerate(subjects):
        def build(group=group):
            mask, ct, centroids = load_verse_study(group.iloc[0])
            grades = dict(zip(group["vertebra_label"].astype(int), group["genant_grade"].astype(int)))
            return stacks_of_study(mask, ct, centroids, grades)

        out += _cached(cache, f"verse_{subject}", build)
        if progress:
            progress(i + 1, len(subjects), subject)
    return out


def verse_choice(cfg: SynthesizerTrainConfig, splits: tuple[str, ...], named: bool = False) -> str:
    """The model card's words for the VerSe subjects a cohort was drawn from."""
    chosen = f"subjects {list(cfg.subjects)}" if named and cfg.subjects else f"splits {list(splits)}"
    return chosen + (f" less subjects {list(cfg.exclude_subjects)}" if cfg.exclude_subjects else "")


class SliceSampler:
    """Random canvas samples: a vertebra, a view, a slice (triangular weight towards the centre);
    with ``disc_jitter_mm`` > 0, each side's context moved by a whole number of mm drawn from
    [-jitter, jitter] (``make_sample``'s ``disc_shift``); with ``augment``, the slice's stack
    made to look like a real scan first (one more draw per sample; none without it)."""

    def __init__(self, vertebrae: list[Vertebra], seed: int, disc_jitter_mm: int = 0,
                 augment: RealDomainAugment | None = None) -> None:
        self.vertebrae = vertebrae
        self.rng = np.random.default_rng(seed)
        self.disc_jitter_mm = disc_jitter_mm
        self.augment = augment

    def draw(self, n: int):
        out = []
        while len(out) < n:
            v = self.vertebrae[int(self.rng.integers(len(self.vertebrae)))]
            view = VIEWS[int(self.rng.integers(2))]
            idx = v.stack.slice_indices(view)
            if idx.size == 0:
                continue
            w = 1.0 - 0.8 * np.abs([v.stack.position(view, int(i)) for i in idx])
            index = int(self.rng.choice(idx, p=w / w.sum()))
            j = self.disc_jitter_mm
            shift = tuple(int(k) for k in self.rng.integers(-j, j + 1, size=2)) if j else (0, 0)
            stack = self.augment.augment(v.stack, view, index, self.rng) if self.augment else v.stack
            sample = make_sample(stack, view, index, disc_shift=shift)
            if sample is not None and v.twin is not None:
                sample = _twin_truth(sample, v.twin, view, float(v.stack.across_mm(view)[index]))
            if sample is not None:
                out.append((v, sample))
        return out


def _twin_truth(sample: CanvasSample, twin: VertebraStack, view: str, mm: float) -> CanvasSample | None:
    """The fractured slice with its twin's band as the truth (None when the twin has no slice
    with body at ``mm``)."""
    index = twin.index_at(view, mm)
    truth = None if index is None else make_sample(twin, view, index)
    return None if truth is None else with_twin_band(sample, truth)


class SliceDataset(SeededDraws):
    """Training canvases for a loader: item ``i`` is :class:`SliceSampler`'s draw from its own
    seed (``seed``, ``i``); ``augmentation`` as the recipe names it."""

    def __init__(self, vertebrae: list[Vertebra], seed: int, disc_jitter_mm: int = 0,
                 augmentation: str = "none") -> None:
        super().__init__(seed)
        self.vertebrae = vertebrae
        self.disc_jitter_mm = disc_jitter_mm
        self.augment = make_augmenter(augmentation)

    def __getitem__(self, i: int):
        sampler = SliceSampler(self.vertebrae, 0, self.disc_jitter_mm, self.augment)
        sampler.rng = self.rng(i)
        return sampler.draw(1)[0][1]


def train_classifier(model: GANModel, sampler: SliceSampler, steps: int, batch: int = 32) -> float:
    """HGAM's fracture classifier on unmasked windows (fractured = grade >= 1); returns the
    accuracy over its last 50 steps. The classifier is frozen afterwards."""
    clf = model.classifier.train()
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    correct = []
    for _ in range(steps):
        drawn = sampler.draw(batch)
        x = torch.from_numpy(np.stack([s.window for _, s in drawn])[:, None]).to(model.device)
        y = torch.tensor([int(v.grade >= 1) for v, _ in drawn], device=model.device)
        logits = clf(x)
        loss = F.cross_entropy(logits, y, weight=torch.tensor([1.0, 3.0], device=model.device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        correct.append(float((logits.argmax(1) == y).float().mean()))
    clf.eval()
    for p in clf.parameters():
        p.requires_grad_(False)
    return float(np.mean(correct[-50:])) if correct else float("nan")


def evaluate(model: GANModel, samples: list, codebook_size: int) -> dict[str, float]:
    """Band PSNR (dB), target Dice, height error (mm), codebook utilisation and perplexity."""
    g = model.generator.eval()
    usage = CodeUsage(codebook_size)
    psnr_metric = PSNRMetric(max_val=2.0)  # images in [-1, 1]
    band = slice(BAND_TOP, BAND_TOP + BAND_MM)
    psnr, dice, err = [], [], []
    for b in range(0, len(samples), 32):
        batch = model.inputs(samples[b:b + 32])
        with torch.no_grad():
            out = g(batch["input"])
        usage.update(out["codes"])
        psnr += psnr_metric(out["fine_ct"][:, :, band], batch["ct"][:, :, band]).flatten().tolist()
        pred = (torch.sigmoid(out["target"]) >= 0.5).float()
        dice += compute_dice(pred, batch["target"], include_background=True, ignore_empty=False).flatten().tolist()
        err += (out["height"] - batch["height"]).abs().tolist()
    g.train()
    return {"val_psnr_band_db": float(np.mean(psnr)), "val_dice_target": float(np.mean(dice)),
            "val_height_error_mm": float(np.mean(err)), "codebook_utilisation": usage.utilisation,
            "codebook_perplexity": usage.perplexity}


def _start_from(model: GANModel, cfg: SynthesizerTrainConfig) -> None:
    """Generator and (frozen) HGAM classifier from ``init_weights``, refused if its network
    differs from the recipe's (what it is shown may differ: ``context_mm``,
    ``attention_in_band``); the discriminators start afresh."""
    start, _ = load_gan(cfg.init_weights, device=str(model.device))
    inputs_only = {"attention_in_band": cfg.network.attention_in_band, "context_mm": cfg.network.context_mm}
    if replace(start.config, **inputs_only) != cfg.network or start.use_attention != cfg.use_attention:
        raise InputError(f"{cfg.init_weights}: its network differs from the recipe's")
    model.generator.load_state_dict(start.generator.state_dict())
    model.classifier.load_state_dict(start.classifier.state_dict())
    model.classifier.eval().requires_grad_(False)
    log.info("starting from %s", cfg.init_weights)


class SynthesizerTrainer(Trainer):
    """The GAN's steps in the shared loop. A fresh run first trains the HGAM classifier
    (``classifier_steps``, then frozen) unless it starts from ``init_weights``; each GAN step
    trains the discriminators (after ``adversarial_after`` steps of reconstruction-only warm-up)
    and then the generator; with ``restart_codes_every``, unused SimVQ codes are restarted."""

    cfg: SynthesizerTrainConfig
    collate = list  # a batch is a list of canvas samples (``GANModel.inputs`` stacks them)

    def data(self) -> None:
        cfg = self.cfg
        if cfg.source == "phantom":
            self.train = phantom_cohort(range(cfg.train_seed, cfg.train_seed + cfg.train_studies), cfg,
                                        self.progress, twins=cfg.twin_truth)
            val = phantom_cohort(range(cfg.val_seed, cfg.val_seed + cfg.val_studies), cfg)
        else:
            self.train = verse_cohort(cfg, cfg.train_splits, self.progress, named=True)
            val = verse_cohort(cfg, cfg.val_splits)
        self.healthy = [v for v in self.train if v.grade <= cfg.max_grade]
        # with twin_truth the validation vertebrae have no twins: it scores the unfractured ones
        self.val_healthy = [v for v in val if v.grade <= (0 if cfg.twin_truth else cfg.max_grade)] or val
        if not self.healthy:
            raise InputError(f"no training vertebra graded <= {cfg.max_grade}")
        self.val_samples = [s for _, s in SliceSampler(self.val_healthy, cfg.seed + 1).draw(96)]

    def build(self) -> None:
        cfg = self.cfg
        self.model = GANModel.create(cfg.network, cfg.use_attention).to(self.device)
        self.discs = discriminators(cfg.network).to(self.device)
        self.opt_g = torch.optim.Adam(self.model.generator.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.discs.parameters(), lr=cfg.lr, betas=(0.5, 0.999))
        self.classifier_accuracy: float | str | None = None
        self.window = CodeUsage(cfg.network.codebook_size)  # codes used since the last restart
        self.code_draws = torch.Generator().manual_seed(cfg.seed + 3)

    def state(self) -> dict:
        return {"generator": self.model.generator.state_dict(), "classifier": self.model.classifier.state_dict(),
                "discriminators": self.discs.state_dict(), "opt_g": self.opt_g.state_dict(),
                "opt_d": self.opt_d.state_dict(), "classifier_accuracy": json.dumps(self.classifier_accuracy)}

    def load_state(self, state: dict) -> None:
        self.model.generator.load_state_dict(state["generator"])
        self.model.classifier.load_state_dict(state["classifier"])
        self.discs.load_state_dict(state["discriminators"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.classifier_accuracy = json.loads(state["classifier_accuracy"])
        self.model.classifier.eval().requires_grad_(False)

    def start_from(self, path: str) -> None:
        _start_from(self.model, self.cfg)
        self.classifier_accuracy = "from " + Path(path).name

    def start(self) -> None:
        """Phase one: the HGAM classifier (or the weights it comes with), then frozen."""
        cfg = self.cfg
        if cfg.init_weights:
            self.start_from(cfg.init_weights)
        elif cfg.use_attention and cfg.classifier_steps:
            self.classifier_accuracy = train_classifier(self.model, SliceSampler(self.train, cfg.seed),
                                                        cfg.classifier_steps)
            log.info("HGAM classifier: training accuracy %.3f over its last steps", self.classifier_accuracy)
        else:
            self.model.classifier.eval().requires_grad_(False)

    def draws(self) -> SliceDataset:
        return SliceDataset(self.healthy, self.cfg.seed + 2, self.cfg.disc_jitter_mm, self.cfg.augmentation)

    def train_step(self, samples: list[CanvasSample], step: int) -> dict[str, float]:
        cfg, model, discs = self.cfg, self.model, self.discs
        batch = model.inputs(samples)
        out = model.generator(batch["input"])
        if cfg.restart_codes_every:  # counting moves the codes to the CPU: only when restarts need it
            self.window.update(out["codes"])
        adversarial = step >= cfg.adversarial_after and cfg.loss.adversarial > 0
        terms = {}
        if adversarial:
            self.opt_d.zero_grad()
            d_loss = discriminator_loss(batch, out, discs)
            d_loss.backward()
            self.opt_d.step()
            terms["discriminator"] = d_loss.item()
        self.opt_g.zero_grad()
        discs.requires_grad_(False)
        losses = generator_losses(batch, out, discs if adversarial else None, cfg.loss)
        losses["total"].backward()
        discs.requires_grad_(True)
        torch.nn.utils.clip_grad_norm_(model.generator.parameters(), 5.0)
        self.opt_g.step()
        terms.update({k: v.item() for k, v in losses.items()})
        if cfg.restart_codes_every and (step + 1) % cfg.restart_codes_every == 0:
            terms["codes_restarted"] = model.generator.coarse.vq.restart_codes(self.window.counts == 0,
                                                                                self.code_draws)
            self.window = CodeUsage(cfg.network.codebook_size)
        return terms

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.val_samples, self.cfg.network.codebook_size)

    def summary(self, running: dict[str, list[float]]) -> dict[str, float]:
        return {k: round(float(np.mean(v)), 5) for k, v in running.items()}

    def note(self, terms: dict[str, float]) -> str:
        return f"loss {terms['total']:.3f}"

    def card(self, final: dict) -> dict:
        cfg = self.cfg
        data = (f"{cfg.train_studies} phantom CT studies ({cfg.top}-{cfg.bottom}, seeds {cfg.train_seed}.."
                f"{cfg.train_seed + cfg.train_studies - 1}, sub-threshold deformity rate {cfg.deformity_rate:g})"
                if cfg.source == "phantom"
                else f"VerSe tree {cfg.verse_root}, " + verse_choice(cfg, cfg.train_splits, named=True))
        if cfg.init_weights:
            data += f", starting from the weights {Path(cfg.init_weights).name}"
        if cfg.twin_truth:
            data += ", fractured vertebrae trained on their intact twins' bodies"
        if cfg.disc_jitter_mm:
            data += f", context moved by up to {cfg.disc_jitter_mm} mm each side"
        if cfg.augmentation != "none":
            data += f", {cfg.augmentation}-CT domain randomisation (training slices)"
        if cfg.restart_codes_every:
            data += f", unused codes restarted every {cfg.restart_codes_every} steps"
        return {"trained_on": f"{data}; {len(self.healthy)} vertebrae graded <= {cfg.max_grade}",
                "validation_vertebrae": len(self.val_healthy),
                "steps": self.step, "batch": cfg.batch, "classifier_training_accuracy": self.classifier_accuracy,
                "validation": final, "history": self.history, "loss_weights": cfg.loss.to_dict()}

    def save(self, card: dict) -> None:
        self.model.generator.eval()
        save_gan(self.model.to("cpu"), self.cfg.output, card)

    def finish(self, final: dict) -> dict:
        """Phase two's weights written: the height calibration, when the recipe asks for it."""
        if self.cfg.calibration_studies:
            final = {**final, "height_calibration": calibrate_synthesizer(self.cfg, self.progress)}
        return final


def train_synthesizer(cfg: SynthesizerTrainConfig, progress: Progress | None = None) -> dict:
    """Train (or resume) and write the weights; returns the last validation metrics."""
    return SynthesizerTrainer(cfg, progress).run()
