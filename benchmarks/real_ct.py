"""Pseudo-healthy heights on a real CT: the prior and the HealthiVert-GAN against the real bodies.

    .venv/bin/python benchmarks/real_ct.py [--data ../shared/data/real/totalseg_example]
        [--gan-weights OTHER.safetensors ...]

The real CT of ``totalseg_example`` (3 mm isotropic, T11-S1) with TotalSegmentator's vertebra
mask. No grade is known for it; its graded vertebrae (L1-L5: T11 and T12 are cut by the field
of view) show no fracture, and every synthesizer and grader here calls them grade 0. So the
real body stands in for its healthy self, and the signed error of the pseudo-healthy section
heights against the real ones (mm; positive = too tall) tells how the synthesizers, trained on
phantoms only, transfer to a real CT. Prints a markdown table per vertebra and one summary
(mean signed and mean absolute error per section). Evaluation only: never trained or tuned on.
``--gan-weights`` adds rows for other GAN weights files (e.g. an earlier phase).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from healthivert.errors import InputError
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import check_overlap, load_ct, load_mask
from healthivert.labels import VERSE_NAMES
from healthivert.measurement.heights import measure_vertebra
from healthivert.sections import SECTIONS
from healthivert.synthesis import get_synthesizer
from healthivert.synthesis.gan.infer import synthesize_gan
from healthivert.synthesis.gan.model import load_gan

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "real" / "totalseg_example"


def synthesizers(extra_weights: list[Path]) -> dict[str, object]:
    """Name -> callable(vertebrae) -> {label: PseudoHealthy}: prior, shipped GAN, extra GANs."""
    out = {"prior": get_synthesizer("prior"), "gan (shipped)": get_synthesizer("gan")}
    for w in extra_weights:
        model, _ = load_gan(w)
        out[f"gan ({w.name})"] = lambda vertebrae, model=model: synthesize_gan(vertebrae, model)
    return out


def heights(data: Path, extra_weights: list[Path]) -> tuple[dict[str, dict[str, float]], dict[str, dict]]:
    """Real section heights per vertebra name, and each synthesizer's pseudo-healthy ones (mm)."""
    ct = load_ct(data / "ct.nii.gz")
    mask = load_mask(data / "vertebrae_totalsegmentator.nii.gz")
    check_overlap(ct, mask)
    _, vertebrae = straighten_vertebrae(mask, centroids_from_mask(mask), ct)
    whole = [v for v in vertebrae if not v.cut_by_fov]
    pseudo, measured = {}, {}
    for name, synth in synthesizers(extra_weights).items():
        healthy = synth(vertebrae)
        measured = {VERSE_NAMES[v.label]: measure_vertebra(v, healthy[v.label]) for v in whole}
        pseudo[name] = {vert: m.pseudo_healthy_mm for vert, m in measured.items()}
    return {vert: m.original_mm for vert, m in measured.items()}, pseudo


def tables(real: dict, pseudo: dict) -> str:
    names = list(pseudo)
    out = ["Section heights a / m / p (mm), real and pseudo-healthy:", "",
           "| vertebra | real | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    fmt = lambda h: " / ".join(f"{h[s]:.1f}" for s in SECTIONS)  # noqa: E731
    for vert, h in real.items():
        out.append(f"| {vert} | {fmt(h)} | " + " | ".join(fmt(pseudo[n][vert]) for n in names) + " |")
    out += ["", f"Pseudo-healthy minus real ({len(real)} unfractured vertebrae; mm):", "",
            "| synthesizer | mean a / m / p | mean absolute a / m / p | mean over sections |", "|---|---|---|---|"]
    for n in names:
        err = np.array([[pseudo[n][v][s] - real[v][s] for s in SECTIONS] for v in real])
        out.append(f"| {n} | {' / '.join(f'{e:+.2f}' for e in err.mean(0))} | "
                   f"{' / '.join(f'{e:.2f}' for e in np.abs(err).mean(0))} | {err.mean():+.2f} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--gan-weights", type=Path, nargs="*", default=[])
    args = parser.parse_args()
    if not (args.data / "ct.nii.gz").is_file():
        print(f"real_ct: {args.data} holds no ct.nii.gz (the shared real data is absent)", file=sys.stderr)
        return 2
    t = time.time()
    try:
        real, pseudo = heights(args.data, args.gan_weights)
    except InputError as e:
        print(f"real_ct: {e}", file=sys.stderr)
        return 2
    print(tables(real, pseudo))
    print(f"\n({time.time() - t:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
