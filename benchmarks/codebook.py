"""Codebook use of the GAN's bottleneck: SimVQ against plain VQ, same data, steps and seed.

    .venv/bin/python benchmarks/codebook.py [--steps 400] [--threads 1]

Trains the HealthiVert-GAN generator twice with the shipped recipe (pipelines/synthesizer.yaml:
the same cached phantom cohort, batch, losses and seed), once with each quantiser; HGAM is
left out of both (the same for both, and faster). Prints a markdown table: codebook
utilisation and perplexity on the held-out validation slices, band PSNR and target Dice,
then the shipped model's own figures from its card.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan
from healthivert.training.synthesizer import load_synthesizer_config, train_synthesizer

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    base = load_synthesizer_config(ROOT / "pipelines" / "synthesizer.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("simvq", "vq"):
            cache = Path(base.workdir) / "cache"  # the shipped recipe's cohort, straightened once
            work = Path(tmp) / kind
            cache.mkdir(parents=True, exist_ok=True)
            work.mkdir()
            (work / "cache").symlink_to(cache.resolve(), target_is_directory=True)
            cfg = replace(base, steps=args.steps, eval_every=args.steps, checkpoint_every=args.steps,
                          use_attention=False, classifier_steps=0, threads=args.threads, workdir=str(work),
                          output=str(work / "g.safetensors"), network=replace(base.network, vq_kind=kind))
            t = time.time()
            final = train_synthesizer(cfg)
            rows.append((kind, final, time.time() - t))
            print(f"  {kind} done", file=sys.stderr)
    n = base.network
    print(f"GAN generator, {args.steps} steps, batch {base.batch}, codebook {n.codebook_size} x {n.code_dim}, "
          f"seed {base.seed}, phantom cohort of pipelines/synthesizer.yaml, "
          f"CPU ({args.threads} thread{'s' if args.threads > 1 else ''}):\n")
    print("| quantiser | codebook utilisation | perplexity | band PSNR (dB) | target Dice | train s | target |")
    print("|---|---|---|---|---|---|---|")
    for kind, f, seconds in rows:
        print(f"| {kind} | {100 * f['codebook_utilisation']:.1f} % | {f['codebook_perplexity']:.1f} | "
              f"{f['val_psnr_band_db']:.1f} | {f['val_dice_target']:.3f} | {seconds:.0f} | "
              f"{'>= 90 %' if kind == 'simvq' else '-'} |")
    if DEFAULT_WEIGHTS.is_file():
        _, card = load_gan(DEFAULT_WEIGHTS)
        v = card["validation"]
        print(f"\nshipped model ({card['steps']} steps, SimVQ, HGAM on): codebook utilisation "
              f"{100 * v['codebook_utilisation']:.1f} %, perplexity {v['codebook_perplexity']:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
