"""Pseudo-healthy synthesis: the HealthiVert-GAN (``gan``) side by side with the ``prior``.

    .venv/bin/python benchmarks/synthesis.py [--studies 4] [--seed 6100] [--grading-studies 48] [--csv grades.csv]
        [--measurements build/benchmarks/synthesis_grading.csv] [--jobs N] [--skip-restoration]

``--jobs N`` measures the grading cohort's studies in N single-threaded processes (on a
many-core machine; the GAN runs on the GPU when there is one, and the printed inference time
names the device it was measured on).

Prints markdown tables:
1. restoration of healthy phantom vertebrae never trained on (seeds 6100.., T8-L5; every
   grade-0 vertebra without deformity): each is masked and restored by both synthesizers, and
   the restored body is compared with the real one: 3-D Dice, section height error (mm), and
   for the GAN PSNR / SSIM of the restored CT inside the 40 mm band (mid sagittal and mid
   coronal slice of each vertebra);
2. grading through each synthesizer on the measurement benchmark's phantom plan (seeds
   5000.., every grade x morphology; 48 studies by default, 480 vertebrae, of which the first
   8 are the measurement benchmark's own cohort: 80 vertebrae hold only 8 of grade 1, and 240
   left the GAN-prior difference undecided), with
   the rule grader and the SVM shipped for that synthesizer (trained on features measured
   through it); then per true grade; then the two synthesizers paired on the same vertebrae:
   how many each grades right where the other does not, the exact McNemar p-value of that
   split, and a 95 % interval for the difference in agreement from a bootstrap over studies
   (vertebrae of one study are not independent); then each synthesizer's signed error of the
   pseudo-healthy heights against the phantom's true healthy heights (mean over the three
   sections, mm; positive = too tall) by kind of vertebra, which is where misgrades come from;
3. the GAN's inference time per vertebra on this machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from monai.metrics import PSNRMetric, SSIMMetric
from scipy.stats import binomtest
from sklearn.metrics import f1_score

from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.grading import FEATURES, get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.keyed_csv import read_keyed_csv, write_keyed_csv
from healthivert.parallel import map_in_order
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.pipeline import analyse_study
from healthivert.sections import SECTIONS, section_heights
from healthivert.synthesis import get_synthesizer
from healthivert.synthesis.gan.canvas import BAND_MM, BAND_TOP, VertebraStack, make_sample
from healthivert.synthesis.gan.infer import inference_device
from healthivert.synthesis.gan.model import load_gan, weights_digest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from measurement import fracture_plan  # noqa: E402  (the measurement benchmark's cohort)

NAMES = ("prior", "gan")
GRADING_SEED = 5000  # the measurement benchmark's phantom plan


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / max(a.sum() + b.sum(), 1))


def band_quality(stack: VertebraStack, model) -> list[tuple[float, float]]:
    """(PSNR dB, SSIM) of the restored CT inside the band, mid sagittal and mid coronal slice."""
    psnr, ssim = PSNRMetric(max_val=2.0), SSIMMetric(spatial_dims=2, data_range=2.0)
    out = []
    for view in ("sagittal", "coronal"):
        idx = stack.slice_indices(view)
        if idx.size == 0:
            continue
        sample = make_sample(stack, view, int(idx[len(idx) // 2]))
        if sample is None:
            continue
        batch = model.inputs([sample])
        with torch.no_grad():
            pred = model.generator(batch["input"])["fine_ct"]
        band = slice(BAND_TOP, BAND_TOP + BAND_MM)
        p, t = pred[:, :, band], batch["ct"][:, :, band]
        out.append((float(psnr(p, t).mean()), float(ssim(p, t).mean())))
    return out


def restoration_rows(n: int, seed: int) -> tuple[pd.DataFrame, list[tuple[float, float]]]:
    model, _ = load_gan()
    synth = {name: get_synthesizer(name) for name in NAMES}
    rows, quality = [], []
    for i in range(n):
        study = make_phantom(PhantomConfig(top="T8", bottom="L5"), seed + i)
        truth = {v["label"]: v for v in study.truth["vertebrae"]}
        _, verts = straighten_vertebrae(study.mask, centroids_from_mask(study.mask), study.ct)
        healthy = {name: s(verts) for name, s in synth.items()}
        for v in verts:
            t = truth[v.label]
            if t["genant_grade"] != 0 or t["morphology"] or v.cut_by_fov or not v.body.any():
                continue
            real = section_heights(v.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
            row = {"study": study.subject, "label": v.label}
            for name in NAMES:
                ph = healthy[name][v.label]
                est = section_heights(ph.heights_mm.T, v.grid.ap_mm, v.grid.lr_mm)
                row[f"{name}_dice"] = _dice(ph.body, v.body)
                for s in SECTIONS:
                    row[f"{name}_err_{s}"] = abs(est[s] - real[s])
            rows.append(row)
            quality += band_quality(VertebraStack.from_vertebra(v), model)
        print(f"  restoration {i + 1}/{n} {study.subject}", file=sys.stderr)
    return pd.DataFrame(rows), quality


def restoration_table(df: pd.DataFrame, quality: list[tuple[float, float]]) -> str:
    out = [f"Restoration of {len(df)} healthy phantom vertebrae in {df.study.nunique()} held-out studies:", "",
           "| synthesizer | Dice, mean (min) | height error a / m / p, mean (mm) | worst section error (mm) |",
           "|---|---|---|---|"]
    for name in NAMES:
        errs = " / ".join(f"{df[f'{name}_err_{s}'].mean():.2f}" for s in SECTIONS)
        worst = max(df[f"{name}_err_{s}"].max() for s in SECTIONS)
        out.append(f"| {name} | {df[f'{name}_dice'].mean():.3f} ({df[f'{name}_dice'].min():.3f}) | {errs} | "
                   f"{worst:.2f} |")
    out.append("\ntargets (gan): Dice >= 0.90, section height error <= 1.5 mm, better than the prior")
    q = np.array(quality)
    out.append(f"\nGAN inside the 40 mm band ({len(q)} mid slices): PSNR {q[:, 0].mean():.1f} dB, "
               f"SSIM {q[:, 1].mean():.3f} (CT window [-300, 800] HU as [-1, 1])")
    return "\n".join(out)


def measure_grading_study(i: int, specs, seed: int = GRADING_SEED) -> list[dict]:
    """Study ``i`` of the grading cohort through both synthesizers: per vertebra its grading
    features, truth, kind, signed pseudo-healthy height error (mm) and the GAN's seconds per
    vertebra on the device it ran on."""
    study = make_phantom(PhantomConfig(fractures=specs), seed + i)
    truth = {v["label"]: v for v in study.truth["vertebrae"]}
    rows = []
    for name in NAMES:
        analysis = analyse_study(study.mask, centroids_from_mask(study.mask), study.ct, synthesizer=name)
        seconds = analysis.timings["synthesize"] / len(analysis.vertebrae)
        for lab, m in analysis.measured.items():
            t, ph = truth[lab], m.pseudo_healthy_mm
            rows.append({"study": study.subject, "label": lab, "synthesizer": name, "truth": t["genant_grade"],
                         "kind": vertebra_kind(t), "synthesis_s_per_vertebra": seconds,
                         "synthesis_device": f"{inference_device()}, {torch.get_num_threads()} threads",
                         "height_error_mm": np.mean([ph[s] - t["healthy_heights_mm"][s] for s in SECTIONS]),
                         **m.features()})
    return rows


def measure_grading_cohort(n: int, seed: int = GRADING_SEED, jobs: int = 1) -> pd.DataFrame:
    """Every vertebra of the grading cohort (``measure_grading_study``), in study order; with
    ``jobs`` > 1 the studies run in that many single-threaded worker processes."""
    def printed(done: int, total: int, _: str) -> None:
        print(f"  grading {done}/{total}", file=sys.stderr)

    plan = [(i, specs, seed) for i, specs in enumerate(fracture_plan(n, seed))]
    per_study = map_in_order(measure_grading_study, plan, jobs, printed)
    return pd.DataFrame([row for rows in per_study for row in rows])


def grading_rows(measured: pd.DataFrame) -> pd.DataFrame:
    """One row per vertebra x synthesizer x grader (rule, and the SVM shipped for that synthesizer)."""
    out = []
    for name, sub in measured.groupby("synthesizer", sort=False):
        for g, grader in {"rule": get_grader("rule"), "svm": get_grader("svm", synthesizer=name)}.items():
            out.append(sub[["study", "label", "synthesizer", "truth", "kind", "height_error_mm"]]
                       .assign(grader=g, grade=grader.predict(sub[list(FEATURES)]).astype(int)))
    return pd.concat(out, ignore_index=True)


def cohort_key(n: int, seed: int) -> dict:
    """What the grading cohort's measurements depend on besides the code."""
    return {"studies": n, "seed": seed, "synthesizers": list(NAMES), "gan_weights_sha256": weights_digest()}


