"""Identification anchors: the sacrum, the lowest rib (T12), both, neither, and a user's relabel."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from healthivert.cli import main
from healthivert.io.images import load_ct, load_mask
from healthivert.labels import (
    ANCHOR_BOTH,
    ANCHOR_CONFLICT,
    ANCHOR_NONE,
    ANCHOR_RIB,
    ANCHOR_SACRUM,
    ANCHOR_USER,
    relabel_from_top,
)
from healthivert.phantom import PhantomConfig, make_phantom, write_phantom
from healthivert.segmentation import infer
from healthivert.segmentation.config import SegmenterConfig
from healthivert.segmentation.identify import anchor_labels
from healthivert.segmentation.ribs import lowest_rib_bearing, rib_bearing
from healthivert.training.segmenter import class_map
from tests.helpers import assert_one_line_error, shared_path

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])


@pytest.mark.parametrize(
    ("n", "sacrum", "t12", "top", "anchor"),
    [
        (5, True, None, 20, ANCHOR_SACRUM),  # L1..L5 on the sacrum
        (6, False, 2, 17, ANCHOR_RIB),  # T10..L3: the third from the top bears the last rib
        (8, True, 2, 17, ANCHOR_BOTH),  # T10..L5 with the sacrum: 5 rib-free vertebrae between
        (9, True, 2, 16, ANCHOR_CONFLICT),  # 6 rib-free vertebrae above the sacrum: counted from it
        (4, False, None, 21, ANCHOR_NONE),  # L2..L5 guessed
    ],
)
def test_anchor_labels_count_from_what_is_in_view(n, sacrum, t12, top, anchor):
    labels, got, notes = anchor_labels(n, sacrum, t12)
    assert labels == list(range(top, top + n)) and got == anchor
    if anchor == ANCHOR_NONE:
        assert any("unanchored" in note and "guessed to be L5" in note for note in notes)
    if anchor == ANCHOR_CONFLICT:
        assert any("6 rib-free vertebrae" in note and "check the labels" in note for note in notes)


def test_anchor_labels_leave_vertebrae_past_l5_unlabelled():
    labels, anchor, notes = anchor_labels(8, False, 0)  # T12 at the top, then 7 rib-free vertebrae
    assert labels == [19, 20, 21, 22, 23, 24, 0, 0] and anchor == ANCHOR_RIB
    assert any("left unlabelled" in note for note in notes)


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([True, True, False, False], 2),  # two thoracic, then lumbar: the second is T12
        ([True, False], 1),
        ([False, False, False], None),  # a lumbar view (or ribs cropped away)
        ([True, True, True], None),  # T12 may lie below the view
        ([True, False, False, True], None),  # 'ribs' again further down: pelvis or artefact
    ],
)
def test_lowest_rib_bearing_needs_a_rib_free_vertebra_below_the_top_run(flags, expected):
    order = [10 * (k + 1) for k in range(len(flags))]
    got = lowest_rib_bearing(order, dict(zip(order, flags)))
    assert got == (None if expected is None else order[expected - 1])


def _spine_with_ribs(ribbed: int, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Box vertebrae (ids 1..n, top first) on a 2 mm grid in RAS, and HU: bone 400, soft tissue
    40. The top ``ribbed`` vertebrae carry a rib per side: bone starting 2 mm beside the
    vertebra, behind its centre, running 70 mm out to the side. In front of every vertebra an
    'aorta' (contrast, 300 HU) runs the whole column, touching it."""
    shape = (120, 60, 16 * n + 10)
    inst, hu = np.zeros(shape, np.int32), np.full(shape, 40.0)
    x0, x1, y0, y1 = 50, 70, 20, 40
    for k in range(n):
        z1 = shape[2] - 5 - 16 * k
        inst[x0:x1, y0:y1, z1 - 12:z1] = k + 1
        if k < ribbed:
            for side in (-1, 1):
                xs = range(x0 - 36, x0 - 1) if side < 0 else range(x1 + 1, x1 + 36)
                hu[list(xs), y0:y0 + 4, z1 - 8:z1 - 4] = 400.0
    hu[inst > 0] = 400.0
    hu[54:66, y1:y1 + 8, :] = 300.0  # the aorta: in front, 24 mm across, along the whole column
    return inst, hu


