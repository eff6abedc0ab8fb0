"""One study, end to end: mask (and CT) -> straightened vertebrae -> pseudo-healthy bodies ->
heights, RHLV and maps -> Genant grades -> the result folder (see docs/design.md)."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from healthivert import __version__
from healthivert.errors import InputError
from healthivert.geometry.vertebrae import StraightVertebra, straighten_vertebrae
from healthivert.grading import get_grader
from healthivert.grading.base import GRADES, Grader
from healthivert.grading.rule import THRESHOLDS as GENANT_THRESHOLDS
from healthivert.io.atomic import atomic_directory
from healthivert.io.centroids import centroids_from_mask, read_centroids
from healthivert.io.images import check_overlap, load_ct, load_mask, write_volume
from healthivert.io.study_info import dicom_study_info
from healthivert.io.volume import Volume
from healthivert.labels import (
    ANCHOR_USER,
    SPINE_ORDER,
    T13,
    UNANCHORED_NOTE,
    VERSE_NAMES,
    VERTEBRA_LABELS,
    level_gap,
    relabel_from_top,
    verse_label,
)
from healthivert.measurement.heights import VertebraMeasurement, measure_vertebra
from healthivert.measurement.plausibility import merged_suspects, taller_than_predicted
from healthivert.models import describe_model, model_set
from healthivert.normative import graded_level
from healthivert.report.contract import write_result
from healthivert.report.maps import write_crop, write_loss_map_nifti, write_loss_map_png
from healthivert.report.record import BOUND_STATUS, Heights, Rhlv, SectionValues, VertebraRecord
from healthivert.sections import SECTIONS
from healthivert.synthesis import PseudoHealthy, get_synthesizer
from healthivert.synthesis.guard import guarded
from healthivert.synthesis.prior import NEIGHBOURS_METHOD, RATIO_METHOD

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class RunOptions:
    """How to process a study."""

    synthesizer: str = "prior"
    grader: str = "svm"
    write_crops: bool = True
    models: str | None = None  # a folder of retrained models (see healthivert.models); None: shipped
    first_label: str | None = None  # the topmost vertebra's name ("T9"): relabels the mask from it


def grader_for(options: RunOptions) -> Grader:
    """The grader of ``options``; the SVM is the one trained through the chosen synthesizer."""
    if options.grader == "svm":
        return get_grader("svm", model_path=model_set(options.models).grader(options.synthesizer))
    return get_grader(options.grader)


def graders_for(options: RunOptions) -> dict[str, Grader]:
    """The grader per synthesizer a vertebra's body may come from: with the GAN, a body it
    falls back to the prior for is graded by the prior's SVM (the one trained on its features)."""
    graders = {options.synthesizer: grader_for(options)}
    if options.synthesizer == "gan":
        graders["prior"] = grader_for(replace(options, synthesizer="prior"))
    return graders


def synthesizer_for(options: RunOptions):
    """The synthesizer of ``options``; the GAN (with the models folder's weights, if it has
    them) falls back to the prior per vertebra where it disagrees with it
    (:mod:`healthivert.synthesis.guard`)."""
    if options.synthesizer == "gan":
        gan = get_synthesizer("gan", weights=str(model_set(options.models).path("synthesizer_gan")))
        return guarded(gan, get_synthesizer("prior"))
    return get_synthesizer(options.synthesizer)


def models_used(options: RunOptions, segmented: bool) -> dict[str, dict]:
    """The model files behind a result (``result.json``'s ``models``), each with its SHA-256."""
    models = model_set(options.models)
    used = {}
    if segmented:
        used["segmenter"] = describe_model(models.path("segmenter"))
    if options.synthesizer == "gan":
        used["synthesizer"] = describe_model(models.path("synthesizer_gan"))
    if options.grader == "svm":
        used["grader"] = describe_model(models.grader(options.synthesizer))
    return used


def _study_id(mask_path: Path | None, ct_path: Path | None) -> str:
    path = mask_path or ct_path
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for tail in ("_seg-vert_msk", "_ct", "_msk"):
        if name.endswith(tail):
            name = name[: -len(tail)]
    return name


