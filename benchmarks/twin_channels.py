"""Which input channel carries a fracture into the GAN's predicted height? Twin phantoms.

    .venv/bin/python benchmarks/twin_channels.py [--seed 5400] [--weights W]

For the grade-3 twin pairs of ``benchmarks/twins.py`` (wedge, biconcave, crush), the middle
sagittal and coronal slice of the fractured vertebra and of its intact twin (the slice at the
same mm) go through the GAN (the shipped weights unless ``--weights``); then the fractured
input with one channel taken from the twin: the HGAM heat map, or the context CT. Prints a
markdown table of the network's predicted slice height (mm, before SHRM and calibration) and
the slices' true heights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.synthesis.gan.canvas import VIEWS, VertebraStack, make_sample
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan

sys.path.insert(0, str(Path(__file__).resolve().parent))
from twins import twin_plan  # noqa: E402  (the same pairs as the twin benchmark)

CT, ATTENTION = 0, 4  # the generator's input channels (GANModel.inputs)


def fractured_stack(seed: int, spec, intact: bool) -> VertebraStack:
    study = make_phantom(PhantomConfig(fractures=(spec,), deformity_rate=0.0, intact=intact), seed)
    (truth,) = [v for v in study.truth["vertebrae"] if v["name"] == spec.vertebra]
    _, vertebrae = straighten_vertebrae(study.mask, centroids_from_mask(study.mask), study.ct)
    (v,) = [v for v in vertebrae if v.label == truth["label"]]
    return VertebraStack.from_vertebra(v)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5400)
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    args = parser.parse_args()
    model, _ = load_gan(args.weights)
    print("| pair | view | true: fractured / twin | predicted: fractured / twin | fractured with the twin's "
          "HGAM map | fractured with the twin's context CT |", "|---|---|---|---|---|---|", sep="\n")
    for seed, spec in [p for p in twin_plan(args.seed) if p[1].grade == 3]:
        f, w = (fractured_stack(seed, spec, intact) for intact in (False, True))
        for view in VIEWS:
            idx = f.slice_indices(view)
            i = int(idx[len(idx) // 2])
            a, b = make_sample(f, view, i), make_sample(w, view, w.index_at(view, f.across_mm(view)[i]))
            xa, xb = model.inputs([a])["input"], model.inputs([b])["input"]
            heights = []
            with torch.no_grad():
                for channel in (None, "twin", ATTENTION, CT):
                    x = xb if channel == "twin" else xa.clone()
                    if isinstance(channel, int):
                        x[:, channel] = xb[:, channel]
                    heights.append(float(model.generator(x)["height"][0]))
            print(f"| {spec.morphology} {spec.vertebra} (seed {seed}) | {view} | {a.height_mm:.1f} / {b.height_mm:.1f} "
                  f"| {heights[0]:.2f} / {heights[1]:.2f} | {heights[2]:.2f} | {heights[3]:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
