"""`healthivert run` and `healthivert demo`, in-process: the result contract of docs/design.md on a
small phantom (slow), refusals of bad input (fast) and the real VerSe case (slow, skipped
without ../shared/data)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from healthivert import __version__
from healthivert.cli import main
from healthivert.io.centroids import centroids_from_mask, write_centroids
from healthivert.io.images import load_mask, write_volume
from healthivert.io.volume import Volume
from healthivert.measurement.density import density_category
from healthivert.phantom import FractureSpec, PhantomConfig, PhantomStudy, make_phantom, write_phantom
from tests.geometry.builders import box_mask

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
SECTIONS = ("anterior", "middle", "posterior")
#: the vertebrae.csv columns docs/design.md names, in its order (others may sit between and after)
DESIGN_COLUMNS = ["study_id", "label", "name", "genant_grade", "rhlv_anterior", "rhlv_middle", "rhlv_posterior",
                  "rhlv_whole", "height_anterior_mm", "height_middle_mm", "height_posterior_mm"]
#: T12-L2 with a moderate anterior wedge at L1 (truth: 33 % anterior loss, clear of 25 / 40 %)
CFG = PhantomConfig(top="T12", bottom="L2", slice_mm=1.0, in_plane_mm=1.0, orientation="LPS", deformity_rate=0.0,
                    fractures=(FractureSpec("L1", 2, "wedge"),))
SEED = 22


def run_cli(*argv) -> tuple[int, str, str]:
    """``healthivert ARGV`` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


def assert_refused(rc: int, stdout: str, stderr: str, fragment: str) -> None:
    """Exit 2, nothing on stdout, one stderr line ``healthivert: error: ...`` naming the problem."""
    assert rc == 2, (rc, stdout, stderr)
    assert stdout == ""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("healthivert: error: "), stderr
    assert fragment in lines[0], lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary entries (``.name.*.part``) a crash or a failed run would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".part" in p.name)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def is_subsequence(wanted: list[str], columns: list[str]) -> bool:
    it = iter(columns)
    return all(c in it for c in wanted)


# ----------------------------------------------------------------------- the phantom study


@dataclass(frozen=True)
class Written:
    study: PhantomStudy
    paths: dict[str, Path]
    partial_centroids: Path  # world-coordinate centroids without L2's


@dataclass(frozen=True)
class Run:
    rc: int
    stdout: str
    stderr: str
    out: Path

    @property
    def result(self) -> dict:
        return json.loads((self.out / "result.json").read_text(encoding="utf-8"))

    @property
    def records(self) -> dict[str, dict]:
        return {v["name"]: v for v in self.result["vertebrae"]}


@pytest.fixture(scope="module")
def phantom(tmp_path_factory) -> Written:
    study = make_phantom(CFG, SEED)
    root = tmp_path_factory.mktemp("cli_phantom")
    paths = write_phantom(study, root)
    centroids = {k: v for k, v in centroids_from_mask(study.mask).items() if k != 21}
    partial = write_centroids(centroids, root / "no_l2_ctd.json", fmt="world")
    return Written(study, paths, partial)


@pytest.fixture(scope="module")
def ct_run(phantom, tmp_path_factory) -> Run:
    """mask + CT + centroids (all but L2's), rule grader."""
    out = tmp_path_factory.mktemp("cli_results") / phantom.study.subject
    rc, stdout, stderr = run_cli("run", "--mask", phantom.paths["mask"], "--ct", phantom.paths["ct"],
                                 "--centroids", phantom.partial_centroids, "--out", out, "--grader", "rule")
    return Run(rc, stdout, stderr, out)


@pytest.mark.slow
def test_run_prints_a_table_of_the_vertebrae(ct_run):
    assert ct_run.rc == 0, ct_run.stderr
    assert ct_run.stderr == ""  # progress only with --verbose
    lines = ct_run.stdout.splitlines()
    assert lines[0].split()[:2] == ["vertebra", "grade"]
    assert [line.split()[0] for line in lines[2:5]] == ["T12", "L1", "L2"]
    assert f"results in {ct_run.out}" in ct_run.stdout