def segment_study(ct: Volume, weights: str | Path | None = None):
    """Vertebra mask of a CT from the shipped (or given) segmentation weights."""
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

    model, cfg, _ = load_weights(weights or DEFAULT_WEIGHTS)
    return segment_ct(ct, model, cfg)


class StudyInputs(NamedTuple):
    """A study's checked inputs: the mask, the CT (or None), centroids (RAS mm), the labels whose
    centroids were computed from the mask, and how the labels were found (``result.json``'s
    ``labels``: ``source``, ``anchor``, ``anchored``, and ``shift`` when ``--first-label`` moved them)."""

    mask: Volume
    ct: Volume | None
    centroids: dict[int, np.ndarray]
    computed: list[int]
    labels: dict


def relabel(mask: Volume, first_label: str, labels: dict, notes: list[str] | None) -> Volume:
    """``mask`` with its vertebrae shifted so the topmost is ``first_label`` (a name: "T9");
    ``labels`` (the study's label provenance) is updated and the shift noted."""
    try:
        array, shift = relabel_from_top(mask.array, verse_label(first_label))
    except ValueError as exc:
        raise InputError(f"--first-label {first_label}: {exc}") from None
    was = labels.get("anchor")
    labels.update(anchor=ANCHOR_USER, anchored=True, shift=shift, was=was)
    for key in ("guessed", "doubtful"):
        if labels.get(key):
            labels[key] = [VERSE_NAMES[verse_label(name) + shift] for name in labels[key]]
    if notes is not None:  # the guess the user corrected is no longer a warning
        notes[:] = [n for n in notes if not n.startswith(UNANCHORED_NOTE)]
        notes.append(f"labels shifted by {shift:+d} level{'s' if abs(shift) != 1 else ''} from the "
                     f"{'mask' if was == 'given mask' else 'segmenter'}'s (anchor: {was}) so the topmost "
                     f"vertebra is {first_label.upper()} (--first-label)")
    return mask.with_array(array)


#: voxels longer than this along the spine (mm) make a study note: at 3 mm the expert masks'
#: grades held, at 5 mm section heights moved up to 5.1 mm and a normal vertebra was graded 2
#: (benchmarks/acquisition.py)
THICK_SLICE_MM = 3.0


def thick_slice_note(mask: Volume) -> str | None:
    """A note when the mask's voxels are longer than ``THICK_SLICE_MM`` along the body's
    superior-inferior (RAS S) axis: the voxel axis nearest S sets how finely endplates are
    placed; None otherwise."""
    spacing = mask.spacing_mm
    along_si = int(np.argmax(np.abs(mask.affine[2, :3]) / spacing))
    if spacing[along_si] <= THICK_SLICE_MM:
        return None
    return (f"the mask's voxels are {spacing[along_si]:.1f} mm along the spine: each endplate may be placed up to "
            "a voxel off, so grades near a threshold are uncertain; check them in the viewer")


def load_inputs(
    mask_path: Path | None, ct_path: Path | None, centroids_path: Path | None,
    segmenter_weights: str | Path | None = None, notes: list[str] | None = None, first_label: str | None = None,
) -> StudyInputs:
    """Load and cross-check a study's inputs; centroids missing from the file come from the mask.

    Without a mask the CT is segmented first (``notes`` receives how its labels were anchored).
    ``first_label`` names the topmost vertebra: the mask's labels are shifted to match.
    """
    if mask_path is None and ct_path is None:
        raise InputError("give a vertebra mask (--mask), a CT (--ct), or both")
    if first_label and centroids_path is not None:
        raise InputError("--first-label relabels the mask, so it cannot be used with a centroid file")
    ct = load_ct(ct_path) if ct_path is not None else None
    if mask_path is not None:
        mask = load_mask(mask_path)
        labels = {"source": "given mask", "anchor": "given mask", "anchored": True}
        if ct is not None:
            check_overlap(ct, mask)
    else:
        seg = segment_study(ct, segmenter_weights)
        mask = seg.mask
        labels = {"source": "segmented from the CT", "anchor": seg.anchor, "anchored": seg.anchored,
                  **({"guessed": [VERSE_NAMES[g] for g in seg.guessed]} if seg.guessed else {}),
                  **({"doubtful": [VERSE_NAMES[g] for g in seg.doubtful]} if seg.doubtful else {})}
        if notes is not None:
            notes.extend(["mask segmented from the CT: on real CTs a segmenter can merge two vertebrae or shift "
                          "the labels; check mask.nii.gz in the viewer before trusting these grades", *seg.notes])
    if first_label:
        mask = relabel(mask, first_label, labels, notes)
    from_mask = centroids_from_mask(mask)
    given = read_centroids(centroids_path, mask) if centroids_path is not None else {}
    centroids = {lab: given.get(lab, c) for lab, c in from_mask.items() if lab in VERTEBRA_LABELS}
    computed = sorted(set(centroids) - set(given))
    return StudyInputs(mask, ct, centroids, computed, labels)


