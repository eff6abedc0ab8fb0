"""Do two vertebra masks of one subject show the same spine? Body size level by level.

    .venv/bin/python benchmarks/mask_agreement.py [--first A.nii.gz] [--second B.nii.gz]

Defaults: sub-verse007's 3 mm CT crop mask (``real/verse2019_subset``, whose vertebrae the
VerSe manifest grades) and the 1 mm mask of the same subject from another source
(``real/verse007``), whose rows ``real_verse.py`` scores with the same grades. Each mask is
straightened as ``healthivert run`` does; every whole body gives its left-right width,
antero-posterior depth and median column height (mm). A scan and a re-segmentation of it agree
in all three at the same labels; a labelling shifted by k levels agrees at offset k. The second
table gives, per offset, the mean absolute difference of the median heights over the levels
both masks hold whole: if no offset brings it near the widths' agreement, the two masks do not
show the same spine (a later scan, another subject) and one mask's grades do not apply to the
other.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from healthivert.errors import InputError
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.io.images import load_mask
from healthivert.labels import SPINE_ORDER, T13, VERSE_NAMES

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
FIRST = REAL / "verse2019_subset" / "derivatives" / "sub-verse007" / "sub-verse007_seg-vert_msk.nii.gz"
SECOND = REAL / "verse007" / "sub-verse007_seg-vert_msk.nii.gz"


def body_sizes(path: Path) -> dict[int, tuple[float, float, float]]:
    """{VerSe label: (width, depth, median column height)} in mm of every body the field of
    view leaves whole, in the body's straightened frame."""
    mask = load_mask(path)
    _, vertebrae = straighten_vertebrae(mask, centroids_from_mask(mask))
    out = {}
    for v in vertebrae:
        if v.cut_by_fov or not v.body.any():
            continue
        lr, ap = np.flatnonzero(v.body.any(axis=(1, 2))), np.flatnonzero(v.body.any(axis=(0, 2)))
        out[v.label] = ((lr[-1] - lr[0] + 1) * v.grid.spacing_mm[0], (ap[-1] - ap[0] + 1) * v.grid.spacing_mm[1],
                        float(np.median(v.heights_mm[v.heights_mm > 0])))
    return out


def offset_rows(first: dict, second: dict, offsets: range) -> list[str]:
    """Per level offset k (the second mask's label k levels below the first's), the levels
    paired and the mean absolute difference of width and of median height (mm)."""
    order = [lab for lab in sorted(SPINE_ORDER, key=SPINE_ORDER.get) if lab != T13]  # T12 and L1 adjacent
    rows = []
    for k in offsets:
        pairs = [(a, order[order.index(a) + k]) for a in first if 0 <= order.index(a) + k < len(order)]
        pairs = [(a, b) for a, b in pairs if b in second]
        if not pairs:
            continue
        width = np.mean([abs(first[a][0] - second[b][0]) for a, b in pairs])
        height = np.mean([abs(first[a][2] - second[b][2]) for a, b in pairs])
        rows.append(f"| {k:+d} | {len(pairs)} ({VERSE_NAMES[pairs[0][0]]}-{VERSE_NAMES[pairs[-1][0]]} as "
                    f"{VERSE_NAMES[pairs[0][1]]}-{VERSE_NAMES[pairs[-1][1]]}) | {width:.1f} | {height:.1f} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first", type=Path, default=FIRST)
    parser.add_argument("--second", type=Path, default=SECOND)
    args = parser.parse_args()
    for p in (args.first, args.second):
        if not p.is_file():
            print(f"error: no mask at {p} (the shared data folder is absent?)", file=sys.stderr)
            return 2
    try:
        first, second = body_sizes(args.first), body_sizes(args.second)
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"first: {args.first}\nsecond: {args.second}\n")
    print("| vertebra | first: width / depth / median height (mm) | second: width / depth / median height (mm) |")
    print("|---|---|---|")
    for label in sorted(set(first) | set(second), key=SPINE_ORDER.get):
        cells = [" / ".join(f"{x:.1f}" for x in m[label]) if label in m else "-" for m in (first, second)]
        print(f"| {VERSE_NAMES[label]} | {cells[0]} | {cells[1]} |")
    print("\n| offset (levels) | bodies paired | mean absolute width difference (mm) | "
          "mean absolute median-height difference (mm) |")
    print("|---|---|---|---|")
    print("\n".join(offset_rows(first, second, range(-2, 3))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
