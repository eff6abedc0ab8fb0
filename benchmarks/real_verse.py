"""Real-data grading: every synthesizer x grader on the expert-graded real VerSe vertebrae at hand.

    .venv/bin/python benchmarks/real_verse.py [--data ../shared/data] [--out build/benchmarks/real_verse]
        [--csv all_rows.csv] [--synthesizers prior gan] [--threads 1] [--from-ct [--segmenter W]]

``--threads``: torch threads for the GAN (default 1). On a 2-core machine that another process
kept busy, two threads made the GAN up to ten times slower than one (oversubscribed cores).

``--from-ct``: grade from the CT alone, as ``healthivert run --ct`` does: each CT is segmented
and labelled (the shipped segmenter, or ``--segmenter W``) and the expert masks are not read;
sub-verse007-1mm, which has no CT, is left out. A vertebra the segmenter labels wrongly is
scored against the grade of the vertebra it was labelled as, and an expert vertebra it did not
find counts as not graded, so this is the figure a user gets from a CT.

Cases (read from ``../shared/data``, next to the repository; the script stops with a message
when it is absent):

- ``real/verse2019_subset``: three VerSe 2019 subjects (CT + expert vertebra mask), graded
  against ``data_manifests/verse2019.csv`` (sub-verse007 T9-L3, sub-verse008 T12-L5,
  sub-verse014 L1-L5: 18 vertebrae);
- ``real/verse007``: a 1 mm mask of sub-verse007 from another source, no CT, study id
  ``sub-verse007-1mm``, graded against its ``genant_grades.json`` (T9-L3: 7 vertebrae; L4 and
  L5 have no grade and are not scored). The GAN needs a CT: ``n/a`` for it;
- ``real/totalseg_example``: a real CT with TotalSegmentator's mask and no expert grades. Its
  whole lumbar vertebrae L1-L5 show no fracture and are expected normal (as in
  ``benchmarks/real_ct.py``); reported apart: grades and pseudo-healthy minus measured
  section heights. Evaluation only: never tuned on.

Each study is loaded once and analysed (straightened, synthesised, measured) once per
synthesizer; both graders (``svm``, the SVM shipped for that synthesizer, and ``rule``) then
grade the same measurements, as ``healthivert run`` would (``pipeline.analyse_study`` +
``grade_records``). Every pipeline's rows are written as a ``vertebrae.csv``-format file
under ``--out`` (with ``truth.csv``, so ``healthivert evaluate OUT/prior_svm.csv --grades
OUT/truth.csv`` reproduces a row) and scored with ``healthivert.evaluation``.

Prints markdown tables: the 25 expert-graded VerSe vertebrae per pipeline (fractures found,
normals kept and not graded all count every truth vertebra: a fracture that was not graded is
missed, a normal that was not graded is not kept; macro-F1 over the graded vertebrae; exact
agreement over all), sensitivity and specificity with 95 % Wilson intervals, the same on the
three CT subjects only (18 vertebrae, where the GAN runs too), which vertebrae each pipeline
got wrong, the totalseg_example table, and wall times.

TotalSegmentator's own spine-report measurement, side by side (optional). The pip package
``totalsegmentator`` ships it in ``totalsegmentator/spine_report/measure_verte_height.py``
(``VertebraeProcessor``: per vertebral body, the sagittal slice with the largest spread of
three heights at 15 / 50 / 85 % of the body's AP extent along an axis through its
neighbours' centroids; ``detect_potential_fracture``: flag when min / max height < 0.8, its
"20 %" rule, which its report applies to L1-L5 and this script to every vertebra it
measures). It reads masks and a CT given to it and needs no model weights and no network.
It imports scikit-image (a declared dependency, needed for its erosion) and, through
``spine_report.utils``, ``imgkit`` (for its HTML report), so ``pip install totalsegmentator
--no-deps`` alone is not enough to import it:

    .venv/bin/pip install --no-deps totalsegmentator imgkit && .venv/bin/pip install scikit-image

(torch and the rest of its dependencies are not needed; nibabel, scipy, matplotlib, jinja2 and
Pillow, which it also imports, are in the project's environment already). Without
it the script prints "TotalSegmentator: not installed ..." and skips its rows. Its spine
report measures vertebral-body masks (from its ``vertebrae_pp_refined`` model, which needs
weights), not whole vertebrae, so it is run twice here: on the expert masks cut to the
vertebral bodies that HealthiVert isolates (the straightened body mapped back to the mask's
grid; on totalseg_example its heights on these and on TotalSegmentator's own body mask, also
shown, agree within 1.5 mm, half a voxel),
and on the whole expert masks (its own fallback when no body mask is given). Its flag is a
yes / no, scored as grade 1 / 0: only fractures found, normals kept and not graded apply
(macro-F1 and exact: n/a). It skips a body that touches the image border (the VerSe crops
end at the masks) and S1. For sub-verse007-1mm, which has no CT, it is given an all-zero
CT on the mask's grid (the CT only feeds its HU statistics, not the heights).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import functools
import io
import json
import sys
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from healthivert.errors import InputError
from healthivert.evaluation import EvaluationReport, evaluate, load_results, load_truth, reason_group
from healthivert.io.atomic import atomic_write_text
from healthivert.io.csv_text import csv_text
from healthivert.io.volume import Volume
from healthivert.labels import SPINE_ORDER, VERSE_NAMES
from healthivert.pipeline import (
    RunOptions,
    StudyAnalysis,
    analyse_study,
    doubtful_labels,
    grade_records,
    graders_for,
    guessed_labels,
    load_inputs,
)
from healthivert.report.contract import CSV_COLUMNS, csv_row
from healthivert.report.record import Heights, SectionValues, VertebraRecord
from healthivert.sections import SECTIONS
from healthivert.synthesis.guard import combine

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script: benchmarks/ beside it
from segmentation import reaches_a_face  # noqa: E402  (benchmarks/segmentation.py)

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "build" / "benchmarks" / "real_verse"
MANIFEST = ROOT / "data_manifests" / "verse2019.csv"
SUBSET_SUBJECTS = ("sub-verse007", "sub-verse008", "sub-verse014")
GRADERS = ("svm", "rule")
EXPECTED_NORMAL = ("L1", "L2", "L3", "L4", "L5")  # totalseg_example
Row = tuple[str, VertebraRecord]  # (study id, one vertebra's result)
TS_INSTALL = "pip install --no-deps totalsegmentator imgkit && pip install scikit-image"
TS_PIPELINES = {"totalseg-body": "TotalSegmentator 20 % rule (bodies isolated here)",
                "totalseg-whole": "TotalSegmentator 20 % rule (whole vertebrae)"}


@dataclass
class Case:
    """One study: its inputs and, where known, its expert grades ({VerSe label: grade})."""

    study_id: str
    mask: Path
    ct: Path | None
    truth: dict[int, int] | None
    body_mask: Path | None = None  # TotalSegmentator's vertebral-body mask, where there is one
    timings: dict[str, float] = field(default_factory=dict)


def find_cases(data: Path) -> list[Case]:
    subset, v007, example = data / "real" / "verse2019_subset", data / "real" / "verse007", \
        data / "real" / "totalseg_example"
    manifest = load_truth(MANIFEST)
    cases = []
    for s in SUBSET_SUBJECTS:
        rows = manifest[manifest["study_id"] == s]
        cases.append(Case(s, subset / "derivatives" / s / f"{s}_seg-vert_msk.nii.gz",
                          subset / "rawdata" / s / f"{s}_ct.nii.gz",
                          dict(zip(rows["label"].astype(int), rows["truth_grade"].astype(int)))))
    grades = json.loads((v007 / "genant_grades.json").read_text(encoding="utf-8"))["genant_grade"]
    cases.append(Case("sub-verse007-1mm", v007 / "sub-verse007_seg-vert_msk.nii.gz", None,
                      {int(k): int(v) for k, v in grades.items()}))
    cases.append(Case("totalseg_example", example / "vertebrae_totalsegmentator.nii.gz", example / "ct.nii.gz",
                      None, example / "vertebral_body_totalsegmentator.nii.gz"))
    missing = [str(p) for c in cases for p in (c.mask, c.ct, c.body_mask) if p is not None and not p.is_file()]
    if missing:
        raise InputError(f"missing input files: {', '.join(missing)}")
    return cases


def truth_table(cases: list[Case]) -> pd.DataFrame:
    rows = [{"study_id": c.study_id, "label": lab, "name": VERSE_NAMES[lab], "truth_grade": g}
            for c in cases if c.truth for lab, g in sorted(c.truth.items(), key=lambda kv: SPINE_ORDER[kv[0]])]
    return pd.DataFrame(rows, columns=["study_id", "label", "name", "truth_grade"])


# ---------------------------------------------------------------- TotalSegmentator's measurement


def import_totalseg():
    """TotalSegmentator's spine-report measurement module, or a line saying why it is absent."""
    try:
        import totalsegmentator  # noqa: F401
    except ImportError:
        return None, "TotalSegmentator: not installed (pip install totalsegmentator --no-deps)"
    try:
        from totalsegmentator.spine_report import measure_verte_height
    except ImportError as exc:
        return None, (f"TotalSegmentator: installed, but its spine-report measurement cannot be imported "
                      f"({exc}); it needs scikit-image and imgkit: {TS_INSTALL}")
    return measure_verte_height, None