@dataclass
class StudyAnalysis:
    """Everything measured on one study, before grading and writing."""

    vertebrae: list[StraightVertebra]
    healthy: dict[int, PseudoHealthy]
    measured: dict[int, VertebraMeasurement]
    records: list[VertebraRecord]
    timings: dict[str, float]
    #: vertebrae the field of view cut short, measured all the same: normal by lower bounds
    #: (:func:`normal_by_bounds`), graded 0 by the Genant rule, never the grader's features
    bounded: dict[int, VertebraMeasurement] = field(default_factory=dict)

    @property
    def every_measured(self) -> dict[int, VertebraMeasurement]:
        """Every vertebra measured, for the grader or from lower bounds (``bounded``)."""
        return {**self.measured, **self.bounded}


CERVICAL_STATUS = "not graded: a cervical vertebra (Genant grading covers T1-L5)"
#: a vertebra beside a cut the segmenter placed at the expected length (no disc seen): its
#: heights rest on that guess (sub-verse014's L4 held 8 mm of L5's back), so it is neither graded
#: nor a reference
GUESSED_STATUS = "not graded: boundary guessed by the segmenter (no disc seen between it and {other}); check the mask"


def guessed_labels(labels: dict) -> set[int]:
    """The VerSe labels whose boundary the segmenter guessed (``result.json``'s ``labels.guessed``)."""
    return {verse_label(name) for name in labels.get("guessed") or []}


#: a vertebra the segmenter found long enough to hold two, with no disc inside it, while the
#: labels were counted from one anchor: measured as one it reads far taller than its pseudo-
#: healthy body, and as a neighbour it makes theirs far too tall (sub-verse014 tilted 12
#: degrees: L1-L2 and L4-L5 each one label, the L3 between them graded 3 at 49 % loss)
DOUBTFUL_STATUS = "not graded: long enough to hold two vertebrae (no disc found inside it); check the mask"


def doubtful_labels(labels: dict) -> set[int]:
    """The VerSe labels the segmenter found long enough to hold two (``labels.doubtful``)."""
    return {verse_label(name) for name in labels.get("doubtful") or []}