@pytest.mark.parametrize("ribbed", [0, 2, 5])
def test_rib_bearing_finds_ribs_beside_the_vertebrae_not_the_aorta(ribbed):
    inst, hu = _spine_with_ribs(ribbed)
    flags = rib_bearing(inst, hu, AFFINE)
    assert flags == {k + 1: k < ribbed for k in range(5)}
    expected = 2 if ribbed == 2 else None
    assert lowest_rib_bearing([1, 2, 3, 4, 5], flags) == expected


def test_rib_bearing_ignores_bone_touching_the_sacrum():
    """An iliac wing runs far out to the side like a rib, but it meets the sacrum."""
    inst, hu = _spine_with_ribs(0)
    sacrum = np.zeros(inst.shape, bool)
    sacrum[50:70, 20:40, 0:4] = True
    hu[sacrum] = 400.0
    hu[10:49, 20:24, 0:8] = 400.0  # a plate 8 mm thick (as thin as a rib), touching L5's side
    hu[71:110, 20:24, 0:8] = 400.0  # (the lowest box) and the sacrum
    inst_low = inst.copy()
    inst_low[50:70, 20:40, 4:9] = 5  # the lowest vertebra reaches down beside the 'ilium'
    assert not any(rib_bearing(inst_low, hu, AFFINE, sacrum).values())
    hu[sacrum] = 40.0  # without the sacrum the plates alone would read as ribs
    assert rib_bearing(inst_low, hu, AFFINE)[5]


def test_rib_bearing_sees_ribs_cut_by_a_narrow_field_of_view():
    """A crop 100 mm across (the VerSe crops) cuts the ribs 16 mm from their joints: they leave
    the image through its side faces, so they still count. Cut 6 mm beside the vertebrae, the
    stubs left (shorter than ``RIB_CUT_REACH_MM``, like a transverse-process tip the network
    missed) give none."""
    inst, hu = _spine_with_ribs(2)
    assert rib_bearing(inst[41:79], hu[41:79], AFFINE) == {1: True, 2: True, 3: False, 4: False, 5: False}
    assert not any(rib_bearing(inst[47:73], hu[47:73], AFFINE).values())


def test_rib_bearing_sees_ribs_leaving_a_scan_whose_view_the_grid_does_not_follow():
    """A turned or oblique crop put on another grid: its side edges lie inside the image, with
    padding (read as air) beyond. Ribs cut there count as ribs cut by a side face; stubs cut 6 mm
    beside the vertebrae, and the air the bottom slices cut across, do not."""
    inst, hu = _spine_with_ribs(2)
    padded = hu.copy()
    padded[:41], padded[79:] = -1024.0, -1024.0  # the scan's view: 16 mm beside the vertebrae
    assert rib_bearing(inst, padded, AFFINE) == {1: True, 2: True, 3: False, 4: False, 5: False}
    padded = hu.copy()
    padded[:47], padded[73:] = -1024.0, -1024.0  # 4 mm beside them
    assert not any(rib_bearing(inst, padded, AFFINE).values())
    bottom = hu.copy()
    bottom[71:110, 20:24, 0:6] = 400.0  # bone beside the lowest vertebra, out to the side ...
    bottom[:, :, :2] = -1024.0  # ... ending at the air that the bottom slice cuts across
    assert not rib_bearing(inst, bottom, AFFINE)[5]


@pytest.mark.parametrize(("flags", "top_cut", "expected"), [
    ([False, True, True, False, False], True, 3),  # T9 cut by the view, its rib out of it
    ([False, True, True, False, False], False, None),  # whole and rib-free: not a thoracic run
    ([False, False, True, False], True, None),  # one rib-free vertebra is all a cut may hide
])
def test_lowest_rib_bearing_lets_a_top_vertebra_cut_by_the_view_show_no_rib(flags, top_cut, expected):
    order = [10 * (k + 1) for k in range(len(flags))]
    got = lowest_rib_bearing(order, dict(zip(order, flags)), top_cut)
    assert got == (None if expected is None else order[expected - 1])