def vertebra_kind(truth: dict) -> str:
    """The phantom truth's vertebra as one of the rows of the height-error table."""
    if truth["genant_grade"] == 0:
        return f"normal, sub-threshold {truth['morphology']}" if truth["morphology"] else "normal"
    return f"grade {truth['genant_grade']}, {truth['morphology']}"


def height_error_table(df: pd.DataFrame) -> str:
    """Mean signed pseudo-healthy height error (mm) per kind of vertebra and synthesizer."""
    one = df[df.grader == df.grader.iloc[0]]  # the heights do not depend on the grader
    table = one.pivot_table(index="kind", columns="synthesizer", values="height_error_mm", aggfunc="mean")
    counts = one[one.synthesizer == NAMES[0]].kind.value_counts()
    out = ["Pseudo-healthy height error against the phantom's healthy heights (mean over a / m / p, mm; "
           "positive = too tall):", "", "| vertebrae (n) | " + " | ".join(NAMES) + " |", "|---|" + "---|" * len(NAMES)]
    for kind in sorted(table.index, key=lambda k: (k != "normal", k)):
        out.append(f"| {kind} ({counts[kind]}) | " + " | ".join(f"{table.loc[kind, n]:+.2f}" for n in NAMES) + " |")
    return "\n".join(out)


