"""HealthiVert-GAN fine-tuned on real CT, leave one subject out (issue 26): held-out heights and phantom cost.

    .venv/bin/python benchmarks/gan_real_loso.py [--minutes 14] [--subjects sub-verse007 ...]
        [--recipe pipelines/synthesizer_real.yaml] [--data ../shared/data]
        [--out build/benchmarks/gan_real_loso] [--phantom-studies 3] [--threads 1] [--score-only]

For each held-out subject S of ``real/verse2019_subset`` (sub-verse007, 008, 014): the recipe
(``pipelines/synthesizer_real.yaml``: the shipped GAN fine-tuned on the expert-normal
vertebrae, grade 0, of the other subjects) is trained with ``exclude_subjects: [S]``, so S is
never read for training, validation or calibration, stopped by ``--minutes`` (default: the
recipe's ``time_limit_min``), from a copy of the shipped weights (``OUT/start.safetensors``); outputs
in ``OUT/S/`` (``work/`` with its checkpoint, ``gan.safetensors`` with the calibration fitted
on the training subjects, ``gan_network.safetensors`` the same network with the identity
calibration, ``fold.json``). A fold with its ``fold.json`` is not trained again: a rerun only
scores (an interrupted fold resumes from its checkpoint), and its scores are kept too
(``scores.json``, ``*.phantomA-B.json`` beside each weights: delete them to score again).
Each study is straightened once and every weights' pseudo-healthy bodies measured on it as
``pipeline.analyse_study`` measures them.

Scored per fold, for the shipped GAN and both fold weights:

- on S's expert-normal vertebrae (``data_manifests/verse2019.csv`` grade 0, measured: not cut
  by the field of view), the raw GAN's pseudo-healthy minus measured section height (mm; no
  guard, no fallback to the prior: ``real_verse.py``'s ``gan-raw``), mean signed per section
  (anterior / middle / posterior) and overall, and mean absolute;
- the codebook use (SimVQ utilisation and perplexity) and the height head's error on 96
  slices of S's normal vertebrae (the trainer's ``evaluate``), beside the trainer's own last
  validation entry (in-sample: the training subjects);
- the phantom cost: ``gan_domain.py``'s "phantom as trained" condition (unfractured phantoms
  T10-L4, 1 mm slices, seeds ``--phantom-seed``..; shipped: -0.04 signed / 0.79 mm absolute
  on 21 vertebrae for seeds 5600-5602).

Prints markdown tables. Needs ``../shared/data`` (next to the repository); stops with a
message when it is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra, straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.measurement.heights import measure_vertebra
from healthivert.phantom import make_phantom
from healthivert.pipeline import load_inputs
from healthivert.sections import SECTIONS
from healthivert.synthesis import get_synthesizer
from healthivert.synthesis.gan.canvas import VertebraStack
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan
from healthivert.training.gan_calibration import calibrate_synthesizer
from healthivert.training.synthesizer import (
    SliceSampler,
    SynthesizerTrainConfig,
    Vertebra,
    evaluate,
    load_synthesizer_config,
    train_synthesizer,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gan_domain import BASE, CONDITIONS  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "build" / "benchmarks" / "gan_real_loso"
SUBJECTS = ("sub-verse007", "sub-verse008", "sub-verse014")
WEIGHTS = ("shipped", "fold network", "fold calibrated")  # the weights scored per fold
Errors = dict[str, list[float]]  # section -> pseudo-healthy minus measured (mm), one per vertebra


def fold_config(recipe: Path, subject: str, data: Path, out: Path, minutes: float) -> SynthesizerTrainConfig:
    """The recipe with ``subject`` held out, its tree under ``data``, its outputs in ``out/subject``."""
    base = load_synthesizer_config(recipe)
    fold = out / subject
    return replace(base, verse_root=str(data / "real" / "verse2019_subset"), manifest=str(ROOT / base.manifest),
                   exclude_subjects=(subject,), time_limit_min=minutes, init_weights=str(out / "start.safetensors"),
                   workdir=str(fold / "work"), output=str(fold / "gan.safetensors"))


def train_fold(cfg: SynthesizerTrainConfig) -> dict:
    """Train one fold (or read its ``fold.json``): the network with the identity calibration
    (``gan_network.safetensors``), then the recipe's calibration fitted on the training subjects
    (``gan.safetensors``; ``calibration_studies`` 0: the identity). Returns the fold's record."""
    fold = Path(cfg.output).parent
    record_path, network = fold / "fold.json", fold / "gan_network.safetensors"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    if not network.is_file():  # training done once: a later failure does not train again
        t0 = time.perf_counter()
        final = train_synthesizer(replace(cfg, calibration_studies=0))
        shutil.copyfile(cfg.output, network)
        (fold / "training.json").write_text(json.dumps({"validation": final, "minutes": round(
            (time.perf_counter() - t0) / 60, 1)}, indent=1, default=str))
    trained = json.loads((fold / "training.json").read_text())
    shutil.copyfile(network, cfg.output)
    calibration = calibrate_synthesizer(cfg) if cfg.calibration_studies else {}
    card = load_gan(cfg.output)[1]
    record = {"held_out": cfg.exclude_subjects[0], "steps": card["steps"], "trained_on": card["trained_on"],
              "minutes": trained["minutes"], "validation": trained["validation"], "calibration": calibration}
    record_path.write_text(json.dumps(record, indent=1, default=str))
    return record