def test_rib_bearing_refuses_thick_bone():
    """Bone as long as a rib but holding a ball 10 mm across (an iliac crest, a vertebral body
    the network left unlabelled) is not a rib."""
    inst, hu = _spine_with_ribs(0)
    hu[14:49, 20:30, 20:30] = 400.0  # 20 mm thick, from the side of vertebra 5 to 70 mm out
    inst_ribbed, hu_ribbed = _spine_with_ribs(5)
    assert rib_bearing(inst_ribbed, hu_ribbed, AFFINE)[5]
    assert not any(rib_bearing(inst, hu, AFFINE).values())


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([True, True, False, False, False, True], 2),  # T11, T12, L1-L3, then the iliac crest at L4
        ([True, True, False, False, False, True, True], 2),  # ... beside L4 and L5
        ([True, False, False, True, True], None),  # only two rib-free above: not known to be pelvis
        ([True, False, False, False, True, True, True], None),  # three levels: not the crest
    ],
)
def test_lowest_rib_bearing_leaves_out_the_iliac_crest_beside_the_lowest_vertebrae(flags, expected):
    order = [10 * (k + 1) for k in range(len(flags))]
    got = lowest_rib_bearing(order, dict(zip(order, flags)))
    assert got == (None if expected is None else order[expected - 1])


def test_relabel_from_top_shifts_every_vertebra_and_keeps_the_sacrum():
    mask = np.array([0, 20, 21, 22, 26, 0, 22])
    out, shift = relabel_from_top(mask, 17)
    assert shift == -3 and out.tolist() == [0, 17, 18, 19, 26, 0, 19]
    with pytest.raises(ValueError, match="past L5"):
        relabel_from_top(mask, 23)
    with pytest.raises(ValueError, match="no vertebra"):
        relabel_from_top(np.array([0, 26]), 10)


def _one_hot(classes: np.ndarray) -> np.ndarray:
    return np.stack([classes == c for c in range(3)]).astype(np.float32)


@pytest.mark.parametrize(("top", "bottom", "anchor"), [("T11", "L2", ANCHOR_RIB), ("L1", "L3", ANCHOR_NONE)])
def test_segment_ct_anchors_on_the_phantoms_ribs(top, bottom, anchor, monkeypatch):
    """A phantom cut above the sacrum, through a network that is always right: its ribs (drawn
    on T1-T12) anchor the labels; a lumbar view has nothing to anchor on and says so."""
    study = make_phantom(PhantomConfig(top=top, bottom=bottom, slice_mm=2.0, in_plane_mm=1.0), 12)
    cfg = SegmenterConfig()
    truth = infer.resample_labels(study.mask.with_array(class_map(study.mask.array)), cfg)
    monkeypatch.setattr(infer, "predict_probabilities",
                        lambda model, image, cfg: _one_hot(np.round(truth.numpy()[0]).astype(np.uint8)))
    seg = infer.segment_ct(study.ct, model=None, cfg=cfg)
    assert seg.anchor == anchor and seg.anchored is (anchor != ANCHOR_NONE)
    got = {int(x) for x in np.unique(seg.mask.array) if 0 < x < 26}
    want = {int(x) for x in np.unique(study.mask.array) if 0 < x < 26}
    assert (got == want) is (anchor != ANCHOR_NONE), (got, want)


def test_run_first_label_relabels_a_given_mask_and_says_so(tmp_path, capsys):
    """A mask labelled one level low (as a segmenter without anchor may leave it): --first-label
    shifts it back; result.json and vertebrae.csv say who set the labels."""
    study = make_phantom(PhantomConfig(top="T12", bottom="L3", slice_mm=2.0, in_plane_mm=1.5), 3)
    low, _ = relabel_from_top(study.mask.array, 20)  # T12..L3 written as L1..L4
    paths = write_phantom(replace(study, mask=study.mask.with_array(low)), tmp_path / "p")
    rc = main(["run", "--mask", str(paths["mask"]), "--out", str(tmp_path / "r"), "--grader", "rule",
               "--first-label", "T12"])
    assert rc == 0
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    assert [v["name"] for v in result["vertebrae"]] == ["T12", "L1", "L2", "L3"]
    assert result["labels"] == {"source": "given mask", "anchor": ANCHOR_USER, "anchored": True, "shift": -1,
                                "was": "given mask"}
    assert "shifted by -1 level from the mask's" in capsys.readouterr().out
    csv_lines = (tmp_path / "r" / "vertebrae.csv").read_text().splitlines()
    assert csv_lines[0].endswith(",labels_anchor") and csv_lines[1].endswith("," + ANCHOR_USER)
    rc = main(["run", "--mask", str(paths["mask"]), "--out", str(tmp_path / "r2"), "--grader", "rule",
               "--first-label", "L4"])
    assert_one_line_error(rc, capsys.readouterr(), "--first-label L4", "past L5")
    rc = main(["run", "--mask", str(paths["mask"]), "--centroids", str(paths["centroids"]), "--out",
               str(tmp_path / "r3"), "--grader", "rule", "--first-label", "T12"])
    assert_one_line_error(rc, capsys.readouterr(), "--first-label", "centroid file")
    assert not (tmp_path / "r3").exists()