def bodies_on_mask_grid(mask: Volume, analysis: StudyAnalysis) -> np.ndarray:
    """A binary vertebral-body mask on the mask's grid: each vertebra's voxels that fall in the
    body HealthiVert isolated in its straightened crop (a rigid frame: looked up by inverting it)."""
    out = np.zeros(mask.shape, dtype=np.uint8)
    for v in analysis.vertebrae:
        w = v.grid.world_mm
        origin = w[0, 0, 0]
        steps = np.stack([w[1, 0, 0] - origin, w[0, 1, 0] - origin, w[0, 0, 1] - origin], axis=1)
        corner = np.linalg.solve(steps, w[-1, -1, -1] - origin)
        if not np.allclose(corner, np.array(w.shape[:3]) - 1, atol=1e-3):
            raise RuntimeError(f"{VERSE_NAMES[v.label]}: straightened grid is not rigid")
        idx = np.argwhere(mask.array == v.label)
        ijk = np.rint(np.linalg.solve(steps, (mask.voxel_to_world(idx) - origin).T).T).astype(int)
        inside = np.all((ijk >= 0) & (ijk < np.array(v.body.shape)), axis=1)
        keep = np.zeros(len(idx), dtype=bool)
        keep[inside] = v.body[tuple(ijk[inside].T)]
        out[tuple(idx[keep].T)] = 1
    return out


