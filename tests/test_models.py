"""Retrained models in use: ``--models DIR`` on run / segment, and the model files (with their
SHA-256) recorded in result.json."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest

from healthivert.models import SHIPPED_DIR, model_set, models_summary
from tests.test_cli_run import assert_refused, run_cli, small_inputs  # noqa: F401  (fixture)


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _grades(result: dict) -> dict[str, dict]:
    return {v["name"]: v.get("probabilities") for v in result["vertebrae"]}


def test_run_grades_with_the_models_folders_svm_and_records_it(small_inputs, tmp_path):  # noqa: F811
    """A models folder's SVM is the one that grades (another model: other probabilities), and
    result.json names it with its SHA-256; without --models the shipped SVM is recorded."""
    models = tmp_path / "models"
    models.mkdir()
    retrained = shutil.copy(SHIPPED_DIR / "grader_svm_gan.skops", models / "grader_svm.skops")
    runs = {}
    for name, extra in {"shipped": [], "retrained": ["--models", models]}.items():
        out = tmp_path / name
        rc, _, err = run_cli("run", "--mask", small_inputs["mask"], "--out", out, *extra)
        assert rc == 0, err
        runs[name] = json.loads((out / "result.json").read_text())
    shipped, mine = runs["shipped"]["models"]["grader"], runs["retrained"]["models"]["grader"]
    assert shipped == {"file": str(SHIPPED_DIR / "grader_svm.skops"),
                       "sha256": _sha(SHIPPED_DIR / "grader_svm.skops"), "shipped": True}
    assert mine == {"file": str(retrained.resolve()), "sha256": _sha(retrained), "shipped": False}
    assert _grades(runs["shipped"]) != _grades(runs["retrained"])
    # the rule grader uses no model file
    rc, _, err = run_cli("run", "--mask", small_inputs["mask"], "--out", tmp_path / "rule", "--grader", "rule")
    assert rc == 0 and json.loads((tmp_path / "rule" / "result.json").read_text())["models"] == {}


def test_a_models_folder_falls_back_to_shipped_files_it_lacks(tmp_path):
    (tmp_path / "grader_svm.skops").write_bytes(b"x")
    models = model_set(tmp_path)
    assert models.grader("prior") == tmp_path / "grader_svm.skops"
    assert models.grader("gan") == SHIPPED_DIR / "grader_svm_gan.skops"
    assert models.path("segmenter") == SHIPPED_DIR / "segmenter_unet.safetensors"


@pytest.mark.parametrize("command", ["run", "segment"])
@pytest.mark.parametrize("folder, fragment", [("missing", "models folder not found"),
                                              ("empty", "holds no model file")])
def test_a_bad_models_folder_is_refused_in_one_line(small_inputs, tmp_path, command, folder, fragment):  # noqa: F811
    (tmp_path / "empty").mkdir()
    args = ["--mask", small_inputs["mask"]] if command == "run" else ["--ct", small_inputs["far_ct"]]
    rc, out, err = run_cli(command, *args, "--out", tmp_path / "out.nii.gz", "--models", tmp_path / folder)
    assert_refused(rc, out, err, fragment)
    assert not (tmp_path / "out.nii.gz").exists()


def test_models_summary_names_files_and_digests():
    line = models_summary({"grader": {"file": "/x/models/grader_svm.skops", "sha256": "ab" * 32, "shipped": True},
                           "synthesizer": {"file": "/runs/v/synthesizer_gan.safetensors", "sha256": "cd" * 32,
                                           "shipped": False}})
    assert line == ("models: grader grader_svm.skops (shipped, sha256 abababababab); synthesizer "
                    "synthesizer_gan.safetensors (/runs/v/synthesizer_gan.safetensors, sha256 cdcdcdcdcdcd)")
    assert "none" in models_summary({})
