"""CPU time of the HealthiVert-GAN per vertebra (issue: CPU inference <= 3 s per vertebra).

    .venv/bin/python benchmarks/gan_speed.py [--threads 2] [--repeats 2]

On the real CT ../shared/data/real/totalseg_example (TotalSegmentator's mask): every measurable
vertebra is straightened once, then the shipped GAN restores it (``restore_heights``: its
sagittal and coronal windows, attention maps included) ``--repeats`` times. Prints one row per
vertebra (windows, best and median seconds) and the machine's load average before and after,
since a shared machine's timings are not a quiet one's.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.labels import VERSE_NAMES
from healthivert.pipeline import load_inputs
from healthivert.synthesis.gan.canvas import VIEWS, VertebraStack
from healthivert.synthesis.gan.infer import restore_heights
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan

CASE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "totalseg_example"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if not CASE.is_dir():
        print(f"{CASE}: not found (the shared real data is needed)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    inputs = load_inputs(CASE / "vertebrae_totalsegmentator.nii.gz", CASE / "ct.nii.gz", None)
    _, vertebrae = straighten_vertebrae(inputs.mask, inputs.centroids, inputs.ct)
    model, _ = load_gan(DEFAULT_WEIGHTS, device="cpu")
    load_before = os.getloadavg()[0]
    print("| vertebra | windows | best (s) | median (s) |\n|---|---|---|---|")
    every = []
    for v in (v for v in vertebrae if v.body.any()):
        stack = VertebraStack.from_vertebra(v)
        windows = sum(len(stack.slice_indices(view)) for view in VIEWS)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            restore_heights(stack, model)
            times.append(time.perf_counter() - start)
        every += times
        name = VERSE_NAMES.get(v.label, v.label)
        print(f"| {name} | {windows} | {min(times):.2f} | {statistics.median(times):.2f} |")
    print(f"\nall: median {statistics.median(every):.2f} s per vertebra (target <= 3 s); torch threads "
          f"{args.threads}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after")
    return 0


if __name__ == "__main__":
    sys.exit(main())
