"""``healthivert train grader``: features from a phantom cohort or a table, then the SVM."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from healthivert.errors import InputError
from healthivert.grading.base import FEATURES
from healthivert.grading.svm import TrainReport, save_model, train_svm
from healthivert.io.atomic import atomic_write_text
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.keyed_csv import read_keyed_csv, write_keyed_csv
from healthivert.io.manifest import read_manifest
from healthivert.parallel import map_in_order
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.pipeline import analyse_study
from healthivert.report.record import BOUND_STATUS
from healthivert.training.config import GraderConfig

Progress = Callable[[int, int, str], None]


def study_features(cfg: GraderConfig, i: int) -> list[dict]:
    """Study ``i`` of the recipe's phantom cohort (seed ``phantom.seed + i``) measured through
    the recipe's synthesizer: one row of features and truth per vertebra."""
    pc = cfg.phantom
    study = make_phantom(PhantomConfig(top=pc.top, bottom=pc.bottom, n_fractures=pc.n_fractures), pc.seed + i)
    truth = {v["label"]: v for v in study.truth["vertebrae"]}
    ct = study.ct if cfg.synthesizer == "gan" else None
    analysis = analyse_study(study.mask, centroids_from_mask(study.mask), ct, synthesizer=cfg.synthesizer)
    return [{"study_id": study.subject, "label": label, "genant_grade": truth[label]["genant_grade"],
             "morphology": truth[label]["morphology"] or "", **m.features()}
            for label, m in analysis.measured.items()]


def phantom_features(cfg: GraderConfig, progress: Progress | None = None, jobs: int = 1) -> pd.DataFrame:
    """Measure a generated phantom cohort (masks only; the CT too through the GAN) and attach
    the truth grades, in study order; with ``jobs`` > 1 in that many single-threaded worker
    processes (the GAN on the GPU when there is one)."""
    per_study = map_in_order(study_features, [(cfg, i) for i in range(cfg.phantom.n_studies)], jobs, progress,
                             "phantom studies")
    return pd.DataFrame([row for rows in per_study for row in rows])


#: Change this when straightening, measurement, the prior or the phantom anatomy changes: the
#: features cached under the old revision are then measured again.
FEATURES_REVISION = "2026-12-06: phantom wedges spread as published; the ratio z-score"


def cache_key(cfg: GraderConfig) -> dict:
    """What a phantom cohort's features depend on: the cohort, the synthesizer, the code's
    :data:`FEATURES_REVISION` and, for the GAN, its weights file (height calibration included)
    by SHA-256."""
    key = {"phantom": asdict(cfg.phantom), "synthesizer": cfg.synthesizer, "revision": FEATURES_REVISION}
    if cfg.synthesizer == "gan":
        from healthivert.synthesis.gan.model import weights_digest

        key["weights_sha256"] = weights_digest()
    return key


def cohort_features(cfg: GraderConfig, progress: Progress | None = None, jobs: int = 1) -> pd.DataFrame:
    """The phantom cohort's features: read from ``cfg.features_cache`` when its key matches,
    otherwise measured (and stored there when a cache is set)."""
    if cfg.features_cache:
        df = read_keyed_csv(cfg.features_cache, cache_key(cfg), ("morphology",))
        if df is not None:
            return df
    df = phantom_features(cfg, progress, jobs)
    if cfg.features_cache:
        write_keyed_csv(cfg.features_cache, df, cache_key(cfg))
    return df


def table_features(cfg: GraderConfig) -> pd.DataFrame:
    """A features table with reference grades (its own column or a manifest's)."""
    path = Path(cfg.table)
    if path.is_dir():  # a folder of result folders: every */vertebrae.csv
        tables = sorted(path.glob("*/vertebrae.csv"))
        if not tables:
            raise InputError(f"{path}: no */vertebrae.csv result tables in this folder")
        df = pd.concat([pd.read_csv(t) for t in tables], ignore_index=True)
    elif path.is_file():
        df = pd.read_csv(path)
    else:
        raise InputError(f"{path}: no such features table or results folder")
    missing = [c for c in ("study_id", "label", *FEATURES) if c not in df.columns]
    if missing:
        raise InputError(f"{path}: features table lacks columns {missing}")
    if cfg.grades_column:
        if cfg.grades_column not in df.columns:
            raise InputError(f"{path}: no column {cfg.grades_column!r}")
        df = df.rename(columns={cfg.grades_column: "reference_grade"})
    elif cfg.manifest:
        man = read_manifest(cfg.manifest)
        man = man[man["split"].isin(cfg.splits)]
        df = df.drop(columns=["genant_grade"], errors="ignore").merge(
            man.rename(columns={"subject": "study_id", "vertebra_label": "label", "genant_grade": "reference_grade"})
            [["study_id", "label", "reference_grade"]], on=["study_id", "label"], how="inner")
    else:
        raise InputError("grader config: a table needs grades_column or manifest for its reference grades")
    if "status" in df.columns:  # heights the field of view cut short are bounds, not features
        df = df[~df["status"].astype(str).str.startswith(BOUND_STATUS)]
    df = df.dropna(subset=[*FEATURES, "reference_grade"])
    if df.empty:
        raise InputError(f"{path}: no graded vertebra with all features after joining")
    return df.rename(columns={"reference_grade": "genant_grade"}).astype({"genant_grade": int})


def train_grader(cfg: GraderConfig, progress: Progress | None = None, jobs: int = 1
                 ) -> tuple[Path, TrainReport, pd.DataFrame]:
    """Build features (a phantom cohort's in ``jobs`` processes), fit the SVM with grouped CV,
    save the model, its card and its recipe."""
    df = cohort_features(cfg, progress, jobs) if cfg.source == "phantom" else table_features(cfg)
    out, report = fit_grader(cfg, df)
    return out, report, df


def fit_grader(cfg: GraderConfig, df: pd.DataFrame) -> tuple[Path, TrainReport]:
    """Fit the SVM on a features table built by ``cfg``; save the model and its card."""
    model, report = train_svm(df, df["genant_grade"].to_numpy(), df["study_id"].to_numpy(),
                              folds=cfg.folds, param_grid=cfg.param_grid, seed=cfg.seed,
                              selection=cfg.selection)
    out = save_model(model, cfg.output)
    card = {
        "model": "StandardScaler + SVC (balanced class weights), sigmoid-calibrated",
        "features": list(FEATURES),
        "trained_on": (f"{cfg.phantom.n_studies} phantom studies ({cfg.phantom.top}-{cfg.phantom.bottom}, "
                       f"seeds {cfg.phantom.seed}..{cfg.phantom.seed + cfg.phantom.n_studies - 1}), "
                       f"features measured through the {cfg.synthesizer} synthesizer"
                       + (" (masks and CTs)" if cfg.synthesizer == "gan" else " on masks")
                       if cfg.source == "phantom" else f"table {cfg.table}"),
        "vertebrae": report.n_vertebrae, "subjects": report.n_subjects, "class_counts": report.class_counts,
        "cv": f"{report.folds}-fold GroupKFold by subject, macro-F1",
        "selection": cfg.selection,
        "cv_macro_f1": round(report.cv_macro_f1, 4), "best_params": report.best_params,
        "monotone": report.monotone, "settings_refused_as_not_monotone": report.settings_refused,
        "config": cfg.to_dict(),
    }
    atomic_write_text(Path(cfg.output).with_suffix(".json"), json.dumps(card, indent=1, default=str) + "\n")
    return out, report
