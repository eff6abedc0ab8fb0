"""Accuracy and speed of measurement and grading (issue: height loss and Genant grading).

    .venv/bin/python benchmarks/measurement.py [--studies 8] [--seed 5000]

Prints markdown tables:
1. phantoms (fresh seeds, never used in training; every grade x morphology): height, RHLV
   and grade errors against the phantoms' analytic truth, for the rule and SVM graders;
2. the real VerSe subject verse007 (mask + centroids) against its expert grades;
3. time per stage for verse007's 9-vertebra mask on this machine.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.labels import VERSE_NAMES
from healthivert.phantom import MORPHOLOGIES, FractureSpec, PhantomConfig, make_phantom
from healthivert.pipeline import RunOptions, analyse_study, run_study
from healthivert.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
VERSE007 = ROOT.parent / "shared" / "data" / "real" / "verse007"
LEVELS = ["T8", "T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]


def fracture_plan(n_studies: int, seed: int) -> list[tuple[FractureSpec, ...]]:
    """Every (grade, morphology) pair, two or three fractures per study, some adjacent."""
    combos = list(itertools.product((1, 2, 3), MORPHOLOGIES))
    rng = np.random.default_rng(seed)
    plan, k = [], 0
    for i in range(n_studies):
        n = 2 + i % 2
        start = int(rng.integers(0, len(LEVELS) - 4))
        spots = sorted(rng.choice(range(start, len(LEVELS)), size=n, replace=False))
        specs = []
        for spot in spots:
            g, m = combos[k % len(combos)]
            k += 1
            specs.append(FractureSpec(LEVELS[spot], g, m))
        plan.append(tuple(specs))
    return plan


def phantom_rows(n_studies: int, seed: int) -> pd.DataFrame:
    graders = {"rule": get_grader("rule"), "svm": get_grader("svm")}
    rows = []
    for i, specs in enumerate(fracture_plan(n_studies, seed)):
        study = make_phantom(PhantomConfig(fractures=specs), seed + i)
        truth = {v["label"]: v for v in study.truth["vertebrae"]}
        analysis = analyse_study(study.mask, centroids_from_mask(study.mask))
        labels = list(analysis.measured)
        feats = pd.DataFrame([analysis.measured[lab].features() for lab in labels])
        grades = {name: g.predict(feats) for name, g in graders.items()}
        for j, lab in enumerate(labels):
            m, t = analysis.measured[lab], truth[lab]
            row = {"study": study.subject, "label": lab, "truth_grade": t["genant_grade"],
                   "morphology": t["morphology"] or "-", "slice_mm": study.truth["spacing_mm"][2],
                   "rule": int(grades["rule"][j]), "svm": int(grades["svm"][j])}
            for s in SECTIONS:
                row[f"err_orig_{s}"] = m.original_mm[s] - t["fractured_heights_mm"][s]
                row[f"err_healthy_{s}"] = m.pseudo_healthy_mm[s] - t["healthy_heights_mm"][s]
                row[f"err_rhlv_{s}"] = m.rhlv[s] - t["rhlv"][s]
            rows.append(row)
        print(f"  phantom {i + 1}/{n_studies} {study.subject}", file=sys.stderr)
    return pd.DataFrame(rows)


def phantom_tables(df: pd.DataFrame) -> str:
    out = [f"Phantoms: {len(df)} vertebrae in {df.study.nunique()} studies "
           f"(grades {df.truth_grade.value_counts().sort_index().to_dict()}, slices "
           f"{sorted(df.slice_mm.unique().tolist())} mm)", "",
           "| quantity | anterior | middle | posterior | target |", "|---|---|---|---|---|"]
    for key, label, target in (("err_orig", "measured height, median abs error (mm)", "<= 1 mm"),
                               ("err_healthy", "pseudo-healthy height, median abs error (mm)", "-"),
                               ("err_rhlv", "RHLV, median abs error", "<= 0.03")):
        vals = [f"{df[f'{key}_{s}'].abs().median():.3f}" for s in SECTIONS]
        out.append(f"| {label} | {' | '.join(vals)} | {target} |")
    out += ["", "| grader | exact agreement | off by > 1 grade | macro-F1 | target |", "|---|---|---|---|---|"]
    from sklearn.metrics import f1_score

    for g in ("rule", "svm"):
        exact = (df[g] == df.truth_grade).mean()
        off = (df[g] - df.truth_grade).abs().max()
        f1 = f1_score(df.truth_grade, df[g], average="macro")
        out.append(f"| {g} | {100 * exact:.1f} % | {int((df[g] - df.truth_grade).abs().gt(1).sum())} "
                   f"(max off {off}) | {f1:.3f} | >= 85 %, never > 1 |")
    out += ["", "Exact agreement by morphology (rule / svm):", "",
            "| morphology | n | rule | svm |", "|---|---|---|---|"]
    for morph, sub in df.groupby("morphology"):
        out.append(f"| {morph} | {len(sub)} | {100 * (sub.rule == sub.truth_grade).mean():.0f} % | "
                   f"{100 * (sub.svm == sub.truth_grade).mean():.0f} % |")
    return "\n".join(out)


def verse007_table() -> str:
    if not VERSE007.is_dir():
        return "verse007: ../shared/data/real/verse007 absent, skipped"
    expert = {int(k): v for k, v in json.loads((VERSE007 / "genant_grades.json").read_text())["genant_grade"].items()}
    out = ["verse007 (real expert mask, CT not available):", "",
           "| vertebra | expert | rule | svm | RHLV a/m/p % | status |", "|---|---|---|---|---|---|"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for g in ("rule", "svm"):
            results[g] = run_study(Path(tmp) / g, mask_path=VERSE007 / "sub-verse007_seg-vert_msk.nii.gz",
                                   centroids_path=VERSE007 / "sub-verse007_seg-subreg_ctd.json",
                                   options=RunOptions(grader=g, write_crops=False))
    for rv, sv in zip(results["rule"]["vertebrae"], results["svm"]["vertebrae"]):
        rhs = "/".join(f"{100 * rv.rhlv.get(s):.0f}" for s in SECTIONS) if rv.rhlv else "-"
        out.append(f"| {rv.name} | {expert.get(rv.label, 'n/a')} | {rv.genant_grade} | {sv.genant_grade} "
                   f"| {rhs} | {rv.status} |")
    fractures = [lab for lab, g in expert.items() if g >= 1]
    healthy = [lab for lab, g in expert.items() if g == 0]
    for g in ("rule", "svm"):
        got = {v.label: v.genant_grade for v in results[g]["vertebrae"]}
        found = sum((got.get(lab) or 0) >= 1 for lab in fractures)
        false = sum((got.get(lab) or 0) >= 1 for lab in healthy)
        out.append(f"\n{g}: fractures graded >= 1: {found} of {len(fractures)} (target all); "
                   f"expert-normal graded >= 1: {false} of {len(healthy)} (target <= 1)")
    return "\n".join(out)


def reference_table() -> str:
    """Our section heights on verse007 against HealthiVert-GAN's own straightened crops."""
    ref_dir = VERSE007 / "straightened_reference"
    if not ref_dir.is_dir():
        return "straightened reference: absent, skipped"
    import nibabel as nib

    from healthivert.geometry.vertebrae import straighten_vertebrae
    from healthivert.io.centroids import read_centroids
    from healthivert.io.images import load_mask
    from healthivert.sections import section_heights

    mask = load_mask(VERSE007 / "sub-verse007_seg-vert_msk.nii.gz")
    cents = {**centroids_from_mask(mask), **read_centroids(VERSE007 / "sub-verse007_seg-subreg_ctd.json", mask)}
    _, verts = straighten_vertebrae(mask, cents)
    ours = {v.label: section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm) for v in verts}
    out = ["verse007 body heights (mm), ours vs the HealthiVert-GAN paper's straightened, de-pedicled crops:",
           "", "| vertebra | ours a/m/p | paper's crops a/m/p | max abs difference |", "|---|---|---|---|"]
    diffs = []
    for path in sorted(ref_dir.glob("sub-verse007_*.nii.gz")):
        label = int(path.name.split("_")[1].split(".")[0])
        crop = np.asanyarray(nib.load(path).dataobj)  # (SI, AP towards posterior, LR), 1 mm
        heights = (crop == label).sum(axis=0).astype(float)
        ref = section_heights(heights, -np.arange(crop.shape[1], dtype=float), np.arange(crop.shape[2], dtype=float))
        d = max(abs(ours[label][s] - ref[s]) for s in SECTIONS)
        diffs.append(d)
        out.append(f"| {VERSE_NAMES[label]} | {'/'.join(f'{ours[label][s]:.1f}' for s in SECTIONS)} | "
                   f"{'/'.join(f'{ref[s]:.1f}' for s in SECTIONS)} | {d:.1f} |")
    out.append(f"\nmedian of the per-vertebra max differences: {statistics.median(diffs):.1f} mm")
    return "\n".join(out)


