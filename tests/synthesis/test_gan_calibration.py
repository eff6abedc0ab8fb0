"""The HealthiVert-GAN's height calibration: the robust affine fit, its storage with the
weights, its use by the ``gan`` synthesizer, and fitting it from the CLI on phantoms and on a
VerSe tree."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from healthivert.cli import main
from healthivert.errors import InputError
from healthivert.geometry.vertebrae import straighten_vertebrae
from healthivert.io.centroids import centroids_from_mask
from healthivert.phantom import PhantomConfig, make_phantom
from healthivert.synthesis.gan.calibration import HeightCalibration, fit_height_calibration
from healthivert.synthesis.gan.infer import synthesize_gan
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, load_gan, save_gan
from healthivert.training.gan_calibration import calibrate_synthesizer
from healthivert.training.synthesizer import SynthesizerTrainConfig
from tests.helpers import phantom_verse_tree
from tests.tiny_gan import TINY, save_tiny_gan


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    """Untrained tiny weights: the calibration's mechanics do not need a good network."""
    return save_tiny_gan(tmp_path_factory.mktemp("cal") / "g.safetensors")


def test_fit_recovers_a_known_affine_map_despite_outliers():
    rng = np.random.default_rng(0)
    est = rng.uniform(15, 32, 120)
    real = 0.9 * est + 2.0 + rng.normal(0, 0.2, est.size)
    real[:6] += 8.0  # a few gross failures must not drag the fit
    est[7] = np.nan
    fit = fit_height_calibration(est, real)
    assert fit.scale == pytest.approx(0.9, abs=0.02) and fit.offset_mm == pytest.approx(2.0, abs=0.4)
    with pytest.raises(InputError, match=">= 15"):
        fit_height_calibration(est[:14], real[:14])


def test_calibration_maps_body_columns_only_and_never_below_zero():
    h = np.array([[0.0, 10.0], [20.0, 0.5]], np.float32)
    out = HeightCalibration(scale=2.0, offset_mm=-3.0).apply(h)
    assert out.tolist() == [[0.0, 17.0], [37.0, 0.0]]
    assert np.array_equal(HeightCalibration().apply(h), h)


def test_calibration_is_stored_with_the_weights_and_old_files_read_as_identity(tiny_weights, tmp_path):
    model, card = load_gan(tiny_weights)
    assert model.calibration == HeightCalibration()
    model.calibration = HeightCalibration(0.95, 1.25)
    path = save_gan(model, tmp_path / "c.safetensors", card)
    assert load_gan(path)[0].calibration == HeightCalibration(0.95, 1.25)
    with safe_open(str(path), framework="pt") as fh:  # a file written before calibration existed
        meta = {k: v for k, v in fh.metadata().items() if k != "height_calibration"}
        state = {k: fh.get_tensor(k) for k in fh.keys()}
    save_file(state, str(tmp_path / "old.safetensors"), metadata=meta)
    assert load_gan(tmp_path / "old.safetensors")[0].calibration == HeightCalibration()


def test_gan_synthesizer_applies_the_calibration_to_every_body(tiny_weights):
    """The calibration's mechanics on an untrained tiny network (the shipped one's heights are
    calibrated in the CLI test below)."""
    study = make_phantom(PhantomConfig(top="T12", bottom="L2", slice_mm=1.5, n_fractures=(0, 0),
                                         deformity_rate=0.0), 13)
    _, vertebrae = straighten_vertebrae(study.mask, centroids_from_mask(study.mask), study.ct)
    model, _ = load_gan(tiny_weights)
    model.calibration = HeightCalibration()  # the network's own heights
    plain = synthesize_gan(vertebrae, model)
    model.calibration = HeightCalibration(0.9, -0.5)  # shorter: no vertebra reads as fractured and restored
    shifted = synthesize_gan(vertebrae, model)
    for v in vertebrae:
        foot = plain[v.label].heights_mm > 0
        expected = np.maximum(0.9 * plain[v.label].heights_mm[foot] - 0.5, 0.0)
        assert np.allclose(shifted[v.label].heights_mm[foot], expected, atol=1e-4)
        assert not shifted[v.label].heights_mm[~foot].any()
        assert shifted[v.label].body.sum() < plain[v.label].body.sum()  # the shorter heights fill a shorter body