def totalseg_measure(tsm, mask: Volume, ct: Volume | None, body: np.ndarray | None) -> list[VertebraRecord]:
    """TotalSegmentator's heights and 20 % flag for every vertebra of ``mask`` (result records, its
    loss in ``extra["ts_height_loss_percent"]``; no pseudo-healthy heights).

    ``body``: a binary vertebral-body mask on the mask's grid, or None for whole vertebrae.
    """
    import nibabel as nib

    def image(array: np.ndarray):
        return nib.as_closest_canonical(nib.Nifti1Image(array, mask.affine))

    if ct is not None and (ct.shape != mask.shape or not np.allclose(ct.affine, mask.affine, atol=1e-3)):
        raise InputError("TotalSegmentator's measurement needs the CT and the mask on one grid")
    labels = [int(lab) for lab in np.unique(mask.array) if lab in VERSE_NAMES]
    label_map = {lab: f"vertebrae_{VERSE_NAMES[lab]}" for lab in labels}
    ct_img = image(ct.array if ct is not None else np.zeros(mask.shape, np.float32))
    verte_img = image(mask.array.astype(np.uint8))
    body_img = image(body.astype(np.uint8)) if body is not None else verte_img
    body_map = {1: "vertebrae_body"} if body is not None else {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = tsm.VertebraeProcessor(ct_img, verte_img, label_map, body_img, body_map,
                                      horizontal_mask_type="raw").process_vertebrae()
    canon_mask = np.asarray(verte_img.dataobj)
    canon_body = np.asarray(body_img.dataobj) == 1 if body is not None else np.ones(canon_mask.shape, bool)
    rows = []
    for lab in labels:
        name = VERSE_NAMES[lab]
        row = VertebraRecord(lab, name, status="")
        measured = info.get(label_map[lab], {}).get("height_measurements")
        if measured:
            fracture = tsm.detect_potential_fracture(measured)
            by_section = {tsm.POSITION_MAPPING[p]: float(measured[p]["height_mm"]) for p in tsm.POSITION_NAMES}
            row.genant_grade, row.status = int(bool(fracture["is_fracture"])), "graded"
            row.extra["ts_height_loss_percent"] = fracture["height_difference_percent"]
            row.heights_mm = Heights(SectionValues(**by_section), SectionValues(None, None, None))
        else:
            b = (canon_mask == lab) & canon_body
            edge = reaches_a_face(b)
            row.status = ("not graded: S1, not measured by TotalSegmentator" if name == "S1" else
                             "not graded: TotalSegmentator skips a body that touches the image border" if edge
                             else "not graded: not measured by TotalSegmentator")
        rows.append(row)
    return rows


# ---------------------------------------------------------------- running


def run_case(case: Case, synthesizers: list[str], tsm, from_ct: bool = False, segmenter: Path | None = None
             ) -> dict[str, list[VertebraRecord]]:
    """Pipeline name -> the vertebra records (with grades) of one study; ``from_ct``: the mask is
    segmented from the CT (by ``segmenter``, or the shipped weights) instead of read."""
    t0 = time.perf_counter()
    mask, ct, centroids, computed, labels = load_inputs(None if from_ct else case.mask, case.ct, None,
                                                        segmenter_weights=segmenter)
    guessed, doubtful = guessed_labels(labels), doubtful_labels(labels)
    case.timings["load"] = time.perf_counter() - t0
    out: dict[str, list[VertebraRecord]] = {}
    first: StudyAnalysis | None = None
    analyses: dict[str, StudyAnalysis] = {}
    for synth in sorted(synthesizers, key=["prior", "gan"].index):  # the guard needs the prior's bodies
        if synth == "gan" and ct is None:
            continue
        t = time.perf_counter()
        analyses[synth] = analysis = analyse_study(mask, centroids, ct, synth, computed, guessed=guessed,
                                                   doubtful=doubtful)
        first = first or analysis
        names: tuple[str, ...] = (synth,)
        if synth == "gan":  # as `healthivert run` has it: the prior where they disagree (the guard)
            analyses["gan-raw"], names = analyses.pop("gan"), ("gan-raw",)
            if "prior" in analyses:  # without the prior's bodies the guard cannot run: raw only
                kept = combine(analysis.healthy, analyses["prior"].healthy)
                analyses["gan"] = analyse_study(mask, centroids, ct, synth, computed, synthesize=lambda _, k=kept: k,
                                                guessed=guessed, doubtful=doubtful)
                names = ("gan-raw", "gan")
        for name in names:
            for g in GRADERS:
                graded = replace(analyses[name], records=copy.deepcopy(analyses[name].records))
                grade_records(graded, graders_for(RunOptions(synthesizer=synth, grader=g)))
                out[f"{name} + {g}"] = graded.records
        case.timings[synth] = time.perf_counter() - t
        if synth == "gan" and analysis.measured:
            case.timings["gan s/vertebra"] = analysis.timings["synthesize"] / len(analysis.vertebrae)
    if tsm is not None and first is not None:
        t = time.perf_counter()
        out["totalseg-body"] = totalseg_measure(tsm, mask, ct, bodies_on_mask_grid(mask, first))
        out["totalseg-whole"] = totalseg_measure(tsm, mask, ct, None)
        if case.body_mask is not None:
            out["totalseg-own-body"] = totalseg_measure(tsm, mask, ct, totalseg_body(case.body_mask, mask))
        case.timings["totalseg"] = time.perf_counter() - t
    case.timings["total"] = time.perf_counter() - t0
    return out


def totalseg_body(path: Path, mask: Volume) -> np.ndarray:
    """TotalSegmentator's vertebral-body mask (label 1 = body) on the vertebra mask's grid."""
    from healthivert.io.images import read_sitk
    from healthivert.io.volume import volume_from_sitk

    body = volume_from_sitk(read_sitk(path))
    if body.shape != mask.shape or not np.allclose(body.affine, mask.affine, atol=1e-3):
        raise InputError(f"{path}: not on the vertebra mask's grid")
    return body.array == 1


def write_rows(out: Path, name: str, rows: list[Row]) -> Path:
    """One pipeline's rows as a vertebrae.csv-format file that healthivert.evaluation reads."""
    file = out / f"{name.replace(' + ', '_')}.csv"
    atomic_write_text(file, csv_text(CSV_COLUMNS, (csv_row(study_id, r) for study_id, r in rows)))
    return file


# ---------------------------------------------------------------- tables


def _frac(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f} %)" if n else "-"