def speed_table(repeats: int = 3) -> str:
    if not VERSE007.is_dir():
        return "speed: verse007 absent, skipped"
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            r = run_study(Path(tmp) / str(i), mask_path=VERSE007 / "sub-verse007_seg-vert_msk.nii.gz",
                          centroids_path=VERSE007 / "sub-verse007_seg-subreg_ctd.json",
                          options=RunOptions(grader="svm"))
            runs.append(r["timings_s"])
    stages = ["load", "straighten", "synthesize", "measure", "grade", "write"]
    med = {s: statistics.median(r[s] for r in runs) for s in stages}
    core = sum(med[s] for s in stages if s != "write")
    total = sum(med.values())
    out = [f"Speed, verse007 (9-vertebra mask), median of {repeats} runs, this machine:", "",
           "| stage | seconds | share |", "|---|---|---|"]
    out += [f"| {s} | {med[s]:.2f} | {100 * med[s] / total:.0f} % |" for s in stages]
    out.append(f"| load to grade (target <= 5 s) | {core:.2f} | |")
    out.append(f"| total with writing maps and crops | {total:.2f} | |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=8)
    parser.add_argument("--seed", type=int, default=5000)
    args = parser.parse_args()
    t = time.time()
    df = phantom_rows(args.studies, args.seed)
    print(phantom_tables(df))
    print()
    print(verse007_table())
    print()
    print(reference_table())
    print()
    print(speed_table())
    print(f"\n(benchmark wall time {time.time() - t:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
