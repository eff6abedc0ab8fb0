"""A small results folder made once per test session: a CT + mask study and a mask-only study.

Both ``tests/review`` and ``tests/app`` use it (through their conftest); it is built once and
shared, and tests copy it before changing anything.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthivert.phantom import make_phantom, write_phantom
from healthivert.pipeline import RunOptions, run_study
from tests.conftest import FRACTURED_CFG

CT_STUDY, MASK_STUDY = "sub-small", "sub-maskonly"
_BUILT: dict[str, Path] = {}


@dataclass(frozen=True)
class ResultsCopy:
    """A private copy of the results folder (and the study inputs it records)."""

    root: Path
    db_url: str

    @property
    def db_path(self) -> Path:
        return Path(self.db_url.removeprefix("sqlite:///"))


def build_results(base: Path) -> Path:
    """Phantom T12 (grade 2), L1 (3), L2 (1), graded by the rule grader, with and without CT."""
    if "root" in _BUILT:
        return _BUILT["root"]
    study = make_phantom(FRACTURED_CFG, 5, subject=CT_STUDY)
    paths = write_phantom(study, base / "phantom")
    root = base / "results"
    run_study(root / CT_STUDY, mask_path=paths["mask"], ct_path=paths["ct"], centroids_path=paths["centroids"],
              options=RunOptions(grader="rule"))
    run_study(root / MASK_STUDY, mask_path=paths["mask"], options=RunOptions(grader="rule"), study_id=MASK_STUDY)
    _BUILT["root"] = root
    return root


@pytest.fixture(scope="session")
def shared_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's results folder; read-only for tests (copy it with ``results``)."""
    return build_results(tmp_path_factory.mktemp("review_results"))


@pytest.fixture
def results(shared_results: Path, tmp_path: Path) -> ResultsCopy:
    """A private copy of the results folder and a fresh review database."""
    root = tmp_path / "results"
    shutil.copytree(shared_results, root, symlinks=True)
    return ResultsCopy(root, f"sqlite:///{tmp_path / 'reviews.sqlite'}")


def algorithm_grades(root: Path, study_id: str) -> dict[str, int | None]:
    """Vertebra name -> the algorithm's grade in a study's result.json."""
    import json

    result = json.loads((root / study_id / "result.json").read_text(encoding="utf-8"))
    return {v["name"]: v["genant_grade"] for v in result["vertebrae"]}


def minimal_result(study_id: str) -> str:
    """The text of the smallest result.json that follows the result contract (no vertebrae)."""
    import json

    return json.dumps({"study_id": study_id, "inputs": {"mask": None, "ct": None}, "software_version": "0",
                       "vertebrae": []})