def score_row(name: str, rep: EvaluationReport | None, binary: bool) -> str:
    if rep is None:
        return f"| {name} | n/a | n/a | n/a | n/a | n/a | n/a |"
    itd = rep.itd_fracture[1]
    g = rep.graded
    f1 = lambda d: "-" if g is None else f"{d['f1']:.3f}"  # noqa: E731
    grades = ["n/a (yes/no flag)"] * 3 if binary else [
        f1(g.macro_in_truth) if g else "-", f1(g.macro) if g else "-", _frac(rep.itd_exact.successes, rep.n_truth)]
    return (f"| {name} | {_frac(itd.tp, itd.tp + itd.fn)} | {_frac(itd.tn, itd.tn + itd.fp)} | "
            f"{_frac(rep.n_not_graded, rep.n_truth)} | " + " | ".join(grades) + " |")


def score_table(reports: dict[str, EvaluationReport | None], labels: dict[str, str]) -> list[str]:
    out = ["| pipeline | fractures found (grade >= 1) | normals kept | not graded | macro-F1 (grades present) "
           "| macro-F1 (0-3) | exact |", "|---|---|---|---|---|---|---|"]
    return out + [score_row(labels.get(n, n), rep, n.startswith("totalseg")) for n, rep in reports.items()]


def ci_table(reports: dict[str, EvaluationReport | None], labels: dict[str, str]) -> list[str]:
    out = ["| pipeline | sensitivity, all (ITD) | specificity, all (ITD) | sensitivity, graded | "
           "specificity, graded |", "|---|---|---|---|---|"]
    for n, rep in reports.items():
        if rep is None:
            out.append(f"| {labels.get(n, n)} | n/a | n/a | n/a | n/a |")
            continue
        itd, g = rep.itd_fracture[1], rep.graded.fracture[1] if rep.graded else None
        out.append(f"| {labels.get(n, n)} | {itd.sensitivity.text()} | {itd.specificity.text()} | "
                   f"{g.sensitivity.text() if g else '-'} | {g.specificity.text() if g else '-'} |")
    return out


