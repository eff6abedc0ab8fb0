"""How grades and heights hold when the same expert masks come on another grid.

    .venv/bin/python benchmarks/acquisition.py [--data ../shared/data]

Real scans reach the tool on many grids: tilted or reformatted (a gantry tilt, an oblique
reconstruction), padded wide or cropped tight, with thick slices. The three expert-graded
VerSe masks at hand (``real/verse2019_subset``, 18 vertebrae, 3 fractures) are re-gridded
with SimpleITK (nearest neighbour, as a mask drawn on that grid would come) and run through
``pipeline.analyse_study`` with the default prior + SVM:

- ``1 mm iso, padded``: onto a 1 mm isotropic grid with 20 mm of background all round;
- ``turned 12 / 25 degrees``: the same grid turned about two axes (12 and 6, or 25 and 12.5
  degrees) around the mask's centre;
- ``3 / 5 mm slices``: the superior-inferior voxel size of that padded grid made 3 or 5 mm.

Prints, per variant: fractures found, normals kept and not graded against the experts'
grades; grades equal to those on the mask as given; and the largest change of any section
height from the mask as given (mm). The data folder is read in place; the script stops with a
message when it is absent.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from healthivert.evaluation import load_truth
from healthivert.grading import get_grader
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import load_mask
from healthivert.io.volume import Volume, empty_sitk_image, sitk_from_array, volume_from_sitk
from healthivert.labels import VERSE_NAMES
from healthivert.pipeline import analyse_study, grade_records
from healthivert.sections import SECTIONS

ROOT = Path(__file__).resolve().parents[1]
SUBJECTS = ("sub-verse007", "sub-verse008", "sub-verse014")
PAD_MM = 20.0
#: variant -> (turn about the first and second world axes in degrees, superior-inferior voxel mm)
VARIANTS = {
    "as given": None,
    "1 mm iso, padded": (0.0, 0.0, 1.0),
    "turned 12 degrees": (12.0, 6.0, 1.0),
    "turned 25 degrees": (25.0, 12.5, 1.0),
    "3 mm slices": (0.0, 0.0, 3.0),
    "5 mm slices": (0.0, 0.0, 5.0),
}


def regrid(mask: Volume, turn_a: float, turn_b: float, si_mm: float) -> Volume:
    """``mask`` on a grid turned by ``turn_a`` / ``turn_b`` degrees about the world's first two
    axes around the labels' centre, 1 mm voxels but ``si_mm`` along the (turned) third axis,
    covering the labels and ``PAD_MM`` around them (nearest neighbour)."""
    found = np.argwhere(mask.array > 0)
    lo, hi = found.min(axis=0), found.max(axis=0)
    corners = np.array([[a, b, c] for a in (lo[0], hi[0]) for b in (lo[1], hi[1]) for c in (lo[2], hi[2])], float)
    world = corners @ mask.affine[:3, :3].T + mask.affine[:3, 3]
    centre = world.mean(axis=0)
    turn = sitk.Euler3DTransform()
    turn.SetRotation(np.radians(turn_a), np.radians(turn_b), 0.0)
    rot = np.array(turn.GetMatrix()).reshape(3, 3)
    half = np.abs((world - centre) @ rot).max(axis=0) + PAD_MM
    spacing = np.array([1.0, 1.0, si_mm])
    size = np.ceil(2 * half / spacing).astype(int)
    affine = np.eye(4)
    affine[:3, :3] = rot * spacing
    affine[:3, 3] = centre - rot @ (half - spacing / 2)
    return resample_onto(mask, empty_sitk_image(tuple(size), affine, sitk.sitkUInt8))


def resample_onto(volume: Volume, reference: sitk.Image, linear: bool = False) -> Volume:
    """``volume`` resampled onto ``reference``: linearly for a CT (outside -1024 HU), by nearest
    neighbour for a mask (outside 0)."""
    pixel = sitk.sitkFloat32 if linear else sitk.sitkUInt8
    image = sitk_from_array(volume.array.astype(np.float32 if linear else np.uint8), volume.affine)
    out = sitk.Resample(image, reference, sitk.Transform(), sitk.sitkLinear if linear else sitk.sitkNearestNeighbor,
                        -1024.0 if linear else 0.0, pixel)
    return volume_from_sitk(out, keep_source=False)


def subset_truth() -> dict[tuple[str, int], int]:
    """(subject, VerSe label) -> the experts' grade, for ``SUBJECTS``."""
    return {(r.study_id, int(r.label)): int(r.truth_grade) for r in load_truth().itertuples()
            if r.study_id in SUBJECTS}


def detection_cells(truth: dict[tuple[str, int], int], grades: dict[str, dict[int, int | None]]) -> str:
    """Markdown cells "fractures found | normals kept | not graded" of ``grades`` (subject ->
    label -> grade, None or absent: not graded) against ``truth``."""
    found = kept = refused = 0
    for (subject, label), expert in truth.items():
        got = grades[subject].get(label)
        refused += got is None
        found += expert >= 1 and got is not None and got >= 1
        kept += expert == 0 and got == 0
    fractures = sum(g >= 1 for g in truth.values())
    return f"{found}/{fractures} | {kept}/{len(truth) - fractures} | {refused}/{len(truth)}"


def grade(mask: Volume) -> dict[int, tuple[int | None, dict[str, float]]]:
    """label -> (grade or None, section heights in mm) with the default prior + SVM."""
    analysis = analyse_study(mask, centroids_from_mask(mask))
    grade_records(analysis, get_grader("svm"))
    return {r.label: (r.genant_grade, {s: getattr(r.heights_mm.original, s) for s in SECTIONS} if r.heights_mm else {})
            for r in analysis.records}


def _g(grade: int | None) -> str:
    return "not graded" if grade is None else str(grade)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    tree = args.data / "real" / "verse2019_subset"
    if not tree.is_dir():
        print(f"no real data at {tree}: nothing to measure", file=sys.stderr)
        return 1
    truth = subset_truth()
    masks = {s: load_mask(tree / "derivatives" / s / f"{s}_seg-vert_msk.nii.gz") for s in SUBJECTS}
    results = {}
    for name, spec in VARIANTS.items():
        print(f"  {name} ...", file=sys.stderr)
        results[name] = {s: grade(m if spec is None else regrid(m, *spec)) for s, m in masks.items()}
    given = results["as given"]
    print(f"## The expert masks of {', '.join(SUBJECTS)} on other grids (prior + svm, "
          f"{len(truth)} expert-graded vertebrae)\n")
    print("| grid | fractures found | normals kept | not graded | grades as on the mask as given | "
          "largest section height change (mm) | grades changed (experts' grade: as given -> here) |")
    print("|---|---|---|---|---|---|---|")
    for name, by_subject in results.items():
        same, change, changed = 0, 0.0, []
        for (subject, label), expert in truth.items():
            got, heights = by_subject[subject].get(label, (None, {}))
            ref_grade, ref_heights = given[subject].get(label, (None, {}))
            same += got == ref_grade
            if got != ref_grade:
                changed.append(f"{subject} {VERSE_NAMES[label]} ({expert}: {_g(ref_grade)} -> {_g(got)})")
            if heights and ref_heights:
                change = max(change, max(abs(heights[s] - ref_heights[s]) for s in SECTIONS))
        grades = {s: {label: g for label, (g, _) in by.items()} for s, by in by_subject.items()}
        print(f"| {name} | {detection_cells(truth, grades)} | {same}/{len(truth)} | {change:.1f} | "
              f"{', '.join(changed) or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
