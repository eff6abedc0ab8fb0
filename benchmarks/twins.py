"""Does a pseudo-healthy body depend on the fracture it replaces? Twin phantoms, per synthesizer.

    .venv/bin/python benchmarks/twins.py [--seed 5400] [--synthesizers prior,gan]

Each twin pair is one phantom study (T8-L5, one fracture) built twice from the same seed:
fractured, and intact (``PhantomConfig(intact=True)``: the same anatomy, noise and draws, the
body at its healthy height). The whole pipeline runs on both; the fractured vertebra's
pseudo-healthy section heights should be equal in the two. Nine pairs, one per grade x
morphology, the fracture at T9, T11, L1, L2 or L4 in turn. Prints markdown tables:
1. the leak: fractured minus intact pseudo-healthy height (mm, negative = the fracture made the
   pseudo-healthy body shorter), mean per section and mean absolute, per synthesizer;
2. the mean leak over the three sections by morphology;
3. the grades the fractured twins get (rule grader) against their true grades.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time

import pandas as pd

from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.phantom import MORPHOLOGIES, FractureSpec, PhantomConfig, make_phantom
from healthivert.pipeline import analyse_study
from healthivert.sections import SECTIONS

LEVELS = ("T9", "T11", "L1", "L2", "L4")


def twin_plan(seed: int) -> list[tuple[int, FractureSpec]]:
    """(seed, fracture) of the nine pairs: every grade x morphology."""
    combos = itertools.product((1, 2, 3), MORPHOLOGIES)
    return [(seed + k, FractureSpec(LEVELS[k % len(LEVELS)], g, m)) for k, (g, m) in enumerate(combos)]


def twin_rows(seed: int, synthesizers: list[str]) -> pd.DataFrame:
    rows, rule = [], get_grader("rule")
    plan = twin_plan(seed)
    for i, (study_seed, spec) in enumerate(plan):
        measured, healthy_mm = {}, {}  # the fractured vertebra's measurement per (synthesizer, intact)
        for intact in (False, True):
            study = make_phantom(PhantomConfig(fractures=(spec,), deformity_rate=0.0, intact=intact), study_seed)
            (truth,) = [v for v in study.truth["vertebrae"] if v["name"] == spec.vertebra]
            healthy_mm = truth["healthy_heights_mm"]  # the same in both twins
            for name in synthesizers:
                analysis = analyse_study(study.mask, centroids_from_mask(study.mask), study.ct, synthesizer=name)
                measured[name, intact] = analysis.measured[truth["label"]]
        for name in synthesizers:
            fractured, twin = measured[name, False], measured[name, True]
            row = {"seed": study_seed, "level": spec.vertebra, "grade": spec.grade, "morphology": spec.morphology,
                   "synthesizer": name, "rule_grade": int(rule.predict(pd.DataFrame([fractured.features()]))[0])}
            for s in SECTIONS:
                row[f"leak_{s}"] = fractured.pseudo_healthy_mm[s] - twin.pseudo_healthy_mm[s]
                row[f"intact_error_{s}"] = twin.pseudo_healthy_mm[s] - healthy_mm[s]
            rows.append(row)
        print(f"  pair {i + 1}/{len(plan)} seed {study_seed} {spec.vertebra} grade {spec.grade} {spec.morphology}",
              file=sys.stderr)
    return pd.DataFrame(rows)


def tables(df: pd.DataFrame) -> str:
    leak = [f"leak_{s}" for s in SECTIONS]
    out = [f"Leak of the fracture into the pseudo-healthy body ({df.seed.nunique()} twin pairs, seeds "
           f"{df.seed.min()}-{df.seed.max()}; fractured minus intact twin, mm):", "",
           "| synthesizer | mean a / m / p | mean absolute a / m / p | worst | intact twin's error a / m / p |",
           "|---|---|---|---|---|"]
    err = [f"intact_error_{s}" for s in SECTIONS]
    for name, sub in df.groupby("synthesizer", sort=False):
        worst = sub[leak].abs().to_numpy().max()
        out.append(f"| {name} | {' / '.join(f'{sub[c].mean():+.2f}' for c in leak)} | "
                   f"{' / '.join(f'{sub[c].abs().mean():.2f}' for c in leak)} | {worst:.2f} | "
                   f"{' / '.join(f'{sub[c].mean():+.2f}' for c in err)} |")
    df = df.assign(leak=df[leak].mean(axis=1))
    by = df.pivot_table(index="synthesizer", columns="morphology", values="leak", aggfunc="mean", sort=False)
    out += ["", "Mean leak over the three sections by morphology (mm):", "",
            "| synthesizer | " + " | ".join(by.columns) + " |", "|---" * (len(by.columns) + 1) + "|"]
    out += [f"| {name} | " + " | ".join(f"{v:+.2f}" for v in r) + " |" for name, r in by.iterrows()]
    out += ["", "Rule grades of the fractured twins (true grade: predicted, one per pair):", ""]
    for name, sub in df.groupby("synthesizer", sort=False):
        hits = int((sub.rule_grade == sub.grade).sum())
        out.append(f"- {name}: {hits}/{len(sub)} right; " +
                   ", ".join(f"{g}: {p}" for g, p in zip(sub.grade, sub.rule_grade)))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5400)
    parser.add_argument("--synthesizers", default="prior,gan")
    args = parser.parse_args()
    t = time.time()
    print(tables(twin_rows(args.seed, args.synthesizers.split(","))))
    print(f"\n({time.time() - t:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