def loss_text(r: VertebraRecord) -> str:
    """A record's measured loss: RHLV (whole body) or TotalSegmentator's 1 - min / max."""
    if "ts_height_loss_percent" in r.extra:
        return f"loss {r.extra['ts_height_loss_percent']} %"
    whole = r.rhlv.whole if r.rhlv else None
    return "" if whole is None else f"RHLV {100 * whole:.0f} %"


def failure_lines(reports: dict[str, EvaluationReport | None], labels: dict[str, str],
                  studies: list[str], rows: dict[str, list[Row]]) -> list[str]:
    """Per pipeline and study: the vertebrae it got wrong (with their measured loss) or did not grade."""
    out = []
    for n, rep in reports.items():
        out.append(f"- {labels.get(n, n)}:")
        pv = None if rep is None else rep.per_vertebra[rep.per_vertebra["truth_grade"].notna()]
        for s in studies:
            if pv is None or s not in set(pv["study_id"]):
                out.append(f"  - {s}: n/a (no CT)")
                continue
            found = pv[pv["study_id"] == s]
            loss = {r.name: loss_text(r) for study_id, r in rows[n] if study_id == s}
            wrong, binary = [], n.startswith("totalseg")
            for r in found.itertuples():
                if pd.isna(r.predicted_grade):
                    wrong.append(f"{r.name} (truth {r.truth_grade}) not graded: {reason_group(r.status)}")
                elif (binary and (r.predicted_grade >= 1) != (r.truth_grade >= 1)) or \
                        (not binary and r.predicted_grade != r.truth_grade):
                    pred = ("flagged" if r.predicted_grade else "not flagged") if binary else r.predicted_grade
                    wrong.append(f"{r.name} {r.truth_grade} -> {pred}" + (f" ({loss[r.name]})" if loss[r.name] else ""))
            out.append(f"  - {s} ({len(found)}): " + ("all right" if not wrong else "; ".join(wrong)))
    return out


