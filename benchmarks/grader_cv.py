"""Grading through each synthesizer on the graders' own training cohort, by nested CV.

    .venv/bin/python benchmarks/grader_cv.py [--repeats 4]

Reads the features of ``pipelines/grader.yaml`` (prior) and ``pipelines/grader_gan.yaml``
(GAN): 120 phantom studies, seeds 1000-1119, 1200 vertebrae with 81 / 82 / 81 of grades
1 / 2 / 3, from each recipe's ``features_cache`` (measured and stored when absent: about 60 min
through the GAN on a 2-core CPU). Prints markdown tables:
1. each synthesizer with the rule grader (no fitting: Genant thresholds on the worst third) and
   with an SVM by nested cross-validation: outer 5 folds by subject, each fold graded by an SVM
   trained, tuned and calibrated on the other four exactly as ``healthivert train grader`` does,
   with either ``selection`` rule; averaged over ``--repeats`` random subject partitions;
2. GAN against prior paired on the same vertebrae (first partition for the SVM): discordant
   counts, exact McNemar p and a 95 % cluster-bootstrap interval for the agreement difference.
A cohort 2.5 times the synthesis benchmark's, though drawn with random fractures (not every
grade x morphology) and from the seeds the shipped SVMs were trained on, which nested CV keeps
out of every graded fold.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from healthivert.grading import FEATURES, get_grader
from healthivert.grading.svm import train_svm
from healthivert.training.config import load_grader_config
from healthivert.training.grader import cohort_features

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthesis import paired_difference  # noqa: E402  (the same paired statistics)

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {"prior": ROOT / "pipelines" / "grader.yaml", "gan": ROOT / "pipelines" / "grader_gan.yaml"}
FOLDS = 5


def recipe_features(recipe: Path) -> pd.DataFrame:
    """The recipe's training features, from its cache or measured (and cached) now."""
    cfg = load_grader_config(recipe)
    cfg = replace(cfg, features_cache=str(ROOT / cfg.features_cache))
    df = cohort_features(cfg, lambda i, n, s: print(f"  {cfg.synthesizer} {i}/{n} {s}", file=sys.stderr))
    return df.sort_values(["study_id", "label"], ignore_index=True)


def nested_cv(df: pd.DataFrame, selection: str, repeat: int) -> np.ndarray:
    """Out-of-fold SVM grades: subjects permuted by ``repeat``, then split into FOLDS groups."""
    y, groups = df["genant_grade"].to_numpy(int), df["study_id"].to_numpy()
    subjects = np.unique(groups)
    fold_of = dict(zip(subjects, np.random.default_rng(repeat).permutation(len(subjects)) % FOLDS))
    fold = np.array([fold_of[s] for s in groups])
    pred = np.zeros(len(df), int)
    for k in range(FOLDS):
        train, test = fold != k, fold == k
        model, _ = train_svm(df[train], y[train], groups[train], selection=selection)
        pred[test] = model.predict(df.loc[test, list(FEATURES)].to_numpy(float))
    return pred


def scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {"exact": float((pred == truth).mean()), "macro_f1": float(f1_score(truth, pred, average="macro")),
            **{f"grade {g}": float((pred[truth == g] == g).mean()) for g in range(4)}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=4, help="random subject partitions of the outer CV")
    args = parser.parse_args()
    t = time.time()
    rows, calls = [], []
    for name, recipe in RECIPES.items():
        df = recipe_features(recipe)
        truth = df["genant_grade"].to_numpy(int)
        graded = {("rule", ""): [get_grader("rule").predict(df[list(FEATURES)])]}
        for selection in ("best", "one_se"):
            graded[("svm", selection)] = [nested_cv(df, selection, r) for r in range(args.repeats)]
            print(f"  {name} svm {selection}: {time.time() - t:.0f} s", file=sys.stderr)
        for (grader, selection), preds in graded.items():
            mean = pd.DataFrame([scores(truth, p) for p in preds]).mean()
            rows.append({"synthesizer": name, "grader": grader, "selection": selection or "-", **mean})
            if selection in ("", "best"):
                calls.append(df[["study_id", "label"]].rename(columns={"study_id": "study"})
                             .assign(synthesizer=name, grader=grader, truth=truth, grade=np.asarray(preds[0], int)))
    n = len(calls[0])
    print(f"Nested CV on the graders' training cohort ({n} vertebrae of {calls[0].study.nunique()} phantom studies; "
          f"SVM figures: mean of {args.repeats} subject partitions):\n")
    print("| synthesizer | grader | selection | exact agreement | macro-F1 | grade 0 | grade 1 | grade 2 | grade 3 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['synthesizer']} | {r['grader']} | {r['selection']} | {100 * r['exact']:.1f} % | "
              f"{r['macro_f1']:.3f} | " + " | ".join(f"{100 * r[f'grade {g}']:.1f} %" for g in range(4)) + " |")
    both = pd.concat(calls, ignore_index=True)
    print("\nGAN against prior on the same vertebrae (SVM: selection 'best', first partition):\n")
    print("| grader | only GAN right | only prior right | McNemar p (exact) | "
          "agreement difference, GAN - prior (95 % CI, bootstrap over studies) |")
    print("|---|---|---|---|---|")
    for g in ("rule", "svm"):
        gan_only, prior_only, diff, (lo, hi) = paired_difference(both[both.grader == g])
        p = binomtest(gan_only, gan_only + prior_only).pvalue if gan_only + prior_only else 1.0
        print(f"| {g} | {gan_only} | {prior_only} | {p:.2f} | {100 * diff:+.1f} points "
              f"({100 * lo:+.1f} to {100 * hi:+.1f}) |")
    print(f"\n({time.time() - t:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
