"""How segmentation, labels and grades from the CT alone hold when the same real CTs come on another grid.

    .venv/bin/python benchmarks/acquisition_ct.py [--folds build/segmenter_loso] [--data ../shared/data]

The companion of ``acquisition.py`` (which re-grids the experts' masks) for ``healthivert run
--ct``: each VerSe CT at hand (``real/verse2019_subset``) and its expert mask are re-gridded
with SimpleITK over the CT's own box, in its own directions (turned about its centre where the
variant says so) or onto the world's axes: the CT linearly, the mask by nearest neighbour. A
thick slice is an average over its thickness, not a sample: before the 3 and 5 mm variants the
CT is smoothed along the slice axis by a Gaussian whose full width at half maximum is the
slice thickness. A turned box's corners, and the wedges around an oblique scan put onto the
world's axes, fall outside the scan and read -1024 HU, as a reconstruction's outside does.

Each CT is segmented by the weights that never saw its subject (``--folds``: the folds of
``segmenter_loso.py``, ``<folds>/<subject>/weights.safetensors``; the shipped weights, trained
on all three, only with ``--shipped``) and graded with the default prior + SVM. Prints, per
variant: bone Dice, mean Dice per vertebra (each expert vertebra against the predicted one
overlapping it most), labels right, the anchors used; fractures found, normals kept and not
graded against the experts' grades. Then the TotalSegmentator example, a whole scan (evaluation
only), on the same grids with the shipped weights. The data folder is read in place.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import load_ct, load_mask
from healthivert.io.volume import Volume, empty_sitk_image
from healthivert.pipeline import analyse_study, grade_records
from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported: benchmarks/ beside it
from acquisition import SUBJECTS, detection_cells, resample_onto, subset_truth  # noqa: E402  (benchmarks/acquisition.py)
from segmentation import bone_dice, overlap_dice, same_label_dice  # noqa: E402  (benchmarks/segmentation.py)

ROOT = Path(__file__).resolve().parents[1]
FWHM_TO_SIGMA = 1.0 / (2.0 * np.sqrt(2.0 * np.log(2.0)))


#: variant -> (turn about the grid's first and second axes in degrees, voxel mm along its axis
#: nearest to superior, onto the world's axes instead of the CT's own)
VARIANTS = {
    "as given": None,
    "1 mm iso": (0.0, 0.0, 1.0, False),
    "onto the world's axes, 1 mm": (0.0, 0.0, 1.0, True),
    "turned 12 degrees": (12.0, 6.0, 1.0, False),
    "12 degrees about LR only": (12.0, 0.0, 1.0, False),
    "12 degrees about AP only (sideways)": (0.0, 12.0, 1.0, False),
    "turned 25 degrees": (25.0, 12.5, 1.0, False),
    "3 mm slices": (0.0, 0.0, 3.0, False),
    "5 mm slices": (0.0, 0.0, 5.0, False),
}


def new_grid(volume: Volume, turn_a: float, turn_b: float, si_mm: float, world_axes: bool) -> tuple[sitk.Image, int]:
    """An empty grid over ``volume``'s box (1 mm voxels, ``si_mm`` along the axis nearest to
    superior) and that axis: in the CT's own directions turned by ``turn_a`` / ``turn_b``
    degrees about its first two axes around the box's centre, or (``world_axes``) the world's
    axes around the whole box, as a viewer that exports an oblique scan resampled does."""
    spacing = np.asarray(volume.spacing_mm, float)
    n = np.array(volume.shape) - 1
    centre = volume.voxel_to_world(n / 2)
    if world_axes:
        corners = np.array([[a, b, c] for a in (0, n[0]) for b in (0, n[1]) for c in (0, n[2])], float)
        rot, half = np.eye(3), np.abs(volume.voxel_to_world(corners) - centre).max(axis=0)
    else:
        turn = sitk.Euler3DTransform()
        turn.SetRotation(np.radians(turn_a), np.radians(turn_b), 0.0)
        rot = volume.affine[:3, :3] / spacing @ np.array(turn.GetMatrix()).reshape(3, 3)
        half = n * spacing / 2
    axis = int(np.argmax(np.abs(rot[2])))  # the grid axis nearest to superior
    step = np.ones(3)
    step[axis] = si_mm
    affine = np.eye(4)
    affine[:3, :3] = rot * step
    affine[:3, 3] = centre - rot @ half
    return empty_sitk_image(tuple(np.floor(2 * half / step).astype(int) + 1), affine, sitk.sitkFloat32), axis


def thick_slices(ct: Volume, axis: int, si_mm: float) -> Volume:
    """``ct`` averaged along its array ``axis`` over slices ``si_mm`` thick (a Gaussian slice profile)."""
    sigma = si_mm * FWHM_TO_SIGMA / float(ct.spacing_mm[axis])
    return ct.with_array(ndimage.gaussian_filter1d(ct.array.astype(np.float32), sigma, axis=axis))


def variant(ct: Volume, mask: Volume, spec: tuple | None) -> tuple[Volume, Volume]:
    """The CT and its expert mask on the variant's grid (as given for None)."""
    if spec is None:
        return ct, mask
    reference, axis = new_grid(ct, *spec)
    si_mm = spec[2]
    source = thick_slices(ct, axis, si_mm) if si_mm > float(ct.spacing_mm[axis]) else ct
    return resample_onto(source, reference, linear=True), resample_onto(mask, reference)