def bias_lines(rows: dict[str, list[Row]], truth: pd.DataFrame, studies: list[str], synths: list[str]) -> list[str]:
    """Per synthesizer: mean signed and mean absolute (pseudo-healthy - measured) section height
    over the expert-normal graded vertebrae of ``studies`` (mm), and how many fell back to the prior."""
    normal = {(r.study_id, int(r.label)) for r in truth.itertuples() if r.truth_grade == 0 and r.study_id in studies}
    out = ["| synthesizer | vertebrae | mean signed (mm) | mean absolute (mm) | bodies from the prior (fallback) |",
           "|---|---|---|---|---|"]
    for synth in synths:
        errs, fell = [], 0
        for study_id, r in rows.get(f"{synth} + svm", []):
            h = r.heights_mm
            if (study_id, r.label) not in normal or not h:
                continue
            errs += [h.pseudo_healthy.get(s) - h.original.get(s) for s in SECTIONS]
            fell += r.synthesizer == "prior" and synth != "prior"
        if errs:
            out.append(f"| {synth} | {len(errs) // 3} | {np.mean(errs):+.2f} | {np.mean(np.abs(errs)):.2f} | {fell} |")
    return out


@functools.cache
def mask_heights(mask_path: Path, ct_path: Path | None) -> dict[int, dict[str, float]]:
    """Section heights (mm) per VerSe label measured on an (expert) mask, prior only; each mask
    is measured once however many segmentations are compared with it."""
    mask, ct, centroids, computed, _ = load_inputs(mask_path, ct_path, None)
    analysis = analyse_study(mask, centroids, ct, "prior", computed)
    return {r.label: {s: r.heights_mm.original.get(s) for s in SECTIONS}
            for r in analysis.records if r.heights_mm is not None}


def height_agreement_lines(cases: list[Case], rows: list[Row]) -> list[str]:
    """Section heights measured on masks segmented from the CTs (``rows``: the prior's records)
    against those measured on the cases' expert masks, per case and in all: vertebrae measured on
    both under the same label, mean signed (CT minus expert) per section and mean absolute (mm)."""
    def line(name: str, diffs: list[list[float]]) -> str:
        d = np.array(diffs, float)  # a section cut by the view is not measured (NaN): left out
        return (f"| {name} | {len(d)} | {' / '.join(f'{x:+.2f}' for x in np.nanmean(d, axis=0))} | "
                f"{np.nanmean(np.abs(d)):.2f} |")

    out = ["| study | vertebrae | mean signed a / m / p (mm) | mean absolute (mm) |", "|---|---|---|---|"]
    every = []
    for case in cases:
        ref = mask_heights(case.mask, case.ct)
        diffs = [[r.heights_mm.original.get(s) - ref[r.label][s] for s in SECTIONS]
                 for study_id, r in rows if study_id == case.study_id and r.heights_mm is not None and r.label in ref]
        if diffs:
            out.append(line(case.study_id, diffs))
            every += diffs
    if every:
        out.append(line("all", every))
    return out


def _grade_is(r: VertebraRecord | None, grade: int) -> bool:
    return r is not None and r.genant_grade == grade


