"""`healthivert run|demo --synthesizer gan` with the shipped HealthiVert-GAN weights."""

from __future__ import annotations

import json

import pytest

from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan
from tests.test_cli_run import assert_refused, run_cli


def test_shipped_weights_load_with_a_card():
    """The card's keys and numbers, not its wording (a retrained network rewrites the prose)."""
    model, card = load_gan(DEFAULT_WEIGHTS)
    assert isinstance(card["trained_on"], str) and card["trained_on"] and card["steps"] > 0
    assert model.config.vq_kind == "simvq"
    fit = card["height_calibration"]  # fitted on held-out healthy phantoms, and in use
    assert isinstance(fit["fitted_on"], str) and fit["healthy_vertebrae"] >= 50
    assert (model.calibration.scale, model.calibration.offset_mm) == (fit["scale"], fit["offset_mm"])
    assert abs(fit["mean_section_error_mm_after"]) < abs(fit["mean_section_error_mm_before"])


def test_run_with_the_gan_needs_the_ct(fractured_phantom, tmp_path):
    rc, stdout, stderr = run_cli("run", "--mask", fractured_phantom.paths["mask"], "--synthesizer", "gan",
                                 "--out", tmp_path / "r")
    assert_refused(rc, stdout, stderr, "--ct")
    assert not (tmp_path / "r").exists()


def test_demo_with_the_gan_grades_every_vertebra(tmp_path):
    """The demo (mask + CT, T10-L4 with three fractures) through the GAN: one run checked for
    what the demo prints and writes and for the GAN's restorations (`healthivert run
    --synthesizer gan` runs the same run_study; test_run_on_the_real_ct_... runs that command
    on a real CT; the demo with the prior is test_demo_from_the_ct_alone_segments_first)."""
    rc, stdout, stderr = run_cli("demo", "--out", tmp_path / "demo", "--grader", "rule", "--synthesizer", "gan")
    assert rc == 0, stderr
    assert "pseudo-healthy (gan)" in stdout
    table = stdout[stdout.index("vertebra  grade"):]
    assert [line.split()[0] for line in table.splitlines()[2:9]] == ["T10", "T11", "T12", "L1", "L2", "L3", "L4"]
    assert "known truth: T10 grade 0" in stdout
    assert "grades agreeing with the truth:" in stdout
    result = json.loads((tmp_path / "demo" / "results" / "sub-demo" / "result.json").read_text(encoding="utf-8"))
    assert result["synthesizer"] == "gan" and len(result["vertebrae"]) == 7 and result["grader"] == "rule"
    graded = {v["name"]: v for v in result["vertebrae"]}
    assert set(graded) == {"T10", "T11", "T12", "L1", "L2", "L3", "L4"}
    for v in graded.values():
        assert v["genant_grade"] in (0, 1, 2, 3), v
        # graded, not from intra-vertebral ratios; a body the GAN restored far from the neighbours'
        # estimate is the prior's, and says so
        assert v["status"] == "graded" or (v["synthesizer"] == "prior" and "from the prior" in v["status"]), v
    for name in ("T11", "L2", "L4"):  # healthy, below another vertebra: restored near their height
        h = graded[name]["heights_mm"]
        assert all(abs(h["pseudo_healthy"][s] / h["original"][s] - 1) < 0.08 for s in h["original"]), (name, h)
    h = graded["L1"]["heights_mm"]  # a severe crush (truth grade 3): restored to about twice its height
    assert all(h["pseudo_healthy"][s] > 1.6 * h["original"][s] for s in h["original"]), h
    assert graded["L1"]["genant_grade"] == 3


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize("synthesizer", ["prior", "gan"])
def test_run_on_the_real_ct_calls_its_unfractured_lumbar_spine_normal(totalseg_ct_path, totalseg_mask_path,
                                                                        tmp_path, synthesizer):
    """The real 3 mm CT with TotalSegmentator's labels: T11 and T12 are cut by the field of view,
    L1-L5 show no fracture. Both synthesizers grade them 0 and restore each section within 25 %
    of its real height (benchmarks/real_verse.py measures how close). The GAN restores L5 short
    enough that its guard takes the prior's body there, and the status says so."""
    out = tmp_path / synthesizer
    rc, stdout, stderr = run_cli("run", "--ct", totalseg_ct_path, "--mask", totalseg_mask_path,
                                 "--synthesizer", synthesizer, "--out", out)
    assert rc == 0, stderr
    result = {v["name"]: v for v in json.loads((out / "result.json").read_text(encoding="utf-8"))["vertebrae"]}
    assert {n for n, v in result.items() if v["status"].startswith("not graded: cut")} == {"T11", "T12"}
    for name in ("L1", "L2", "L3", "L4", "L5"):
        v = result[name]
        assert v["genant_grade"] == 0, v
        assert v["status"] == "graded" or (synthesizer == "gan" and v["synthesizer"] == "prior"
                                           and v["status"].startswith("graded (pseudo-healthy body from the prior")), v
        h = v["heights_mm"]
        assert all(abs(h["pseudo_healthy"][s] / h["original"][s] - 1) < 0.25 for s in h["original"]), (name, h)
