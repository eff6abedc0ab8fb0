"""Does the canvas's outer context tell the GAN the body's height? Fill rows at the crop's end.

    .venv/bin/python benchmarks/crop_fill.py [--studies 10] [--weights W] [--slices 120]

The straightened crop reaches 40 mm from the vertebra's centroid. The canvas packs 28 rows of
context against each side of the 40 mm band, so a tall body, whose endplates lie nearer the
crop's ends, leaves fewer real rows beyond them and the outer canvas rows run into fill. On the
healthy vertebrae of the shipped GAN's training cohort (phantom seeds 7000.., T6-L5, the cache
of pipelines/synthesizer.yaml; built when absent, about 16 s a study) it prints markdown tables:
1. how many central slices have fill within k rows of the band, and the correlation between the
   body's height in the slice and the number of real rows left beyond its nearer endplate;
2. for the GAN weights given (the shipped ones by default), its predicted slice height
   (mm, before SHRM and calibration) with the canvas shown as trained and with only 24 mm of
   context beside the band (the outer rows blanked as fill), over a sample of the slices. A
   network that reads the fill moves its heights when they are blanked.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from healthivert.synthesis.gan.canvas import BAND_TOP, VIEWS, body_rows, make_sample
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan
from healthivert.training.synthesizer import load_synthesizer_config, phantom_cohort

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = (16, 20, 24, BAND_TOP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=10)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--slices", type=int, default=120, help="slices sampled for the GAN table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_synthesizer_config(ROOT / "pipelines" / "synthesizer.yaml")
    samples, room, heights = [], [], []
    for v in phantom_cohort(range(cfg.train_seed, cfg.train_seed + args.studies), cfg):
        if v.grade:
            continue
        for view in VIEWS:
            for i in v.stack.slice_indices(view):
                ct, body, _, _ = v.stack.slice(view, int(i))
                top, bottom, height = body_rows(body)
                room.append(min(top, len(ct) - 1 - bottom))  # real rows beyond the nearer endplate
                heights.append(height)
                samples.append((v.stack, view, int(i)))
    room, heights = np.array(room), np.array(heights)
    print(f"{len(room)} central slices of the healthy vertebrae of {args.studies} phantom studies "
          f"(seeds {cfg.train_seed}..{cfg.train_seed + args.studies - 1}); correlation of slice height with "
          f"the real rows beyond the nearer endplate: r = {np.corrcoef(heights, room)[0, 1]:.2f}\n")
    print("| context shown beside the band (mm) | slices with fill in it |", "|---|---|", sep="\n")
    for k in CONTEXTS:
        print(f"| {k}{' (whole canvas)' if k == BAND_TOP else ''} | {100 * np.mean(room < k):.1f} % |")

    model, _ = load_gan(args.weights)
    pick = np.random.default_rng(0).choice(len(samples), size=min(args.slices, len(samples)), replace=False)
    chosen = [make_sample(*samples[j]) for j in pick]
    trained_mm = model.config.context_mm

    def heights_shown(context_mm: int | None) -> np.ndarray:
        model.config = replace(model.config, context_mm=context_mm)  # only what the input shows
        with torch.no_grad():
            return np.concatenate([model.generator(model.inputs(chosen[b:b + 32])["input"])["height"].numpy()
                                   for b in range(0, len(chosen), 32)])

    trained, cut = heights_shown(trained_mm), heights_shown(24)
    true = np.array([s.height_mm for s in chosen])
    end_in_view = np.array([room[j] < BAND_TOP for j in pick])
    shown = "the whole canvas" if trained_mm is None else f"{trained_mm} mm"
    print(f"\n{Path(args.weights).name} (trained showing {shown}), {len(chosen)} slices:\n")
    print("| slices | n | true height (mm) | predicted as trained | predicted, 24 mm shown | change (mm) |",
          "|---|---|---|---|---|---|", sep="\n")
    for name, m in (("all", np.ones(len(chosen), bool)), ("crop end within 28 rows", end_in_view),
                    ("crop end beyond 28 rows", ~end_in_view)):
        if m.any():
            print(f"| {name} | {int(m.sum())} | {true[m].mean():.2f} | {trained[m].mean():.2f} | {cut[m].mean():.2f} "
                  f"| {(cut[m] - trained[m]).mean():+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