def grading_table(df: pd.DataFrame) -> str:
    n = df[["study", "label"]].drop_duplicates().shape[0]
    out = [f"Grading on the measurement benchmark's phantom plan ({df.study.nunique()} studies, {n} vertebrae, "
           "every grade x morphology):", "",
           "| synthesizer | grader | exact agreement | macro-F1 | off by > 1 |", "|---|---|---|---|---|"]
    per_grade = ["", "Exact agreement per true grade:", "",
                 "| synthesizer | grader | " + " | ".join(f"grade {g} (n)" for g in sorted(df.truth.unique())) + " |",
                 "|---|---|" + "---|" * df.truth.nunique()]
    for (name, g), sub in df.groupby(["synthesizer", "grader"], sort=False):
        right = sub.grade == sub.truth
        out.append(f"| {name} | {g} | {100 * right.mean():.1f} % | "
                   f"{f1_score(sub.truth, sub.grade, average='macro'):.3f} | "
                   f"{int((sub.grade - sub.truth).abs().gt(1).sum())} |")
        cells = [f"{100 * r.mean():.1f} % ({len(r)})" for _, r in right.groupby(sub.truth)]
        per_grade.append(f"| {name} | {g} | " + " | ".join(cells) + " |")
    out += per_grade + ["", "GAN against prior on the same vertebrae:", "",
            "| grader | only GAN right | only prior right | McNemar p (exact) | "
            "agreement difference, GAN - prior (95 % CI, bootstrap over studies) |", "|---|---|---|---|---|"]
    for g in df.grader.unique():
        gan_only, prior_only, diff, (lo, hi) = paired_difference(df[df.grader == g])
        p = binomtest(gan_only, gan_only + prior_only).pvalue if gan_only + prior_only else 1.0
        out.append(f"| {g} | {gan_only} | {prior_only} | {p:.2f} | "
                   f"{100 * diff:+.1f} points ({100 * lo:+.1f} to {100 * hi:+.1f}) |")
    return "\n".join(out)