def example_lines(rows: dict[str, list[VertebraRecord]]) -> list[str]:
    """totalseg_example: grades of L1-L5 per pipeline, pseudo-healthy minus measured heights."""
    synths = sorted({n.split(" + ")[0] for n in rows if " + " in n}, key=["prior", "gan", "gan-raw"].index)
    head = ["| synthesizer | vertebra | svm | rule | pseudo-healthy minus measured a / m / p (mm) |",
            "|---|---|---|---|---|"]
    out, summary = head, []
    for synth in synths:
        by = {g: {r.name: r for r in rows[f"{synth} + {g}"]} for g in GRADERS}
        errs = []
        for name in EXPECTED_NORMAL:
            r = by["svm"].get(name)
            if r is None or r.heights_mm is None:
                out.append(f"| {synth} | {name} | - | - | {r.status if r else 'absent'} |")
                continue
            h = r.heights_mm
            e = [h.pseudo_healthy.get(s) - h.original.get(s) for s in SECTIONS]
            errs.append(e)
            out.append(f"| {synth} | {name} | {by['svm'][name].genant_grade} | {by['rule'][name].genant_grade} "
                       f"| {' / '.join(f'{x:+.1f}' for x in e)} |")
        kept = {g: sum(_grade_is(by[g].get(n), 0) for n in EXPECTED_NORMAL) for g in GRADERS}
        mean = np.mean(errs, axis=0) if errs else [np.nan] * 3
        summary.append(f"| {synth} | {kept['svm']}/5 | {kept['rule']}/5 | {' / '.join(f'{x:+.2f}' for x in mean)} | "
                       f"{np.mean(np.abs(errs)):.2f} |" if errs else f"| {synth} | - | - | - | - |")
    others = [r for r in rows[next(iter(rows))] if r.name not in EXPECTED_NORMAL]
    out += ["", "| synthesizer | L1-L5 graded 0, svm | L1-L5 graded 0, rule | mean pseudo-healthy minus measured "
            "a / m / p (mm) | mean absolute (mm) |", "|---|---|---|---|---|", *summary]
    out += ["", "Other vertebrae: " + "; ".join(f"{r.name} {r.status}" for r in others)]
    ts = [n for n in ("totalseg-own-body", "totalseg-body", "totalseg-whole") if n in rows]
    if ts:
        names = {"totalseg-own-body": "its own body mask", "totalseg-body": "bodies isolated here",
                 "totalseg-whole": "whole vertebrae"}
        out += ["", "TotalSegmentator's measurement (heights at 15 / 50 / 85 % of the body's AP extent, which it "
                "calls posterior / middle / anterior, mm; loss = 1 - min / max, flagged when min / max < 0.8):", "",
                "| mask | " + " | ".join(EXPECTED_NORMAL) + " | flagged |",
                "|---|" + "---|" * (len(EXPECTED_NORMAL) + 1)]
        for n in ts:
            by = {r.name: r for r in rows[n]}
            cells = []
            for name in EXPECTED_NORMAL:
                r = by.get(name)
                if r is None or r.genant_grade is None:
                    cells.append("not measured")
                    continue
                h = r.heights_mm.original
                cells.append(f"{'/'.join(f'{h.get(s):.1f}' for s in ('posterior', 'middle', 'anterior'))} "
                             f"({r.extra['ts_height_loss_percent']} %)")
            flagged = sum(_grade_is(by.get(nm), 1) for nm in EXPECTED_NORMAL)
            out.append(f"| {names[n]} | " + " | ".join(cells) + f" | {flagged}/5 |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="the shared data folder (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="per-pipeline result CSVs and truth.csv go here")
    parser.add_argument("--csv", type=Path, help="also write every scored vertebra of every pipeline to this CSV")
    parser.add_argument("--synthesizers", nargs="+", default=["prior", "gan"], choices=["prior", "gan"],
                        help="gan without prior: the raw GAN only (the guard needs the prior's bodies)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the GAN (default 1)")
    parser.add_argument("--from-ct", action="store_true", help="segment each CT instead of reading the expert masks")
    parser.add_argument("--segmenter", type=Path, help="segmenter weights for --from-ct (default: the shipped ones)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(max(1, args.threads))
    if not (args.data / "real").is_dir():
        print(f"real_verse: {args.data} holds no real/ folder: the shared real data is absent "
              "(it lives in ../shared/data next to the repository)", file=sys.stderr)
        return 2
    t_all = time.perf_counter()
    try:
        cases = find_cases(args.data)
    except InputError as e:
        print(f"real_verse: {e}", file=sys.stderr)
        return 2
    if args.segmenter is not None and not args.from_ct:
        print("real_verse: --segmenter needs --from-ct", file=sys.stderr)
        return 2
    if args.from_ct:
        cases = [c for c in cases if c.ct is not None]
    tsm, ts_note = import_totalseg()
    rows: dict[str, list[Row]] = {}
    example: dict[str, list[VertebraRecord]] = {}
    for case in cases:
        print(f"  {case.study_id} ...", file=sys.stderr, flush=True)
        for name, recs in run_case(case, args.synthesizers, tsm, args.from_ct, args.segmenter).items():
            if case.truth is None:
                example[name] = recs
            else:
                rows.setdefault(name, []).extend((case.study_id, r) for r in recs)

    args.out.mkdir(parents=True, exist_ok=True)
    truth = truth_table(cases)
    atomic_write_text(args.out / "truth.csv", csv_text(["study_id", "label", "name", "genant_grade"],
                                                       truth.rename(columns={"truth_grade": "genant_grade"})
                                                       .to_dict("records")))
    synth_names = [n for s in args.synthesizers for n in (("gan", "gan-raw") if s == "gan" else (s,))]
    pipelines = [f"{s} + {g}" for s in synth_names for g in GRADERS] + [n for n in TS_PIPELINES if n in rows]
    results = {n: load_results(write_rows(args.out, n, rows[n])) for n in pipelines if n in rows}
    verse_studies = [c.study_id for c in cases if c.truth is not None]
    ct_studies = [c.study_id for c in cases if c.truth is not None and c.ct is not None]

    def scored(studies: list[str]) -> dict[str, EvaluationReport | None]:
        out = {}
        for n in pipelines:
            res = results.get(n)
            res = None if res is None else res[res["study_id"].isin(studies)]
            out[n] = None if res is None or res.empty else evaluate(
                res, truth[truth["study_id"].isin(studies)], results_source=n, truth_source="expert grades")
        return out

    everything, ct_only = scored(verse_studies), scored(ct_studies)
    n_all, n_ct = int(truth["study_id"].isin(verse_studies).sum()), int(truth["study_id"].isin(ct_studies).sum())
    labels = dict(TS_PIPELINES)
    for n in ("gan + svm", "gan + rule", "gan-raw + svm", "gan-raw + rule"):
        if n in everything and everything[n] is not None:
            labels[n] = f"{n} (no CT for sub-verse007-1mm: its {n_all - n_ct} n/a)"
    if args.from_ct:
        print(f"Masks segmented from the CTs by {args.segmenter or 'the shipped segmenter'} (expert masks not read)\n")
    print(f"## Expert-graded real VerSe vertebrae ({n_all}: {', '.join(verse_studies)})\n")
    print("Fractures found, normals kept and not graded count every truth vertebra (a fracture not graded is "
          "missed); macro-F1 is over the graded vertebrae; exact is over all.\n")
    print("\n".join(score_table(everything, labels)))
    print("\nFracture (grade >= 1) detection, value (k/n; 95 % Wilson CI); ITD = every truth vertebra, "
          "graded = the graded ones only:\n")
    print("\n".join(ci_table(everything, labels)))
    print(f"\n## The three CT subjects only ({n_ct} vertebrae; every pipeline on the same vertebrae)\n")
    print("\n".join(score_table(ct_only, {k: v for k, v in labels.items() if k in TS_PIPELINES})))
    print("\n## Pseudo-healthy minus measured height on the expert-normal vertebrae of the CT subjects\n")
    print("\n".join(bias_lines(rows, truth, ct_studies, synth_names)))
    if args.from_ct and "prior + svm" in rows:
        print("\n## Section heights on the segmented masks against those on the experts' masks (prior)\n")
        print("\n".join(height_agreement_lines([c for c in cases if c.truth is not None], rows["prior + svm"])))
    print("\n## Where each pipeline went wrong (truth -> predicted, and the measured loss)\n")
    print("\n".join(failure_lines(everything, labels, verse_studies, rows)))
    if ts_note:
        print(f"\n{ts_note}")
    if example:
        print("\n## totalseg_example (no expert grades; L1-L5 expected normal; evaluation only)\n")
        print("\n".join(example_lines(example)))

    print(f"\n## Wall time (s; this machine, {torch.get_num_threads()} torch thread(s))\n")
    steps = ["load", *args.synthesizers, *(["gan s/vertebra"] if "gan" in args.synthesizers else []),
             *(["totalseg"] if tsm is not None else []), "total"]
    print("| study | " + " | ".join(steps) + " |\n|---|" + "---|" * len(steps))
    for c in cases:
        print(f"| {c.study_id} | " + " | ".join(f"{c.timings[s]:.1f}" if s in c.timings else "n/a"
                                                  for s in steps) + " |")
    print(f"\nTotal: {time.perf_counter() - t_all:.0f} s")

    if args.csv:
        frames = [rep.per_vertebra.assign(pipeline=n) for n, rep in everything.items() if rep is not None]
        pd.concat(frames, ignore_index=True)[["pipeline", "study_id", "label", "name", "truth_grade",
                                              "predicted_grade", "status"]].to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