def score(ct: Volume, truth: Volume, weights: Path) -> dict:
    """Segmentation and grades of one CT from the CT alone, against its expert mask."""
    model, net, _ = load_weights(weights)
    seg = segment_ct(ct, model, net)
    per = overlap_dice(seg.mask.array, truth.array)
    analysis = analyse_study(seg.mask, centroids_from_mask(seg.mask), ct, guessed=set(seg.guessed),
                             doubtful=set(seg.doubtful))
    grade_records(analysis, get_grader("svm"))
    return {"bone": bone_dice(seg.mask.array, truth.array), "per": [d for d, _ in per.values()],
            "right": sum(got == label for label, (_, got) in per.items()), "labels": len(per),
            "anchor": seg.anchor, "grades": {r.label: r.genant_grade for r in analysis.records}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--folds", type=Path, default=ROOT / "build" / "segmenter_loso")
    parser.add_argument("--shipped", action="store_true", help="the shipped weights (they saw all three subjects)")
    args = parser.parse_args()
    tree = args.data / "real" / "verse2019_subset"
    if not tree.is_dir():
        print(f"no real data at {tree}: nothing to measure", file=sys.stderr)
        return 1
    weights = {s: DEFAULT_WEIGHTS if args.shipped else args.folds / s / "weights.safetensors" for s in SUBJECTS}
    missing = [str(w) for w in weights.values() if not Path(w).is_file()]
    if missing:
        print(f"no fold weights: {', '.join(missing)} (run benchmarks/segmenter_loso.py, or --shipped)",
              file=sys.stderr)
        return 1
    truth = subset_truth()
    cases = {s: (load_ct(tree / "rawdata" / s / f"{s}_ct.nii.gz"),
                 load_mask(tree / "derivatives" / s / f"{s}_seg-vert_msk.nii.gz")) for s in SUBJECTS}
    whose = "the shipped weights (trained on all three)" if args.shipped else "each subject's held-out fold"
    print(f"## The CTs of {', '.join(SUBJECTS)} on other grids, from the CT alone ({whose}; prior + svm, "
          f"{len(truth)} expert-graded vertebrae)\n")
    print("| grid | bone Dice (007 / 008 / 014) | mean Dice per vertebra | labels right | anchors | "
          "fractures found | normals kept | not graded |")
    print("|---|---|---|---|---|---|---|---|")
    for name, spec in VARIANTS.items():
        print(f"  {name} ...", file=sys.stderr)
        scores = {s: score(*variant(ct, mask, spec), weights[s]) for s, (ct, mask) in cases.items()}
        per = [d for sc in scores.values() for d in sc["per"]]
        bone = " / ".join(f"{sc['bone']:.3f}" for sc in scores.values())
        right = ", ".join(f"{sc['right']}/{sc['labels']}" for sc in scores.values())
        anchors = "; ".join(sc["anchor"] for sc in scores.values())
        grades = {s: sc["grades"] for s, sc in scores.items()}
        print(f"| {name} | {bone} | {np.mean(per):.3f} | {right} | {anchors} | {detection_cells(truth, grades)} |",
              flush=True)
    print(f"\n{totalseg_table(args.data / 'real' / 'totalseg_example')}")
    return 0


def totalseg_table(folder: Path) -> str:
    """The TotalSegmentator example (a whole 3 mm scan, evaluation only) on the same grids, with
    the shipped weights (they never saw it): mean Dice T12-L5 against TotalSegmentator's mask."""
    if not folder.is_dir():
        return f"totalseg_example: {folder} absent, skipped"
    ct, ref = load_ct(folder / "ct.nii.gz"), load_mask(folder / "vertebrae_totalsegmentator.nii.gz")
    model, net, _ = load_weights(DEFAULT_WEIGHTS)
    rows = ["The TotalSegmentator example (a whole 3 mm scan; shipped weights; T12-L5 against "
            "TotalSegmentator's mask):", "", "| grid | mean Dice T12-L5 (same label) | labels right | anchor |",
            "|---|---|---|---|"]
    for name, spec in VARIANTS.items():
        print(f"  totalseg_example, {name} ...", file=sys.stderr)
        image, truth = variant(ct, ref, spec)
        seg = segment_ct(image, model, net)
        scores = same_label_dice(seg.mask.array, truth.array, range(19, 25))
        right = sum(got == label for label, (_, got) in scores.items())
        rows.append(f"| {name} | {np.mean([d for d, _ in scores.values()]):.3f} | {right}/6 | {seg.anchor} |")
    return "\n".join(rows)


if __name__ == "__main__":
    raise SystemExit(main())
