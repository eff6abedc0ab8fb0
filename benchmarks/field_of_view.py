"""Segmentation of real CTs whose field of view cuts the body, with and without the fill of the
air and padding far from the body (``healthivert.segmentation.field_of_view``).

    .venv/bin/python benchmarks/field_of_view.py [--verse-weights W]

Spine CTs are often reconstructed over a small field of view centred on the spine; outside it
the scanner writes a constant (-1024 HU here). The cases, built from the real CTs at hand:
- the TotalSegmentator example (evaluation only), everything beyond 90, 110 or 150 mm of the
  spine's axis set to -1024 HU (a 180-300 mm reconstruction circle), and uncut; scored against
  TotalSegmentator's mask on T12-L5 (mean Dice, labels right, anchor);
- the three VerSe crops placed in a 360 x 360 mm view padded with -1024 HU, and as they are;
  scored against the experts' masks (bone Dice, mean Dice per vertebra against the predicted
  vertebra overlapping it most, labels right at that overlap, anchor). ``--verse-weights`` takes
  a folder of leave-one-subject-out weights (``benchmarks/segmenter_loso.py --out``: each
  subject's ``<subject>/weights.safetensors``); without it the shipped weights are used, which
  were trained on these subjects.
Prints one markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from healthivert.io.images import load_ct, load_mask
from healthivert.io.volume import Volume
from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

sys.path.insert(0, str(Path(__file__).resolve().parent))
from segmentation import TOTALSEG, VERSE, bone_dice, overlap_dice, same_label_dice  # noqa: E402

PADDING_HU = -1024.0
CIRCLES_MM = (90.0, 110.0, 150.0)
VIEW_MM = 360.0


def cut_by_circle(ct: Volume, centre_ijk: np.ndarray, radius_mm: float) -> Volume:
    """``ct`` (RAS) with every voxel farther than ``radius_mm`` from the axis through
    ``centre_ijk`` along the third axis (S) set to the padding."""
    i, j = np.indices(ct.shape[:2])
    beyond = np.hypot((i - centre_ijk[0]) * ct.spacing_mm[0], (j - centre_ijk[1]) * ct.spacing_mm[1]) > radius_mm
    out = ct.array.copy()
    out[beyond] = PADDING_HU
    return Volume(out, ct.affine, ct.source)


def view_padding(volume: Volume, view_mm: float) -> list[int]:
    """Voxels to add on each side of the first two axes to centre ``volume`` in a view ``view_mm`` wide."""
    return [max(0, int(round((view_mm - n * s) / s / 2))) for n, s in zip(volume.shape[:2], volume.spacing_mm[:2])]


def padded_view(volume: Volume, pad: list[int], value: float) -> Volume:
    """``volume`` (RAS) with ``pad`` voxels of ``value`` added on each side of its first two axes."""
    array = np.pad(volume.array, ((pad[0], pad[0]), (pad[1], pad[1]), (0, 0)), constant_values=value)
    affine = volume.affine.copy()
    affine[:3, 3] -= affine[:3, :3] @ np.array([pad[0], pad[1], 0])
    return Volume(array.astype(volume.array.dtype), affine, None)


def totalseg_row(name: str, ct: Volume, truth: np.ndarray, model, cfg, fill: bool) -> str:
    seg = segment_ct(ct, model, cfg, fill_outside=fill)
    scores = same_label_dice(seg.mask.array, truth, range(19, 25))  # T12..L5
    right = sum(got == label for label, (_, got) in scores.items())
    mean = np.mean([d for d, _ in scores.values()])
    return f"| {name} | {'on' if fill else 'off'} | {mean:.3f} | - | {right} / 6 | {seg.anchor} |"


def verse_row(name: str, ct: Volume, truth: np.ndarray, model, cfg, fill: bool) -> str:
    seg = segment_ct(ct, model, cfg, fill_outside=fill)
    per = overlap_dice(seg.mask.array, truth)
    right = sum(got == label for label, (_, got) in per.items())
    mean = float(np.mean([d for d, _ in per.values()]))
    return (f"| {name} | {'on' if fill else 'off'} | {mean:.3f} | {bone_dice(seg.mask.array, truth):.3f} | "
            f"{right} / {len(per)} | {seg.anchor} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verse-weights", type=Path, help="folder of leave-one-subject-out weights per subject")
    args = parser.parse_args()
    shipped = load_weights(DEFAULT_WEIGHTS)
    lines = ["| case | fill | mean Dice per vertebra (T12-L5 for TotalSegmentator's) | bone Dice | labels right "
             "| anchor |", "|---|---|---|---|---|---|"]
    if (TOTALSEG / "ct.nii.gz").is_file():
        ct = load_ct(TOTALSEG / "ct.nii.gz")
        truth = load_mask(TOTALSEG / "vertebrae_totalsegmentator.nii.gz").array
        centre = np.argwhere(truth > 0).mean(axis=0)
        cases = [(f"totalseg_example, {2 * r:.0f} mm circle", cut_by_circle(ct, centre, r)) for r in CIRCLES_MM]
        for name, case in [*cases, ("totalseg_example, uncut", ct)]:
            for fill in (False, True):
                lines.append(totalseg_row(name, case, truth, *shipped[:2], fill))
                print(lines[-1], file=sys.stderr, flush=True)
    for subject in ("sub-verse007", "sub-verse008", "sub-verse014"):
        ct_path = VERSE / "rawdata" / subject / f"{subject}_ct.nii.gz"
        if not ct_path.is_file():
            continue
        weights = args.verse_weights / subject / "weights.safetensors" if args.verse_weights else DEFAULT_WEIGHTS
        model, cfg, _ = load_weights(weights)
        ct = load_ct(ct_path)
        truth = load_mask(VERSE / "derivatives" / subject / f"{subject}_seg-vert_msk.nii.gz")
        pad = view_padding(ct, VIEW_MM)
        padded, padded_truth = padded_view(ct, pad, PADDING_HU), padded_view(truth, pad, 0).array
        for name, case, ref in ((f"{subject} in a {VIEW_MM:.0f} mm view", padded, padded_truth),
                                (f"{subject} as cropped", ct, truth.array)):
            for fill in (False, True):
                lines.append(verse_row(name, case, ref, model, cfg, fill))
                print(lines[-1], file=sys.stderr, flush=True)
    print(f"VerSe weights: {args.verse_weights or 'shipped (trained on these subjects)'}\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