def weights_paths(fold: Path) -> dict[str, str]:
    return {"shipped": str(DEFAULT_WEIGHTS), "fold network": str(fold / "gan_network.safetensors"),
            "fold calibrated": str(fold / "gan.safetensors")}


def normal_labels(manifest: Path, subject: str) -> set[int]:
    """The subject's expert-normal (grade 0) VerSe labels."""
    import pandas as pd

    table = pd.read_csv(manifest)
    rows = table[(table["subject"] == subject) & (table["genant_grade"] == 0)]
    return set(rows["vertebra_label"].astype(int))


def section_errors(vertebrae: list[StraightVertebra], synthesize, labels: set[int] | None = None) -> Errors:
    """Pseudo-healthy minus measured section heights (mm) of the vertebrae ``analyse_study``
    measures (whole in the view, a body, finite measurements), of ``labels`` when given. The
    study is straightened once for every weights (``analyse_study`` would straighten it again)."""
    healthy = synthesize(vertebrae)
    out: Errors = {s: [] for s in SECTIONS}
    for v in vertebrae:
        if v.cut_by_fov or v.label not in healthy or (labels is not None and v.label not in labels):
            continue
        m = measure_vertebra(v, healthy[v.label])
        if np.isfinite(list(m.features().values())).all():
            for s in SECTIONS:
                out[s].append(m.pseudo_healthy_mm[s] - m.original_mm[s])
    return out


def held_out_scores(subject: str, data: Path, paths: dict[str, str]) -> tuple[dict[str, Errors], dict[str, dict]]:
    """Per weights: the section errors (mm) on the subject's measured expert-normal vertebrae,
    and the codebook use / height-head error on 96 slices of them."""
    tree = data / "real" / "verse2019_subset"
    inputs = load_inputs(tree / "derivatives" / subject / f"{subject}_seg-vert_msk.nii.gz",
                         tree / "rawdata" / subject / f"{subject}_ct.nii.gz", None)
    normal = normal_labels(ROOT / "data_manifests" / "verse2019.csv", subject)
    _, vertebrae = straighten_vertebrae(inputs.mask, inputs.centroids, inputs.ct)
    stacks = [Vertebra(VertebraStack.from_vertebra(v), 0) for v in vertebrae
              if v.label in normal and v.body.any() and not v.cut_by_fov]  # as the trainer caches them
    samples = [s for _, s in SliceSampler(stacks, 1).draw(96)]
    errors, codes = {}, {}
    for name, path in paths.items():
        errors[name] = section_errors(vertebrae, get_synthesizer("gan", weights=path), normal)
        model, _ = load_gan(path)
        codes[name] = evaluate(model, samples, model.config.codebook_size)
    return errors, codes


