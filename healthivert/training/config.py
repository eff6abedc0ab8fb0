"""Typed training recipes read from ``pipelines/*.yaml``."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import ClassVar

import yaml

from healthivert.errors import InputError


@dataclass(frozen=True)
class PhantomCohort:
    """Phantom studies to draw training features from (generated in memory)."""

    n_studies: int = 40
    seed: int = 1000
    top: str = "T8"
    bottom: str = "L5"
    n_fractures: tuple[int, int] = (1, 3)


@dataclass(frozen=True)
class GraderConfig:
    """``healthivert train grader`` recipe.

    Attributes:
        source: "phantom" (features of a generated cohort) or "table" (a features CSV).
        phantom: the cohort when ``source`` is "phantom".
        table: features CSV (``vertebrae.csv`` / ``cohort.csv`` columns) when "table".
        grades_column: column of ``table`` holding the reference grade; when absent, grades
            come from ``manifest`` joined on (study_id = subject, label = vertebra_label).
        manifest: e.g. data_manifests/verse2019.csv.
        splits: manifest splits used for training.
        folds: subject-grouped CV folds for hyper-parameters.
        param_grid: SVC hyper-parameter grid (``svc__C`` ...); None for the default.
        selection: how the grid setting is chosen: "best" CV macro-F1, or "one_se" (the
            simplest setting within one standard error of the best).
        output: where the skops model goes (a model card is written beside it).
        features_cache: CSV where a phantom cohort's features are kept (with a ``.key.json``
            key beside it: cohort, synthesizer, weights); a later run of the same recipe
            reads them instead of measuring the cohort again. None: always measure.
        synthesizer: the pseudo-healthy synthesizer the phantom features are measured through
            ("gan" also renders and reads the CT); a grader is trained per synthesizer.
    """

    source: str = "phantom"
    phantom: PhantomCohort = field(default_factory=PhantomCohort)
    table: str | None = None
    grades_column: str | None = None
    manifest: str | None = None
    splits: tuple[str, ...] = ("train", "test")
    folds: int = 5
    seed: int = 0
    param_grid: dict | None = None
    selection: str = "best"
    output: str = "healthivert/models/grader_svm.skops"
    synthesizer: str = "prior"
    features_cache: str | None = None

    def __post_init__(self) -> None:
        if self.source not in ("phantom", "table"):
            raise InputError(f"grader config: source must be phantom or table; got {self.source!r}")
        if self.selection not in ("best", "one_se"):
            raise InputError(f"grader config: selection must be best or one_se; got {self.selection!r}")
        if self.source == "table" and not self.table:
            raise InputError("grader config: source 'table' needs a 'table' path")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainRecipe:
    """The fields every network-training recipe shares (``SegmenterTrainConfig``,
    ``SynthesizerTrainConfig`` add their own and may restate a default); documented here once.

    Attributes:
        source: the training data: "phantom" (cohorts generated from seeds), "verse" (the
            studies of a VerSe download tree) or, where the trainer offers it, "mixed" (both).
        verse_root: the VerSe download tree (source "verse" or "mixed").
        manifest: the grades and splits of the VerSe subjects (data_manifests/verse2019.csv).
        train_splits, val_splits: the manifest splits trained and validated on.
        subjects: VerSe only: the training subjects by name, whatever their split
            (``train_splits`` is then not used for training; validation reads its own splits).
        exclude_subjects: VerSe only: subjects left out of training and validation (and the
            GAN's calibration) alike: a leave-one-subject-out run never reads the held-out one.
            A name absent from the training studies, or one both named and excluded, is refused.
        train_studies, train_seed: the phantom training cohort: that many studies from that seed.
        val_studies, val_seed: the phantom validation cohort.
        top, bottom: the vertebrae each phantom study spans.
        steps: optimiser steps in all (a rerun resumes from the checkpoint up to this).
        batch: samples per step; ``workers``: loader processes drawing them (sample i comes from
            its own seed, so a run is the same with any number of workers, and resumes).
        lr: the learning rate.
        init_weights: a weights file of the same network to start from (fine-tuning).
        time_limit_min: stop after that many minutes of training, with a checkpoint and weights
            whose card gives the steps done (0: no limit; resume by running again).
        eval_every, checkpoint_every: validation, and a checkpoint, every that many steps (and
            at the last step).
        seed: seeds torch, NumPy and the draws (MONAI ``set_determinism``).
        device: "auto" (CUDA when present, else the CPU), "cpu", "cuda", "cuda:1" ...
        threads: torch CPU threads (0: torch's default).
        workdir: caches, ``config.json`` and ``checkpoint.pt`` of the run.
        output: the weights file written at the end (its card in its metadata).
    """

    SOURCES: ClassVar[tuple[str, ...]] = ("phantom", "verse")

    source: str = "phantom"
    verse_root: str | None = None
    manifest: str = "data_manifests/verse2019.csv"
    train_splits: tuple[str, ...] = ("train",)
    val_splits: tuple[str, ...] = ("val",)
    subjects: tuple[str, ...] = ()
    exclude_subjects: tuple[str, ...] = ()
    train_studies: int = 24
    train_seed: int = 2000
    val_studies: int = 3
    val_seed: int = 3000
    top: str = "T8"
    bottom: str = "L5"
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
    threads: int = 0
    workdir: str = "build/train"
    output: str = "build/train/weights.safetensors"

    def __post_init__(self) -> None:
        check_data_source(self.source, self.verse_root, self.SOURCES)
        if min(self.steps, self.batch, self.eval_every, self.checkpoint_every) < 1 or min(
                self.workers, self.threads, self.time_limit_min) < 0:
            raise ValueError("steps, batch, eval_every and checkpoint_every must be >= 1; workers, threads and "
                             "time_limit_min >= 0")
        if self.source == "phantom" and (self.subjects or self.exclude_subjects):
            raise ValueError("subjects and exclude_subjects concern VerSe subjects: source must be "
                             + " or ".join(s for s in self.SOURCES if s != "phantom"))


def load_train_recipe(cls: type, path: str | Path, **sections: type):
    """Read and check a training recipe of class ``cls``: each of ``sections`` (e.g.
    ``network=SegmenterConfig``) a nested mapping built as that class; YAML lists as tuples."""
    data = read_recipe(path)
    parts = {}
    for name, kind in sections.items():
        part = data.pop(name, None) or {}
        if not isinstance(part, dict):
            raise InputError(f"{path}: {name} is a mapping of keys")
        parts[name] = build_checked(kind, with_tuples(part), f"{path}: {name}")
    return build_checked(cls, {**with_tuples(data), **parts}, str(path))


def select_device(name: str):
    """A torch device from a recipe's ``device``: "auto" is CUDA when present, else the CPU."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def read_recipe(path: str | Path) -> dict:
    """A recipe file's mapping of keys (YAML), or InputError saying what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such config file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc})") from None
    if data is None:  # an empty file would train every default silently
        raise InputError(f"{path}: the recipe is empty")
    if not isinstance(data, dict):
        raise InputError(f"{path}: a recipe is a mapping of keys")
    return data


def build_checked(cls, data: dict, where: str):
    """``cls(**data)``, refusing unknown keys and bad values with an InputError."""
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise InputError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        return cls(**data)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: {exc}") from None


def check_data_source(source: str, verse_root: str | None, sources: tuple[str, ...] = ("phantom", "verse")) -> None:
    """A trainer's data: one of ``sources``: "phantom" (generated cohorts), "verse" (a download
    tree) or, where the trainer offers it, "mixed" (both)."""
    if source not in sources:
        raise ValueError(f"source must be {' or '.join(sources)}; got {source!r}")
    if source in ("verse", "mixed") and not verse_root:
        raise ValueError(f"source {source!r} needs verse_root (a VerSe download tree)")


def with_tuples(data: dict) -> dict:
    """``data`` with its YAML lists as tuples (frozen recipes hold tuples)."""
    return {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}


def verse_rows(manifest: str | Path, verse_root: str | Path, splits: tuple[str, ...]):
    """The manifest's rows (one per vertebra) of ``splits`` joined to the files of a VerSe
    tree (columns ``ct``, ``mask``, ``centroids``), complete studies only; InputError if none."""
    from healthivert.io.manifest import join_manifest_to_tree, read_manifest

    table = read_manifest(manifest)
    chosen = table[table["split"].isin(splits)]
    rows = join_manifest_to_tree(chosen, verse_root) if len(chosen) else chosen.assign(missing="")
    rows = rows[rows["missing"] == ""]
    if rows.empty:
        raise InputError(f"{verse_root}: no complete VerSe study (ct, mask, centroids) for splits {list(splits)}")
    return rows


def load_verse_study(row) -> tuple:
    """(mask, CT, centroids) of one study from a ``verse_rows`` row (its files' paths)."""
    from healthivert.io.centroids import read_centroids
    from healthivert.io.images import load_ct, load_mask

    mask = load_mask(row["mask"])
    return mask, load_ct(row["ct"]), read_centroids(row["centroids"], mask)


def load_grader_config(path: str | Path) -> GraderConfig:
    """Read and check a grader recipe."""
    data = read_recipe(path)
    phantom = data.pop("phantom", None) or {}
    if "n_fractures" in phantom:
        phantom["n_fractures"] = tuple(phantom["n_fractures"])
    if "splits" in data:
        data["splits"] = tuple(data["splits"])
    cohort = build_checked(PhantomCohort, phantom, f"{path}: phantom")
    return build_checked(GraderConfig, {**data, "phantom": cohort}, str(path))