@pytest.mark.slow
def test_result_json_contract(ct_run, phantom):
    result = ct_run.result
    assert {"study_id", "inputs", "software_version", "vertebrae"} <= set(result)
    assert result["study_id"] == phantom.study.subject  # from the mask's VerSe file name
    assert result["software_version"] == __version__
    assert result["inputs"] == {"mask": str(phantom.paths["mask"]), "ct": str(phantom.paths["ct"]),
                                "centroids": str(phantom.partial_centroids)}
    truth = {v["name"]: v for v in phantom.study.truth["vertebrae"]}
    assert [v["name"] for v in result["vertebrae"]] == ["T12", "L1", "L2"]
    for v in result["vertebrae"]:
        assert isinstance(v["label"], int) and v["label"] == truth[v["name"]]["label"]
        assert v["status"] == "graded"
        assert v["genant_grade"] == truth[v["name"]]["genant_grade"]
        assert set(v["rhlv"]) == {*SECTIONS, "whole"}
        assert all(isinstance(x, float) for x in v["rhlv"].values())
        assert set(v["heights_mm"]) == {"original", "pseudo_healthy"}
        for kind in ("original", "pseudo_healthy"):
            assert set(v["heights_mm"][kind]) == set(SECTIONS)
            assert all(10.0 < h < 35.0 for h in v["heights_mm"][kind].values())
        # RHLV is (H_pseudo_healthy - H_original) / H_pseudo_healthy (to the file's 4 decimals)
        for s in SECTIONS:
            h, ph = v["heights_mm"]["original"][s], v["heights_mm"]["pseudo_healthy"][s]
            assert v["rhlv"][s] == pytest.approx((ph - h) / ph, abs=2e-4)
        assert sum(v["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert truth["L1"]["genant_grade"] == 2
    assert ct_run.records["L1"]["rhlv"]["anterior"] == pytest.approx(truth["L1"]["rhlv"]["anterior"], abs=0.05)


@pytest.mark.slow
def test_vertebrae_csv_has_the_design_columns(ct_run):
    columns, rows = read_csv(ct_run.out / "vertebrae.csv")
    assert is_subsequence(DESIGN_COLUMNS, columns), columns
    assert [r["name"] for r in rows] == ["T12", "L1", "L2"]
    for row in rows:
        v = ct_run.records[row["name"]]
        assert row["study_id"] == ct_run.result["study_id"]
        assert int(row["label"]) == v["label"] and int(row["genant_grade"]) == v["genant_grade"]
        for s in SECTIONS:
            assert float(row[f"rhlv_{s}"]) == v["rhlv"][s]
            assert float(row[f"height_{s}_mm"]) == v["heights_mm"]["original"][s]
        assert float(row["rhlv_whole"]) == v["rhlv"]["whole"]


@pytest.mark.slow
def test_height_loss_maps_overlay_on_their_vertebra(ct_run, phantom):
    mask = load_mask(phantom.paths["mask"])
    for v in ct_run.result["vertebrae"]:
        png = ct_run.out / "height_loss" / f"{v['name']}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = nib.load(ct_run.out / "height_loss" / f"{v['name']}.nii.gz")
        data = np.asarray(image.dataobj)
        assert data.ndim == 3 and data.shape[2] == 1
        # the map's centre lies inside this vertebra (in the input mask's world)
        centre = image.affine @ [(data.shape[0] - 1) / 2, (data.shape[1] - 1) / 2, 0, 1]
        ijk = np.round(mask.world_to_voxel(centre[:3])).astype(int)
        assert mask.array[tuple(ijk)] == v["label"], (v["name"], centre[:3])
        # its second axis runs anteriorly, its first to the patient's right (RAS +x)
        assert image.affine[1, 1] > 0.9 and image.affine[0, 0] > 0.9
    # the wedge's loss (mm) sits anteriorly: the front third of the body footprint loses more
    data = np.asarray(nib.load(ct_run.out / "height_loss" / "L1.nii.gz").dataobj)[:, :, 0]
    rows = np.flatnonzero((data != 0).any(axis=0))
    third = len(rows) // 3
    front, back = data[:, rows[-third:]], data[:, rows[:third]]
    assert front[front != 0].mean() > back[back != 0].mean() + 3.0


@pytest.mark.slow
def test_ct_fills_trabecular_hu(ct_run, phantom):
    truth = {v["name"]: v for v in phantom.study.truth["vertebrae"]}
    _, rows = read_csv(ct_run.out / "vertebrae.csv")
    for v in ct_run.result["vertebrae"]:
        assert v["trabecular_hu"] == pytest.approx(truth[v["name"]]["trabecular_hu"], abs=20.0)
        assert v["bone_density"] == density_category(v["trabecular_hu"])
    assert all(r["trabecular_hu"] != "" for r in rows)
    assert sorted(p.name for p in (ct_run.out / "straightened").glob("*_ct.nii.gz")) == [
        "L1_ct.nii.gz", "L2_ct.nii.gz", "T12_ct.nii.gz"]


@pytest.mark.slow
def test_missing_centroids_are_computed_and_noted(ct_run):
    records = ct_run.records
    assert records["L2"]["notes"][0] == "centroid computed from the mask"
    assert records["L2"]["status"] == "graded"
    for name in ("T12", "L1"):  # given centroids; at most a note that the body's own frame was used
        assert all(n.startswith("measured in the body's own frame") for n in records[name].get("notes", [])), name


@pytest.mark.slow
def test_rerun_replaces_the_result_and_reports_a_cut_vertebra(ct_run, phantom, tmp_path):
    """A second run into an existing folder (mask only, its top vertebra cut by the field of
    view) replaces the whole folder; nothing of the first run and no temporary entry remains."""
    out = tmp_path / "results" / "study"
    shutil.copytree(ct_run.out, out)
    mask = phantom.study.mask
    z = np.flatnonzero((mask.array == 19).any(axis=(0, 1)))
    cut = Volume(mask.array[:, :, : (z[0] + z[-1]) // 2].copy(), mask.affine)  # T12 cut through
    cropped = write_volume(cut, tmp_path / "cropped_msk.nii.gz", on_source_grid=False)
    rc, stdout, stderr = run_cli("run", "--mask", cropped, "--out", out, "--grader", "rule")
    assert rc == 0, stderr
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["inputs"]["ct"] is None and result["study_id"] == "cropped"
    records = {v["name"]: v for v in result["vertebrae"]}
    assert records["T12"]["genant_grade"] is None
    assert "field of view" in records["T12"]["status"] and "superior" in records["T12"]["status"]
    assert records["L1"]["genant_grade"] == 2 and records["L2"]["genant_grade"] == 0
    assert all(v["trabecular_hu"] is None for v in result["vertebrae"] if v["genant_grade"] is not None)
    assert all(v["notes"][0] == "centroid computed from the mask" for v in result["vertebrae"])
    assert not list(out.glob("straightened/*_ct.nii.gz"))
    assert sorted(p.name for p in (out / "height_loss").glob("*.png")) == ["L1.png", "L2.png"]
    _, rows = read_csv(out / "vertebrae.csv")
    assert [(r["name"], r["genant_grade"]) for r in rows] == [("T12", ""), ("L1", "2"), ("L2", "0")]
    assert leftovers(out.parent) == [] and leftovers(out) == []
    assert "T12" in stdout and "field of view" in stdout


# ----------------------------------------------------------------------- refusals (fast)


@pytest.fixture(scope="module")
def small_inputs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("cli_inputs")
    box = (slice(10, 30), slice(10, 30), slice(10, 30))
    far = np.eye(4)
    far[0, 3] = 2000.0  # 2 m to the right of the masks
    paths = {
        "mask": write_volume(box_mask({20: box}, (40, 40, 40)), folder / "box_msk.nii.gz", on_source_grid=False),
        "empty": write_volume(box_mask({}, (40, 40, 40)), folder / "empty_msk.nii.gz", on_source_grid=False),
        "sacrum": write_volume(box_mask({26: box}, (40, 40, 40)), folder / "sacrum_msk.nii.gz", on_source_grid=False),
        "far_ct": write_volume(Volume(np.zeros((20, 20, 20), np.int16), far), folder / "far_ct.nii.gz",
                               on_source_grid=False),
    }
    for name, text in {"not_json": "{\"label\": 20,", "no_xyz": '[{"label": 20, "X": 1.0}]', "empty_list": "[]",
                       "bad_label": '[{"label": 99, "X": 1, "Y": 2, "Z": 3}]'}.items():
        paths[name] = folder / f"{name}_ctd.json"
        paths[name].write_text(text, encoding="utf-8")
    return paths


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--mask", "empty"], "mask has no vertebra labels (found only background)"),
        (["--mask", "sacrum"], "mask has no vertebra labels (found [26])"),
        (["--mask", "mask", "--ct", "far_ct"], "CT and mask do not overlap"),
        (["--mask", "mask", "--centroids", "not_json"], "not valid JSON"),
        (["--mask", "mask", "--centroids", "no_xyz"], "each centroid needs a numeric label, X, Y and Z"),
        (["--mask", "mask", "--centroids", "empty_list"], "centroid JSON must be a non-empty list"),
        (["--mask", "mask", "--centroids", "bad_label"], "99 is not a VerSe vertebra label"),
        (["--mask", "mask", "--grader", "genant"], "unknown grader 'genant'; choose one of rule, svm"),
        (["--mask", "mask", "--synthesizer", "gan2"], "unknown synthesizer 'gan2'"),
    ],
    ids=["empty mask", "sacrum only", "no overlap", "not json", "no xyz", "empty list", "bad label",
         "bad grader", "bad synthesizer"],
)
def test_run_refuses_bad_input_in_one_line_and_writes_nothing(small_inputs, tmp_path, args, fragment):
    out = tmp_path / "results" / "study"
    argv = [small_inputs[a] if prev in ("--mask", "--ct", "--centroids") else a for prev, a in zip(["", *args], args)]
    if "--grader" not in argv:
        argv += ["--grader", "rule"]
    rc, stdout, stderr = run_cli("run", *argv, "--out", out)
    assert_refused(rc, stdout, stderr, fragment)
    assert not out.exists()
    assert not out.parent.exists() or leftovers(out.parent) == []


# ----------------------------------------------------------------------- real data and demo


@pytest.mark.slow
@pytest.mark.realdata
def test_run_on_verse007(tmp_path):
    """A real expert mask (IPL, 1 mm) with its VerSe-like centroids: T9 (a 66-voxel sliver at the
    top edge) and T10 (its body runs into the top of the image) are not graded; T11-L5 are."""
    folder = SHARED_DATA / "real" / "verse007"
    mask, centroids = folder / "sub-verse007_seg-vert_msk.nii.gz", folder / "sub-verse007_seg-subreg_ctd.json"
    if not mask.is_file() or not centroids.is_file():
        pytest.skip(f"reference data {folder.resolve()} is absent (no ../shared/data next to the project)")
    out = tmp_path / "verse007"
    rc, stdout, stderr = run_cli("run", "--mask", mask, "--centroids", centroids, "--out", out, "--grader", "rule")
    assert rc == 0, stderr
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["study_id"] == "sub-verse007"
    assert {"study_id", "inputs", "software_version", "vertebrae"} <= set(result)
    records = {v["name"]: v for v in result["vertebrae"]}
    assert list(records) == ["T9", "T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    for name in ("T9", "T10"):
        assert records[name]["genant_grade"] is None
        assert "field of view" in records[name]["status"] and "superior" in records[name]["status"]
    graded = ["T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    for name in graded:
        v = records[name]
        assert v["genant_grade"] in (0, 1, 2, 3), (name, v["status"])
        assert set(v["rhlv"]) == {*SECTIONS, "whole"}
        assert all(15.0 < h < 35.0 for h in v["heights_mm"]["pseudo_healthy"].values()), name
    assert sorted(p.stem for p in (out / "height_loss").glob("*.png")) == sorted(graded)
    columns, rows = read_csv(out / "vertebrae.csv")
    assert is_subsequence(DESIGN_COLUMNS, columns) and len(rows) == 9
    assert "T9" in stdout and "L5" in stdout


def test_demo_from_the_ct_alone_segments_first(tmp_path):
    rc, stdout, stderr = run_cli("demo", "--out", tmp_path / "demo", "--grader", "rule", "--from-ct")
    assert rc == 0, stderr
    assert "segmenting the CT" in stderr
    out = tmp_path / "demo" / "results" / "sub-demo"
    result = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert result["inputs"]["mask"] is None and (out / "mask.nii.gz").is_file()
    assert any("segmented from the CT" in note for note in result["notes"])
    # T10-L5 and the sacrum in view: labels anchored on the sacrum
    assert [v["name"] for v in result["vertebrae"]] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4", "L5"]
    assert result["grader"] == "rule" and result["synthesizer"] == "prior"
    # what the demo prints (its mask + CT run through the GAN: test_cli_gan.py's demo test)
    table = stdout[stdout.index("vertebra  grade"):]
    assert [line.split()[0] for line in table.splitlines()[2:10]] == [v["name"] for v in result["vertebrae"]]
    assert "known truth: T10 grade 0" in stdout and "grades agreeing with the truth:" in stdout


def test_run_names_a_vertebra_graded_by_the_rule_from_lower_bounds(tmp_path):
    """A box spine whose T12 the top edge cuts short, normal all the same: the table's status
    and the footer say it was graded by the rule, not the SVM."""
    from tests.test_pipeline import _domed_top

    write_volume(_domed_top({19: 23, 20: 24, 21: 25}), tmp_path / "mask.nii.gz")
    code, out, _ = run_cli("run", "--mask", str(tmp_path / "mask.nii.gz"), "--out", str(tmp_path / "out"))
    assert code == 0
    assert "graded 0 from lower bounds" in out
    assert "grades by the svm grader (T12 by the rule: see its status)" in out
    t12 = json.loads((tmp_path / "out" / "result.json").read_text())["vertebrae"][0]
    assert (t12["name"], t12["genant_grade"], t12["grader"]) == ("T12", 0, "rule")