def phantom_errors(paths: dict[str, str], seeds: list[int]) -> dict[str, list[float]]:
    """Per weights: pseudo-healthy minus measured section heights (mm) on ``gan_domain.py``'s
    "phantom as trained" phantoms (each generated and straightened once for every weights)."""
    change, crop = CONDITIONS["phantom as trained"]
    assert not crop
    synths = {name: get_synthesizer("gan", weights=p) for name, p in paths.items()}
    out: dict[str, list[float]] = {name: [] for name in paths}
    for seed in seeds:
        study = make_phantom(replace(BASE, **change), seed)
        _, vertebrae = straighten_vertebrae(study.mask, centroids_from_mask(study.mask), study.ct)
        for name, synth in synths.items():
            errors = section_errors(vertebrae, synth)
            out[name] += [e for s in SECTIONS for e in errors[s]]
    return out


def _stats(errors: Errors) -> tuple[int, dict[str, float], float, float]:
    """(vertebrae, mean signed per section, mean signed overall, mean absolute overall)."""
    allv = np.concatenate([errors[s] for s in SECTIONS]) if errors[SECTIONS[0]] else np.array([])
    if not allv.size:
        return 0, {s: float("nan") for s in SECTIONS}, float("nan"), float("nan")
    return len(errors[SECTIONS[0]]), {s: float(np.mean(errors[s])) for s in SECTIONS}, float(allv.mean()), \
        float(np.abs(allv).mean())


def height_table(per_fold: dict[str, dict[str, Errors]]) -> list[str]:
    """Held-out pseudo-healthy minus measured, per fold and weights, and all folds together."""
    out = ["| held out | weights | vertebrae | anterior | middle | posterior | mean signed | mean absolute |",
           "|---|---|---|---|---|---|---|---|"]
    together: dict[str, Errors] = {w: {s: [] for s in SECTIONS} for w in WEIGHTS}
    rows = [(subject, w, errs) for subject, by_w in per_fold.items() for w, errs in by_w.items()]
    for _, w, errs in rows:
        for s in SECTIONS:
            together[w][s] += errs[s]
    for subject, w, errs in [*rows, *(("all folds", w, together[w]) for w in WEIGHTS if together[w][SECTIONS[0]])]:
        n, sec, signed, absolute = _stats(errs)
        out.append(f"| {subject} | {w} | {n} | " + " | ".join(f"{sec[s]:+.2f}" for s in SECTIONS)
                   + f" | {signed:+.2f} | {absolute:.2f} |")
    return out


