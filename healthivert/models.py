"""The model files a run uses: the shipped ones, or a folder of retrained ones (``--models DIR``).

A models folder holds any of the shipped file names (what ``healthivert train`` writes, e.g.
``runs/verse2019/grader_svm.skops``); a model it lacks comes from the shipped set. Each file a
result was produced with is recorded in ``result.json`` with its SHA-256, so a grade can be
traced to the exact weights behind it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from healthivert.errors import InputError

SHIPPED_DIR = Path(__file__).resolve().parent / "models"
#: role -> file name, in the shipped folder and in a user's models folder
FILES: dict[str, str] = {
    "grader_prior": "grader_svm.skops",
    "grader_gan": "grader_svm_gan.skops",
    "synthesizer_gan": "synthesizer_gan.safetensors",
    "segmenter": "segmenter_unet.safetensors",
}


@dataclass(frozen=True)
class ModelSet:
    """Where each model is read from: ``folder`` first (when given), then the shipped set."""

    folder: Path | None = None

    def path(self, role: str) -> Path:
        """The file for ``role`` (a key of :data:`FILES`)."""
        name = FILES[role]
        if self.folder is not None and (self.folder / name).is_file():
            return self.folder / name
        return SHIPPED_DIR / name

    def grader(self, synthesizer: str) -> Path:
        """The SVM trained on features measured through ``synthesizer``."""
        return self.path("grader_gan" if synthesizer == "gan" else "grader_prior")


def model_set(folder: str | Path | None) -> ModelSet:
    """The models of ``folder`` (None: the shipped ones); a folder holding none is refused."""
    if folder is None:
        return ModelSet()
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: models folder not found")
    if not any((folder / name).is_file() for name in FILES.values()):
        raise InputError(f"{folder}: holds no model file (expected any of {', '.join(FILES.values())})")
    return ModelSet(folder)


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def describe_model(path: str | Path) -> dict:
    """What ``result.json`` records of a model file: path, SHA-256, and whether it is shipped."""
    path = Path(path).resolve()
    return {"file": str(path), "sha256": sha256_file(path), "shipped": path.parent == SHIPPED_DIR}


def models_summary(models: dict[str, dict] | None) -> str:
    """One line naming the model files behind a result (``result.json``'s ``models``), for the
    viewer and the report: ``grader grader_svm.skops (shipped, sha256 c809c877...)``."""
    if not models:
        return "models: none (rule grader, prior synthesizer)"
    parts = [f"{role} {Path(m['file']).name} ({'shipped' if m.get('shipped') else m['file']}, "
             f"sha256 {m['sha256'][:12]})" for role, m in models.items()]
    return "models: " + "; ".join(parts)
