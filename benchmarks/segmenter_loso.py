"""Leave-one-subject-out fine-tuning of the segmenter on the real VerSe subjects at hand.

    .venv/bin/python benchmarks/segmenter_loso.py [--config pipelines/segmenter_real.yaml]
        [--subjects sub-verse007 ...] [--out build/segmenter_loso] [--minutes 10] [--no-checks] [--grade]

For each held-out subject, the recipe (``source: mixed``) is run with that subject in
``exclude_subjects``: fine-tuned from the recipe's ``init_weights`` (the phantom-only weights;
refused when their card mentions VerSe, which would leak the held-out subject) on the other
subjects mixed with phantoms. The held-out CT is then segmented (``segment_ct``) with the
starting and the fine-tuned weights and scored against the experts' mask:

- bone Dice: any vertebra label against any vertebra label (labels not judged);
- per-vertebra Dice: each expert vertebra against the predicted vertebra that overlaps it
  most (labels judged separately, by ``benchmarks/segmentation.py`` and the identification
  rate), averaged over the subject's vertebrae.

With checks (default), each fold's weights are also scored as ``benchmarks/segmentation.py``
does on held-out phantoms (4 studies, seeds 6000..) and on the TotalSegmentator example
(evaluation only, never trained on). A fold whose weights exist is scored, not retrained
(delete its folder to retrain).

``--grade``: each held-out CT is also graded from the CT alone with its fold's weights and with
the starting weights (segmented, labelled, prior + SVM and prior + rule, as ``healthivert run
--ct`` does; ``benchmarks/real_verse.py --from-ct``), and the held-out subjects' grades are
scored together against the experts' (a mislabelled vertebra is scored against the grade of
the label it got). Prints markdown tables. Data: ``../shared/data/real``, next
to the repository; the script stops with a message when it is absent.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from healthivert.io.images import load_ct, load_mask
from healthivert.labels import VERSE_NAMES
from healthivert.segmentation import load_weights, segment_ct
from healthivert.training.segmenter import SegmenterTrainConfig, load_segmenter_config, train_segmenter

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: benchmarks/ beside it
from segmentation import annotated_bone_dice, bone_dice, overlap_dice, phantom_table, real_table  # noqa: E402  (benchmarks/segmentation.py)

ROOT = Path(__file__).resolve().parents[1]


class Score(NamedTuple):
    """One segmentation against its expert mask."""

    bone: float  # bone Dice (any vertebra label)
    per_vertebra: dict[int, float]  # expert label -> Dice of the prediction overlapping it most
    annotated: float  # bone Dice with the vertebrae the experts did not annotate left out


def score_subject(weights: Path, ct_path: Path, mask_path: Path) -> Score:
    """How ``weights`` segment one CT, against its expert mask."""
    model, net, _ = load_weights(weights)
    seg = segment_ct(load_ct(ct_path), model, net)
    truth = load_mask(mask_path).array
    per = overlap_dice(seg.mask.array, truth)
    return Score(bone_dice(seg.mask.array, truth), {label: d for label, (d, _) in per.items()},
                 annotated_bone_dice(seg.mask.array, truth))


def subject_files(root: Path, subject: str) -> tuple[Path, Path]:
    """(CT, expert mask) of a subject of a VerSe tree."""
    return (root / "rawdata" / subject / f"{subject}_ct.nii.gz",
            root / "derivatives" / subject / f"{subject}_seg-vert_msk.nii.gz")


def check_start(weights: Path) -> None:
    """Refuse starting weights that saw real VerSe data: a fold must not start from them."""
    _, _, card = load_weights(weights)
    if re.search(r"verse", card.get("trained_on", ""), re.IGNORECASE):
        sys.exit(f"{weights}: its card says it was trained on VerSe data; start leave-one-subject-out runs "
                 "from phantom-only weights (see the recipe's init_weights)")


def fold_config(base: SegmenterTrainConfig, held_out: str, out: Path, minutes: float | None) -> SegmenterTrainConfig:
    """The recipe with ``held_out`` excluded, its own work folder and output; the phantom
    cache shared between folds (``out/cache``, linked)."""
    work = out / held_out
    work.mkdir(parents=True, exist_ok=True)
    (out / "cache").mkdir(exist_ok=True)
    if not (work / "cache").exists():
        (work / "cache").symlink_to((out / "cache").resolve(), target_is_directory=True)
    limit = base.time_limit_min if minutes is None else minutes
    return replace(base, subjects=(), exclude_subjects=(*base.exclude_subjects, held_out), workdir=str(work),
                   output=str(work / "weights.safetensors"), time_limit_min=limit)


def domain_checks(weights: Path) -> str:
    """The phantom and TotalSegmentator figures of ``benchmarks/segmentation.py``."""
    model, net, _ = load_weights(weights)
    return f"{phantom_table(model, net, 4, 6000)}\n\n{real_table(model, net)}"


def table(rows: list[tuple[str, Score, Score]]) -> str:
    """Markdown: per subject, starting vs fine-tuned bone and per-vertebra Dice."""
    lines = ["| held-out subject | bone Dice start | bone Dice fine-tuned | fine-tuned, unannotated vertebrae "
             "left out | per-vertebra Dice start | per-vertebra Dice fine-tuned | per vertebra (fine-tuned) |",
             "|---|---|---|---|---|---|---|"]
    for subject, start, tuned in rows:
        each = ", ".join(f"{VERSE_NAMES[k]} {d:.2f}" for k, d in tuned.per_vertebra.items())
        lines.append(f"| {subject} | {start.bone:.3f} | {tuned.bone:.3f} | {tuned.annotated:.3f} | "
                     f"{np.mean(list(start.per_vertebra.values())):.3f} | "
                     f"{np.mean(list(tuned.per_vertebra.values())):.3f} | {each} |")
    return "\n".join(lines)


def graded_from_ct(weights: Path, case, rows: dict[str, list]) -> None:
    """Grade a ``real_verse.Case`` from its CT alone, segmented with ``weights``; its rows join
    ``rows`` (pipeline -> [(study id, record)])."""
    from real_verse import run_case  # benchmarks/real_verse.py

    for name, records in run_case(case, ["prior"], None, from_ct=True, segmenter=weights).items():
        rows.setdefault(name, []).extend((case.study_id, r) for r in records)


def grading_table(graded: dict[str, dict[str, list]], cases: list, out: Path) -> str:
    """Markdown: the held-out ``cases`` graded from their CTs, per starting / fine-tuned weights."""
    from real_verse import height_agreement_lines, score_table, truth_table, write_rows

    from healthivert.evaluation import evaluate, load_results

    truth = truth_table(cases)
    reports = {}
    for weights, rows in graded.items():
        folder = out / f"graded_{weights}"
        folder.mkdir(parents=True, exist_ok=True)
        for name, pipeline_rows in rows.items():
            key = f"{weights}: {name}"
            reports[key] = evaluate(load_results(write_rows(folder, name, pipeline_rows)), truth,
                                    results_source=key, truth_source="expert grades")
    lines = score_table(reports, {})
    for weights, rows in graded.items():
        if "prior + svm" in rows:
            lines += ["", f"Section heights on the masks segmented by the {weights} weights against those on "
                      "the experts' masks (prior):", "", *height_agreement_lines(cases, rows["prior + svm"])]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "pipelines" / "segmenter_real.yaml")
    parser.add_argument("--subjects", nargs="*", default=["sub-verse007", "sub-verse008", "sub-verse014"])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "segmenter_loso")
    parser.add_argument("--minutes", type=float, default=None, help="training time per fold (default: the recipe's)")
    parser.add_argument("--no-checks", action="store_true", help="skip the phantom and TotalSegmentator figures")
    parser.add_argument("--grade", action="store_true", help="also grade each held-out CT from the CT alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    base = load_segmenter_config(args.config)
    root = Path(base.verse_root)
    if not root.is_dir():
        sys.exit(f"{root}: the real VerSe subjects are absent; nothing to score")
    if base.threads:
        torch.set_num_threads(base.threads)
    start = Path(base.init_weights)
    check_start(start)
    rows, checks = [], []
    graded: dict[str, dict[str, list]] = {"start": {}, "fine-tuned": {}}
    if args.grade:
        from real_verse import DEFAULT_DATA, find_cases  # benchmarks/real_verse.py

        cases = {c.study_id: c for c in find_cases(DEFAULT_DATA) if c.study_id in args.subjects}
    for held_out in args.subjects:
        cfg = fold_config(base, held_out, args.out, args.minutes)
        if not Path(cfg.output).is_file():
            train_segmenter(cfg)
        ct, mask = subject_files(root, held_out)
        rows.append((held_out, score_subject(start, ct, mask), score_subject(Path(cfg.output), ct, mask)))
        _, _, card = load_weights(cfg.output)
        print(f"{held_out} held out: {card['steps']} steps; {table(rows[-1:])}", flush=True)
        if args.grade:
            graded_from_ct(start, cases[held_out], graded["start"])
            graded_from_ct(Path(cfg.output), cases[held_out], graded["fine-tuned"])
        if not args.no_checks:
            checks.append(f"### weights of the fold holding out {held_out}\n\n{domain_checks(Path(cfg.output))}")
    print(f"\nLeave-one-subject-out, {args.config.name}, starting weights {start.name}:\n")
    print(table(rows))
    bone = [r[2].bone for r in rows]
    per_vertebra = [np.mean(list(r[2].per_vertebra.values())) for r in rows]
    print(f"\nfine-tuned: bone Dice min {min(bone):.3f} (target >= 0.85 each), per-vertebra Dice mean "
          f"{np.mean(per_vertebra):.3f} (target >= 0.80)")
    if args.grade:
        print(f"\nThe held-out CTs graded from the CT alone ({', '.join(args.subjects)}; segmented and "
              "labelled by the starting or the fold's weights):\n")
        print(grading_table(graded, list(cases.values()), args.out))
    if checks:
        print("\n" + "\n\n".join(checks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