def fold_table(records: dict[str, dict], codes: dict[str, dict[str, dict]]) -> list[str]:
    out = ["| held out | steps | minutes | trained on | in-sample codebook use | held-out codebook use "
           "(shipped -> fold) | held-out perplexity (shipped -> fold) | held-out height-head error, mm "
           "(shipped -> fold) | calibration (training subjects): scale, offset mm | its mean section error "
           "before -> after (mm) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for subject, rec in records.items():
        v, c = rec["validation"], codes[subject]
        cal = rec["calibration"]
        vertebrae = rec["trained_on"].rsplit(";", 1)[-1].strip()
        out.append(
            f"| {subject} | {rec['steps']} | {rec['minutes']} | {vertebrae} | {v.get('codebook_utilisation', 0):.0%} | "
            f"{c['shipped']['codebook_utilisation']:.0%} -> {c['fold network']['codebook_utilisation']:.0%} | "
            f"{c['shipped']['codebook_perplexity']:.1f} -> {c['fold network']['codebook_perplexity']:.1f} | "
            f"{c['shipped']['val_height_error_mm']:.2f} -> {c['fold network']['val_height_error_mm']:.2f} | "
            + (f"{cal['scale']:.3f}, {cal['offset_mm']:+.2f} | {cal['mean_section_error_mm_before']:+.2f} -> "
               f"{cal['mean_section_error_mm_after']:+.2f} |" if cal else "identity | - |"))
    return out


def phantom_table(errors: dict[str, list[float]], seeds: list[int]) -> list[str]:
    out = [f"Phantom cost (gan_domain.py's \"phantom as trained\": unfractured T10-L4, seeds {seeds[0]}..{seeds[-1]}):",
           "", "| weights | vertebrae | mean signed (mm) | mean absolute (mm) |", "|---|---|---|---|"]
    for name, e in errors.items():
        a = np.asarray(e)
        out.append(f"| {name} | {a.size // 3} | {a.mean():+.2f} | {np.abs(a).mean():.2f} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None,
                        help="training time limit per fold (default: the recipe's time_limit_min)")
    parser.add_argument("--subjects", nargs="+", default=list(SUBJECTS), choices=SUBJECTS, help="held-out subjects")
    parser.add_argument("--recipe", type=Path, default=ROOT / "pipelines" / "synthesizer_real.yaml")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder (../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--phantom-studies", type=int, default=3)
    parser.add_argument("--phantom-seed", type=int, default=5600)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for scoring (training: the recipe's)")
    parser.add_argument("--score-only", action="store_true", help="score the folds already trained; train none")
    args = parser.parse_args()
    import torch

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if not (args.data / "real" / "verse2019_subset").is_dir():
        print(f"gan_real_loso: {args.data}/real/verse2019_subset is absent (the shared real data lives in "
              "../shared/data next to the repository)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    start = args.out / "start.safetensors"
    if not start.is_file():
        shutil.copyfile(DEFAULT_WEIGHTS, start)
    t_all = time.perf_counter()
    records, per_fold, codes = {}, {}, {}
    paths: dict[str, str] = {"shipped": str(DEFAULT_WEIGHTS)}
    if args.minutes is None:
        args.minutes = load_synthesizer_config(args.recipe).time_limit_min
    for subject in args.subjects:
        cfg = fold_config(args.recipe, subject, args.data, args.out, args.minutes)
        if args.score_only and not (Path(cfg.output).parent / "fold.json").is_file():
            print(f"  {subject}: not trained yet; skipped (--score-only)", file=sys.stderr)
            continue
        print(f"  {subject}: training ({args.minutes:g} min limit) ...", file=sys.stderr, flush=True)
        records[subject] = train_fold(cfg)
        torch.set_num_threads(max(1, args.threads))
        fold_paths = weights_paths(Path(cfg.output).parent)
        scores = Path(cfg.output).parent / "scores.json"  # kept: a rerun prints without scoring again
        if not scores.is_file():
            print(f"  {subject}: scoring ...", file=sys.stderr, flush=True)
            scores.write_text(json.dumps(held_out_scores(subject, args.data, fold_paths)))
        per_fold[subject], codes[subject] = json.loads(scores.read_text())
        for w, errs in per_fold[subject].items():
            n, _, signed, absolute = _stats(errs)
            print(f"  {subject} {w}: {n} vertebrae, signed {signed:+.2f}, absolute {absolute:.2f} mm",
                  file=sys.stderr, flush=True)
        paths.update({f"{subject} {k}": v for k, v in fold_paths.items() if k != "shipped"})
    if not records:
        print("gan_real_loso: no fold to score", file=sys.stderr)
        return 1
    print("  phantom cost ...", file=sys.stderr, flush=True)
    seeds = list(range(args.phantom_seed, args.phantom_seed + args.phantom_studies))
    phantom = {}
    for name, path in paths.items():  # each weights' phantom errors kept beside them, by seeds
        kept = Path(path).with_suffix(f".phantom{seeds[0]}-{seeds[-1]}.json")
        if kept.is_file():
            phantom[name] = json.loads(kept.read_text())
    todo = {name: path for name, path in paths.items() if name not in phantom}
    for name, errors in (phantom_errors(todo, seeds) if todo else {}).items():
        if name != "shipped":  # never written into the package
            Path(paths[name]).with_suffix(f".phantom{seeds[0]}-{seeds[-1]}.json").write_text(json.dumps(errors))
        phantom[name] = errors
    phantom = {name: phantom[name] for name in paths}

    print(f"## Leave-one-subject-out fine-tuning on real CT ({args.recipe.name}, {args.minutes:g} min per fold)\n")
    print("Folds (in-sample = the trainer's validation on its training subjects; held-out = 96 slices of the held-out "
          "subject's expert-normal vertebrae):\n")
    print("\n".join(fold_table(records, codes)))
    print("\nRaw GAN (no guard) pseudo-healthy minus measured section height on the held-out subject's expert-normal "
          "vertebrae (mm; \"fold network\": identity calibration, \"fold calibrated\": calibrated on the training "
          "subjects):\n")
    print("\n".join(height_table(per_fold)))
    print()
    print("\n".join(phantom_table(phantom, seeds)))
    print(f"\n(wall time {(time.perf_counter() - t_all) / 60:.0f} min; torch threads {torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