def paired_difference(df: pd.DataFrame, n_boot: int = 2000, seed: int = 0
                      ) -> tuple[int, int, float, tuple[float, float]]:
    """GAN against prior, one grader: discordant counts, agreement difference and its 95 % CI.

    The interval resamples whole studies with replacement (a cluster bootstrap), since the
    vertebrae of one phantom share its anatomy and contrast.
    """
    right = (df.assign(ok=df.grade == df.truth)
             .pivot_table(index=["study", "label"], columns="synthesizer", values="ok", aggfunc="first")
             .dropna().astype(bool))
    delta = (right["gan"].astype(int) - right["prior"].astype(int))
    per_study = delta.groupby(level="study").agg(["sum", "count"])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(per_study), size=(n_boot, len(per_study)))
    sums, counts = per_study["sum"].to_numpy()[picks].sum(1), per_study["count"].to_numpy()[picks].sum(1)
    lo, hi = np.percentile(sums / counts, [2.5, 97.5])
    return int((delta > 0).sum()), int((delta < 0).sum()), float(delta.mean()), (float(lo), float(hi))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=4)
    parser.add_argument("--seed", type=int, default=6100)
    parser.add_argument("--grading-studies", type=int, default=48)
    parser.add_argument("--jobs", type=int, default=1, help="grading cohort: worker processes, one thread each "
                        "(default 1: the whole machine for one study at a time, as the inference time is reported)")
    parser.add_argument("--skip-restoration", action="store_true", help="only the grading cohort")
    parser.add_argument("--csv", type=Path, help="also write every grading call (study, label, synthesizer, "
                        "grader, truth, grade) to this CSV")
    parser.add_argument("--measurements", type=Path, help="keep the grading cohort's per-vertebra measurements "
                        "here (with a key: studies, seed, GAN weights); a rerun with new SVMs reads them back "
                        "instead of synthesising again (delete it after changing the measurement code)")
    args = parser.parse_args()
    t = time.time()
    if not args.skip_restoration:
        df, quality = restoration_rows(args.studies, args.seed)
        print(restoration_table(df, quality))
        print()
    key = cohort_key(args.grading_studies, GRADING_SEED)
    measured = read_keyed_csv(args.measurements, key, ("kind",)) if args.measurements else None
    if measured is None:
        measured = measure_grading_cohort(args.grading_studies, GRADING_SEED, args.jobs)
        if args.measurements:
            write_keyed_csv(args.measurements, measured, key)
    else:
        print(f"  grading cohort read from {args.measurements} (same studies and GAN weights)", file=sys.stderr)
    gdf = grading_rows(measured)
    print(grading_table(gdf))
    print()
    print(height_error_table(gdf))
    if args.csv:
        gdf.to_csv(args.csv, index=False)
    gan = measured[measured.synthesizer == "gan"]
    per_vertebra = gan.groupby("study")["synthesis_s_per_vertebra"].first()
    where = gan["synthesis_device"].iloc[0] if "synthesis_device" in gan else "this machine's CPU"
    print(f"\nGAN inference ({where}, where the grading cohort was measured): "
          f"{np.median(per_vertebra):.2f} s per vertebra (median over studies; target <= 3 s on a 2-core CPU), "
          "both passes of iterative synthesis included")
    print(f"\n({time.time() - t:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
