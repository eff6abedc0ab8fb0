"""Does the tight crop of the real VerSe CTs make the GAN restore bodies short? Pad and see.

    .venv/bin/python benchmarks/gan_padding.py [--pad-mm 40] [--threads 1]

The re-shared VerSe crops end at the vertebra masks' bounding box, so the GAN sees out-of-scan
fill in front of and beside the bodies, which no training phantom had. Here each real CT
subject is run through the raw GAN twice: as given, and padded across the spine (the two axes
other than superior-inferior) by ``--pad-mm`` of soft tissue (40 HU, 20 HU noise; the mask
padded with background). If the crop were the cause, the padded run would restore the
expert-normal bodies closer to their measured height. Prints a markdown table of
pseudo-healthy minus measured section height (mm) on the expert-normal vertebrae.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import load_ct, load_mask
from healthivert.io.volume import Volume
from healthivert.pipeline import analyse_study
from healthivert.sections import SECTIONS
from healthivert.synthesis import get_synthesizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "verse2019_subset"
NORMAL = {"sub-verse007": [17, 18, 21, 22], "sub-verse008": [19, 20, 22, 23, 24],  # expert grade 0,
          "sub-verse014": [20, 21, 22, 23, 24]}  # measured (T9 of sub-verse007 is cut by the view)


def pad_across(v: Volume, pad_mm: float, fill: float, noise_hu: float, seed: int = 0) -> Volume:
    """``v`` padded by ``pad_mm`` on both sides of the two axes across the spine."""
    spacing = np.linalg.norm(v.affine[:3, :3], axis=0)
    si = int(np.argmax(np.abs(v.affine[2, :3]) / spacing))
    pad = [(0, 0) if k == si else (int(round(pad_mm / spacing[k])),) * 2 for k in range(3)]
    out = np.pad(v.array, pad, constant_values=fill)
    if noise_hu:
        grown = np.ones(out.shape, bool)
        grown[tuple(slice(p[0], out.shape[k] - p[1]) for k, p in enumerate(pad))] = False
        out = out.astype(np.float32)
        out[grown] += np.random.default_rng(seed).normal(0.0, noise_hu, int(grown.sum()))
    affine = v.affine.copy()
    affine[:3, 3] = v.affine[:3, :3] @ -np.array([p[0] for p in pad]) + v.affine[:3, 3]
    return Volume(out, affine, v.source)


def errors(ct: Volume, mask: Volume, labels: list[int], gan) -> list[float]:
    analysis = analyse_study(mask, centroids_from_mask(mask), ct, synthesizer="gan", synthesize=gan)
    return [m.pseudo_healthy_mm[s] - m.original_mm[s] for lab, m in analysis.measured.items() if lab in labels
            for s in SECTIONS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pad-mm", type=float, default=40.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gan-weights", default=None, help="GAN weights (default: shipped)")
    parser.add_argument("--no-pad", action="store_true", help="the CTs as given only")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, args.threads))
    if not DATA.is_dir():
        print(f"gan_padding: {DATA} is absent", file=sys.stderr)
        return 2
    gan = get_synthesizer("gan", weights=args.gan_weights)
    rows = ["| subject | vertebrae | as given: mean signed / absolute (mm) | padded: mean signed / absolute (mm) |",
            "|---|---|---|---|"]
    for subject, labels in NORMAL.items():
        ct = load_ct(DATA / "rawdata" / subject / f"{subject}_ct.nii.gz")
        mask = load_mask(DATA / "derivatives" / subject / f"{subject}_seg-vert_msk.nii.gz")
        given = np.array(errors(ct, mask, labels, gan))
        padded = given if args.no_pad else np.array(errors(pad_across(ct, args.pad_mm, 40.0, 20.0),
                                                           pad_across(mask, args.pad_mm, 0, 0), labels, gan))
        rows.append(f"| {subject} | {len(given) // 3} | {given.mean():+.2f} / {np.abs(given).mean():.2f} | "
                    f"{padded.mean():+.2f} / {np.abs(padded).mean():.2f} |")
        print(f"  {subject} done", file=sys.stderr, flush=True)
    print(f"Raw GAN on the expert-normal vertebrae, the CT as given and padded by {args.pad_mm:g} mm of soft "
          "tissue across the spine:\n")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