def test_cli_fits_the_calibration_of_the_shipped_gan_on_held_out_phantoms(tmp_path):
    """On the shipped network (a tiny untrained one restores nothing: its bodies keep their real
    heights): the fit is stored, the weights are untouched, and the fit is of the network's own
    heights, not of the calibration already stored (one run: the stored one is made far off)."""
    shipped, shipped_card = load_gan(DEFAULT_WEIGHTS)
    far_off = HeightCalibration(1.0, 5.0)  # were it applied, every height would read 5 mm too tall
    shipped.calibration = far_off
    weights = save_gan(shipped, tmp_path / "g.safetensors", shipped_card)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(json.dumps({"top": "T10", "bottom": "L5", "calibration_studies": 1, "calibration_seed": 8001,
                                  "output": str(weights)}))
    assert main(["train", "synthesizer", "--config", str(recipe), "--calibrate-only"]) == 0
    model, card = load_gan(weights)
    entry = card["height_calibration"]
    assert card["trained_on"] == shipped_card["trained_on"]  # the rest of the card is kept
    assert model.calibration == HeightCalibration(entry["scale"], entry["offset_mm"])
    assert model.calibration not in (HeightCalibration(), far_off)
    assert entry["healthy_vertebrae"] == 7  # seed 8001, T10-L5: all but T12 (a grade-3 crush)
    # the fit is of the network's own heights, near the real ones: the stored + 5 mm was not applied
    assert abs(entry["mean_section_error_mm_before"]) < 1.0, entry
    for name, module in (("generator", model.generator), ("classifier", model.classifier)):  # weights untouched
        theirs = getattr(shipped, name).state_dict()
        assert all(torch.equal(v, theirs[k]) for k, v in module.state_dict().items())
    # the fit leaves these healthy bodies unbiased: closer to 0 than the network's own heights,
    # or within 0.1 mm where those already were (a robust Huber fit: its mean residual is not 0)
    after, before = abs(entry["mean_section_error_mm_after"]), abs(entry["mean_section_error_mm_before"])
    assert after < before or after <= 0.1


def test_calibration_reads_the_verse_splits_and_refuses_too_few_healthy_vertebrae(tiny_weights, tmp_path):
    tree, manifest, _ = phantom_verse_tree(tmp_path, "T12", "L2", slice_mm=1.5)
    weights = shutil.copy(tiny_weights, tmp_path / "g.safetensors")
    cfg = SynthesizerTrainConfig(source="verse", verse_root=str(tree), manifest=str(manifest), network=TINY,
                                 calibration_studies=1, output=str(weights))
    with pytest.raises(InputError, match="got 9"):  # the "val" study: 3 healthy vertebrae
        calibrate_synthesizer(cfg)
    with pytest.raises(InputError, match="no complete VerSe study"):
        calibrate_synthesizer(replace(cfg, calibration_splits=("test",)))
    assert "height_calibration" not in load_gan(weights)[1]  # nothing written on failure


def test_calibrate_only_and_prepare_only_are_refused_for_other_models(capsys):
    recipe = Path(__file__).resolve().parents[2] / "pipelines" / "grader.yaml"  # refused before it is read
    assert main(["train", "grader", "--config", str(recipe), "--calibrate-only"]) != 0
    assert "--calibrate-only and --prepare-only apply to the synthesizer only" in capsys.readouterr().err
    assert main(["train", "grader", "--config", str(recipe), "--prepare-only"]) != 0
    assert "apply to the synthesizer only" in capsys.readouterr().err
    twins = recipe.with_name("synthesizer_twins.yaml")
    assert main(["train", "synthesizer", "--config", str(twins), "--prepare-only", "--jobs", "0"]) != 0
    assert "--jobs must be >= 1" in capsys.readouterr().err
