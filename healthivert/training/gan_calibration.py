"""Fit the HealthiVert-GAN's height calibration on healthy vertebrae it did not train on.

Each calibration study is straightened and synthesised by the GAN (with the identity
calibration, iterative synthesis included); on its healthy vertebrae (Genant grade 0 and, for
phantoms, no sub-threshold deformity, so that the real body is its own healthy truth) the
section heights (mm) of the pseudo-healthy body are paired with the real ones and
``fit_height_calibration`` maps one onto the other. Phantom cohorts use seeds
``calibration_seed``.. (never a training or benchmark seed); a VerSe tree uses the manifest's
``calibration_splits``. The fit, the cohort and the mean signed section error before and after
go into the weights' card.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra, straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.sections import SECTIONS, section_heights
from healthivert.synthesis.gan.calibration import HeightCalibration, fit_height_calibration
from healthivert.synthesis.gan.infer import synthesize_gan
from healthivert.synthesis.gan.model import GANModel, load_gan, save_gan
from healthivert.training.config import load_verse_study
from healthivert.training.real_domain import verse_subject_rows
from healthivert.training.trainer import Progress

Study = tuple[str, list[StraightVertebra], set[int]]  # name, straightened vertebrae, healthy labels


def _straighten(mask, ct, centroids) -> list[StraightVertebra]:
    _, vertebrae = straighten_vertebrae(mask, centroids, ct)
    return vertebrae


def phantom_studies(cfg) -> Iterator[Study]:
    """The calibration phantoms: healthy = grade 0 without a sub-threshold deformity."""
    for seed in range(cfg.calibration_seed, cfg.calibration_seed + cfg.calibration_studies):
        study = make_phantom(PhantomConfig(top=cfg.top, bottom=cfg.bottom, vary_proportions=cfg.vary_proportions), seed)
        healthy = {v["label"] for v in study.truth["vertebrae"] if v["genant_grade"] == 0 and not v["morphology"]}
        yield study.subject, _straighten(study.mask, study.ct, centroids_from_mask(study.mask)), healthy


def verse_studies(cfg) -> Iterator[Study]:
    """The manifest's ``calibration_splits`` studies less ``exclude_subjects``: healthy = graded 0
    by the manifest."""
    rows = verse_subject_rows(cfg.manifest, cfg.verse_root, cfg.calibration_splits,
                              exclude=cfg.exclude_subjects, strict=False)
    for subject, group in rows.groupby("subject"):
        mask, ct, centroids = load_verse_study(group.iloc[0])
        healthy = set(group.loc[group["genant_grade"] == 0, "vertebra_label"].astype(int))
        yield str(subject), _straighten(mask, ct, centroids), healthy


def section_pairs(vertebrae: list[StraightVertebra], healthy: set[int], model: GANModel
                  ) -> tuple[list[float], list[float]]:
    """(pseudo-healthy, real) section heights (mm) of the study's whole healthy vertebrae."""
    pseudo = synthesize_gan(vertebrae, model)
    est, real = [], []
    for v in vertebrae:
        if v.label not in healthy or v.cut_by_fov or v.label not in pseudo:
            continue
        e = section_heights(pseudo[v.label].heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
        r = section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
        est += [e[s] for s in SECTIONS]
        real += [r[s] for s in SECTIONS]
    return est, real


def _mean_error(est: np.ndarray, real: np.ndarray, calibration: HeightCalibration) -> float:
    keep = np.isfinite(est) & np.isfinite(real)
    return round(float(np.mean(calibration.apply(est[keep]) - real[keep])), 3)


def calibrate_synthesizer(cfg, progress: Progress | None = None) -> dict:
    """Fit the height calibration of the weights at ``cfg.output`` and write them back (with the
    fit in their card); returns the card's ``height_calibration`` entry."""
    model, card = load_gan(cfg.output)
    model.calibration = HeightCalibration()  # the fit is of the network's own heights
    studies = phantom_studies(cfg) if cfg.source == "phantom" else verse_studies(cfg)
    total = cfg.calibration_studies if cfg.source == "phantom" else None
    est, real, n_studies = [], [], 0
    for i, (name, vertebrae, healthy) in enumerate(studies):
        e, r = section_pairs(vertebrae, healthy, model)
        est += e
        real += r
        n_studies = i + 1
        if progress:
            progress(i + 1, total or i + 1, f"calibration {name}")
    est_a, real_a = np.array(est, float), np.array(real, float)
    fitted = fit_height_calibration(est_a, real_a)
    cohort = (f"{cfg.calibration_studies} phantom studies ({cfg.top}-{cfg.bottom}, seeds {cfg.calibration_seed}.."
              f"{cfg.calibration_seed + cfg.calibration_studies - 1})" if cfg.source == "phantom"
              else f"VerSe tree {cfg.verse_root}, splits {list(cfg.calibration_splits)}"
              + (f" less subjects {list(cfg.exclude_subjects)}" if cfg.exclude_subjects else "")
              + f" ({n_studies} studies)")
    entry = {**fitted.to_dict(), "fitted_on": cohort, "healthy_vertebrae": len(est) // len(SECTIONS),
             "mean_section_error_mm_before": _mean_error(est_a, real_a, HeightCalibration()),
             "mean_section_error_mm_after": _mean_error(est_a, real_a, fitted)}
    model.calibration = fitted
    save_gan(model, Path(cfg.output), {**card, "height_calibration": entry})
    return entry