@pytest.mark.realdata
@pytest.mark.slow
def test_real_ct_labels_anchor_on_both_the_sacrum_and_the_ribs():
    """The real 3 mm abdominal CT (T11-S1): its 12th rib is seen, T12 agrees with the count from
    the sacrum, and the shipped network's labels match TotalSegmentator's for T12-L5."""
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

    folder = shared_path("real/totalseg_example")
    model, cfg, _ = load_weights(DEFAULT_WEIGHTS)
    seg = segment_ct(load_ct(folder / "ct.nii.gz"), model, cfg)
    assert seg.anchor == ANCHOR_BOTH, seg.notes
    ref = load_mask(folder / "vertebrae_totalsegmentator.nii.gz").array
    for label in range(19, 25):
        overlap = seg.mask.array[ref == label]
        assert np.bincount(overlap[overlap > 0]).argmax() == label


@pytest.mark.realdata
@pytest.mark.slow
def test_real_tight_crop_anchors_on_ribs_cut_by_its_side_faces():
    """sub-verse007 (T9-L3, cropped 100 mm across, no sacrum): the ribs of T9-T12 leave the
    crop through its sides a few centimetres from their joints. They anchor T12, and every
    vertebra gets the experts' label (VerSe rule: the nearest predicted centroid, within 20 mm,
    has the right label); before, the labels were a guess, 3 levels low, and T10 was lost to
    the grid's 6-degree tilt."""
    from healthivert.io.centroids import centroids_from_mask
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

    root = shared_path("real/verse2019_subset")
    model, cfg, _ = load_weights(DEFAULT_WEIGHTS)
    seg = segment_ct(load_ct(root / "rawdata/sub-verse007/sub-verse007_ct.nii.gz"), model, cfg)
    assert seg.anchor == ANCHOR_RIB, seg.notes
    truth = centroids_from_mask(load_mask(root / "derivatives/sub-verse007/sub-verse007_seg-vert_msk.nii.gz"))
    predicted = {k: c for k, c in centroids_from_mask(seg.mask).items() if k < 26}
    right = [label for label, c in truth.items()
             if min(predicted, key=lambda k: np.linalg.norm(predicted[k] - c)) == label
             and min(np.linalg.norm(p - c) for p in predicted.values()) <= 20.0]
    assert sorted(right) == list(range(16, 23))  # T9-L3


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(("case", "grid", "anchor", "labels"), [
    # a whole scan tilted sideways: judged by the whole scan's midline, T12 and L1 were no bodies
    # and T12-L2 came out as one rib-bearing vertebra, every label below anchored one level off
    ("totalseg_example", "12 degrees about AP only (sideways)", ANCHOR_RIB, range(19, 25)),
    # 3 mm slices: the cut T9 shows no rib (the labels were a guess, two levels off) ...
    ("sub-verse007", "3 mm slices", ANCHOR_RIB, range(16, 23)),
    # ... and sub-verse014's L4/L5 disc dips only across the axis (L4 and L5 were one vertebra)
    ("sub-verse014", "3 mm slices", ANCHOR_RIB, range(20, 25)),
])
def test_real_ct_on_another_grid_keeps_its_labels(case, grid, anchor, labels):
    """Real CTs re-gridded as ``benchmarks/acquisition_ct.py`` does: each expert (or
    TotalSegmentator) vertebra overlaps most the prediction with its own label, anchored."""
    from benchmarks.acquisition_ct import VARIANTS, variant
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights, segment_ct

    if case == "totalseg_example":
        folder = shared_path("real/totalseg_example")
        ct, ref = load_ct(folder / "ct.nii.gz"), load_mask(folder / "vertebrae_totalsegmentator.nii.gz")
    else:
        root = shared_path("real/verse2019_subset")
        ct = load_ct(root / f"rawdata/{case}/{case}_ct.nii.gz")
        ref = load_mask(root / f"derivatives/{case}/{case}_seg-vert_msk.nii.gz")
    ct, ref = variant(ct, ref, VARIANTS[grid])
    model, cfg, _ = load_weights(DEFAULT_WEIGHTS)
    seg = segment_ct(ct, model, cfg)
    assert seg.anchor == anchor, seg.notes
    for label in labels:
        overlap = seg.mask.array[ref.array == label]
        assert np.bincount(overlap[overlap > 0]).argmax() == label, (label, seg.notes)