def _listed(items: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return " and ".join([", ".join(items[:-1]), items[-1]] if len(items) > 2 else items)


def fov_status_text(v: StraightVertebra) -> str:
    """Why a vertebra cut by the field of view is not graded, naming the faces and sections."""
    faces = ", ".join(v.cut_by_fov)
    if not v.cut_sections or len(v.cut_sections) == 3:
        return f"not graded: cut by the field of view (at the {faces} edge)"
    return (f"not graded: the {_listed(v.cut_sections)} section{'s' if len(v.cut_sections) > 1 else ''} "
            f"cut by the field of view (at the {faces} edge)")


def normal_by_bounds(v: StraightVertebra, ph: PseudoHealthy | None) -> VertebraMeasurement | None:
    """The measurement of a vertebra the field of view cuts short, when it is normal all the
    same; None otherwise.

    Where the edge only shortens the cut sections' columns (``v.heights_bounded``), their
    measured heights are lower bounds and their height losses upper bounds. When even those
    stay under Genant's grade-1 threshold (20 %) in every section, the vertebra is normal
    whatever the edge hid (a tight crop ending at a top vertebra's endplate: sub-verse007's
    T9), unless a section is far taller than its pseudo-healthy height (a piece of the next
    bone). Only against the prior's body from the neighbours (chosen, or the GAN's fallback):
    the prior without neighbours draws on the body's own (cut) walls, and the GAN on its crop.
    """
    if not (v.heights_bounded and ph is not None and ph.method == NEIGHBOURS_METHOD):
        return None
    m = measure_vertebra(v, ph)
    losses = [m.rhlv[s] for s in SECTIONS]
    normal = np.isfinite(losses).all() and max(losses) < GENANT_THRESHOLDS[0]
    return m if normal and taller_than_predicted(m.rhlv) is None else None


def bound_status_text(v: StraightVertebra) -> str:
    """The status of a vertebra graded 0 from lower bounds, naming the sections and faces."""
    n = len(v.cut_sections)
    return (f"{BOUND_STATUS}: the {_listed(v.cut_sections)} section{'s' if n > 1 else ''} run"
            f"{'' if n > 1 else 's'} into the {', '.join(v.cut_by_fov)} edge of the image, so "
            f"{'their heights are lower bounds' if n > 1 else 'its height is a lower bound'}; even so no section is "
            f"{100 * GENANT_THRESHOLDS[0]:.0f} % shorter than its pseudo-healthy height")


def _fill_measurement(rec: VertebraRecord, m: VertebraMeasurement, ph: PseudoHealthy) -> None:
    rec.rhlv = Rhlv(**m.rhlv)
    rec.heights_mm = Heights(SectionValues(**m.original_mm), SectionValues(**m.pseudo_healthy_mm))
    rec.ratios = m.ratios
    rec.pseudo_healthy_from = [VERSE_NAMES[n] for n in ph.neighbours]
    rec.trabecular_hu, rec.bone_density = m.trabecular_hu, m.density


def analyse_study(
    mask: Volume, centroids: dict[int, np.ndarray], ct: Volume | None = None,
    synthesizer: str = "prior", computed_centroids: Sequence[int] = (), progress: Progress | None = None,
    synthesize=None, guessed: Collection[int] = (), doubtful: Collection[int] = (),
) -> StudyAnalysis:
    """Straighten, synthesise and measure every vertebra; records carry status, no grade yet.

    ``synthesize`` is the synthesizer itself when it is not the registered ``synthesizer``'s
    default (retrained weights: :func:`synthesizer_for`). ``guessed``: labels whose boundary the
    segmenter guessed (:func:`guessed_labels`), and ``doubtful``: labels that may hold two
    vertebrae (:func:`doubtful_labels`): neither graded nor another vertebra's reference.
    """
    timings: dict[str, float] = {}
    synthesize = synthesize or get_synthesizer(synthesizer)
    t = time.perf_counter()
    _, vertebrae = straighten_vertebrae(mask, centroids, ct, progress=progress)
    timings["straighten"] = time.perf_counter() - t
    t = time.perf_counter()
    healthy = synthesize([v for v in vertebrae if v.label not in guessed and v.label not in doubtful])
    timings["synthesize"] = time.perf_counter() - t
    t = time.perf_counter()
    records, measured, bounded = [], {}, {}
    merged = merged_suspects(vertebrae)
    for v in vertebrae:
        rec = VertebraRecord(v.label, VERSE_NAMES[v.label], status="", synthesizer=synthesizer)
        notes = []
        if not graded_level(v.label):
            rec.status = CERVICAL_STATUS
        elif v.label in guessed:
            with_t13 = any(u.label == T13 for u in vertebrae)
            others = [VERSE_NAMES[g] for g in sorted(guessed, key=SPINE_ORDER.get)
                      if level_gap(g, v.label, with_t13) == 1]
            rec.status = GUESSED_STATUS.format(other=" and ".join(others) or "its neighbour")
        elif v.label in doubtful:
            rec.status = DOUBTFUL_STATUS
        elif v.cut_by_fov:
            rec.status = fov_status_text(v)
            ph = healthy.get(v.label)
            m = normal_by_bounds(v, ph) if v.label not in merged else None
            if m is not None:
                rec.status = bound_status_text(v)
                _fill_measurement(rec, m, ph)
                bounded[v.label] = m
                if ph.fallback:
                    rec.synthesizer = "prior"
                    notes.append(f"{synthesizer} not used: {ph.fallback}")
        elif v.label in merged:
            rec.status = (f"not graded: its body is {merged[v.label]:.1f} times the height expected at its level "
                          "(the study's other bodies, or the level's mean): two vertebrae in one label? check the mask")
        elif v.label not in healthy:
            rec.status = "not graded: no vertebral body found in the mask"
        else:
            m = measure_vertebra(v, healthy[v.label])
            ph = healthy[v.label]
            rec.status = ("graded from intra-vertebral ratios: no neighbouring vertebra in view"
                          if ph.method == RATIO_METHOD else "graded")
            _fill_measurement(rec, m, ph)
            if ph.fallback:
                rec.synthesizer = "prior"
                rec.status += f" (pseudo-healthy body from the prior: {ph.fallback})"
                notes.append(f"{synthesizer} not used: {ph.fallback}")
            # far taller than the neighbours allow is the label's fault; far taller than a
            # GAN body may be the GAN's (unguarded, it restores real bodies ~4 mm short)
            taller = taller_than_predicted(m.rhlv) if rec.synthesizer == "prior" else None
            if taller is not None:
                rec.status = (f"not graded: its {taller[0]} section is {100 * taller[1]:.0f} % taller than its "
                              "pseudo-healthy height: a piece of the next bone in its label? check the mask")
            elif np.isfinite(list(m.features().values())).all():
                measured[v.label] = m
            else:
                rec.status = "not graded: body heights could not be measured"
        if v.label in computed_centroids:
            notes.append("centroid computed from the mask")
        if v.touches_fov:
            notes.append(f"body touches the {', '.join(v.touches_fov)} edge of the image; its sections are whole")
        if v.tilt_deg:
            notes.append(f"measured in the body's own frame, {v.tilt_deg:.0f} degrees off the spine curve's")
        if v.beyond_disc_mm:
            notes.append(f"{v.beyond_disc_mm:.0f} mm of bone beyond a disc left out of the body: the label holds "
                         "a piece of a neighbour; check the mask")
        rec.notes = notes
        records.append(rec)
    timings["measure"] = time.perf_counter() - t
    return StudyAnalysis(vertebrae, healthy, measured, records, timings, bounded)


def grade_records(analysis: StudyAnalysis, grader: Grader | Mapping[str, Grader]) -> None:
    """Add grade, probabilities and grader name to every measured record (in place).

    ``grader`` may map synthesizer names to graders (:func:`graders_for`): each record is graded
    by the one of the synthesizer its body came from (its ``synthesizer`` field).
    """
    groups: dict[int, tuple[Grader, list[VertebraRecord]]] = {}
    rule = get_grader("rule")  # normal by lower bounds is the Genant rule's call, not a model's
    measured = analysis.every_measured
    for r in analysis.records:
        if r.label in analysis.bounded:
            g = rule
        else:
            g = grader[r.synthesizer] if isinstance(grader, Mapping) else grader
        r.grader = g.name
        if r.label in measured:
            groups.setdefault(id(g), (g, []))[1].append(r)
    for g, records in groups.values():
        features = pd.DataFrame([measured[r.label].features() for r in records])
        proba, grades = g.predict_proba(features), g.predict(features)
        for r, p, k in zip(records, proba, grades):
            r.genant_grade = int(k)
            r.probabilities = {c: float(p[c]) for c in GRADES}


def write_study(
    out_dir: str | Path, result: dict, analysis: StudyAnalysis, write_crops: bool = True,
    segmented_mask: Volume | None = None,
) -> None:
    """Write the result folder atomically: result.json, vertebrae.csv, maps, crops, and the
    mask when it was segmented here (``mask.nii.gz``, on the CT's grid)."""
    with atomic_directory(out_dir) as tmp:
        if segmented_mask is not None:
            write_volume(segmented_mask, tmp / "mask.nii.gz")
            result["inputs"]["segmented_mask"] = "mask.nii.gz"
        maps = tmp / "height_loss"
        maps.mkdir()
        by_label = {v.label: v for v in analysis.vertebrae}
        measured = analysis.every_measured
        for r in result["vertebrae"]:
            if r.label not in measured:
                continue
            m, v, name = measured[r.label], by_label[r.label], r.name
            write_loss_map_nifti(m.loss_map_mm, v.grid, maps / f"{name}.nii.gz")
            write_loss_map_nifti(m.loss_map_fraction, v.grid, maps / f"{name}_fraction.nii.gz")
            grade = r.genant_grade
            write_loss_map_png(m.loss_map_mm, m.loss_map_fraction, v.grid,
                               f"{result['study_id']} {name}: Genant grade {grade if grade is not None else '-'}",
                               maps / f"{name}.png")
            if write_crops:
                crops = tmp / "straightened"
                crops.mkdir(exist_ok=True)
                write_crop(v.body.astype(np.uint8), v.grid, crops / f"{name}_original.nii.gz")
                write_crop(analysis.healthy[v.label].body.astype(np.uint8), v.grid,
                           crops / f"{name}_pseudo_healthy.nii.gz")
                if v.ct is not None:
                    write_crop(np.round(v.ct).astype(np.int16), v.grid, crops / f"{name}_ct.nii.gz")
        write_result(result, tmp)


def run_study(
    out_dir: str | Path, *, mask_path: str | Path | None = None, ct_path: str | Path | None = None,
    centroids_path: str | Path | None = None, options: RunOptions = RunOptions(),
    study_id: str | None = None, progress: Progress | None = None,
) -> dict:
    """Process one study and write its result folder atomically; returns the result dict (its
    ``vertebrae`` as :class:`VertebraRecord`, values unrounded)."""
    t0 = time.perf_counter()
    mask_path = Path(mask_path) if mask_path else None
    ct_path = Path(ct_path) if ct_path else None
    centroids_path = Path(centroids_path) if centroids_path else None
    synthesize = synthesizer_for(options)  # a bad name (or missing weights) fails before any work
    if options.synthesizer == "gan" and ct_path is None:
        raise InputError("--synthesizer gan reads the CT: give --ct (or use --synthesizer prior)")
    grader = graders_for(options)
    notes: list[str] = []
    mask, ct, centroids, computed, labels = load_inputs(mask_path, ct_path, centroids_path,
                                                        model_set(options.models).path("segmenter"), notes,
                                                        options.first_label)
    load_s = time.perf_counter() - t0
    thick = thick_slice_note(mask)
    if thick:
        notes.append(thick)
    analysis = analyse_study(mask, centroids, ct, options.synthesizer, computed, progress, synthesize,
                             guessed_labels(labels), doubtful_labels(labels))
    t = time.perf_counter()
    grade_records(analysis, grader)
    timings = {"load": load_s, **analysis.timings, "grade": time.perf_counter() - t}
    study = dicom_study_info(ct_path) if ct_path is not None else None  # None: not a DICOM series
    result = {
        "study_id": study_id or _study_id(mask_path, ct_path),
        "inputs": {"mask": str(mask_path) if mask_path else None, "ct": str(ct_path) if ct_path else None,
                   "centroids": str(centroids_path) if centroids_path else None},
        **({"study": study} if study else {}),
        "software_version": __version__,
        "units": {"heights": "mm", "rhlv": "fraction", "trabecular_hu": "HU"},
        "conventions": {"labels": "VerSe", "rhlv": "(H_pseudo_healthy - H_original) / H_pseudo_healthy",
                        "genant": "0 normal, 1 mild 20-25 %, 2 moderate 25-40 %, 3 severe > 40 %"},
        "synthesizer": options.synthesizer, "grader": grader[options.synthesizer].name,
        "models": models_used(options, segmented=mask_path is None),
        "labels": labels,
        "notes": notes,
        "vertebrae": analysis.records,
        "timings_s": timings,
    }
    t = time.perf_counter()
    write_study(out_dir, result, analysis, options.write_crops, mask if mask_path is None else None)
    timings["write"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0
    return result
