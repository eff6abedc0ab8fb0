"""Shared fixtures: where the reference data lives, and small phantom studies made once per session.

Real data is read from ``../shared/data`` next to the project root and never copied into the
repository; tests that need it skip with the reason when it is absent (a fresh clone).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from healthivert.phantom import FractureSpec, PhantomConfig, PhantomStudy, make_phantom, write_phantom
from tests.helpers import shared_path

#: the fixtures below that read ../shared/data: a test that uses one must be marked ``realdata``
REAL_DATA_FIXTURES = frozenset({"dicom_dir", "verse007_mask_path", "verse007_ctd_path", "totalseg_ct_path",
                                "totalseg_mask_path"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run a test that takes a real-data fixture without the ``realdata`` mark, so that
    ``-m "not realdata"`` leaves out every test that reads ../shared/data."""
    unmarked = [item.nodeid for item in items if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ()))
                and not item.get_closest_marker("realdata")]
    if unmarked:
        raise pytest.UsageError("tests reading ../shared/data without @pytest.mark.realdata: " + ", ".join(unmarked))


@pytest.fixture(scope="session")
def dicom_dir() -> Path:
    return shared_path("real/totalseg_dicom")


@pytest.fixture(scope="session")
def verse007_mask_path() -> Path:
    return shared_path("real/verse007/sub-verse007_seg-vert_msk.nii.gz")


@pytest.fixture(scope="session")
def verse007_ctd_path() -> Path:
    return shared_path("real/verse007/sub-verse007_seg-subreg_ctd.json")


@pytest.fixture(scope="session")
def totalseg_ct_path() -> Path:
    return shared_path("real/totalseg_example/ct.nii.gz")


@pytest.fixture(scope="session")
def totalseg_mask_path() -> Path:
    return shared_path("real/totalseg_example/vertebrae_totalsegmentator.nii.gz")


@dataclass(frozen=True)
class WrittenPhantom:
    """A phantom study, its config and seed, and the files it was written to."""

    cfg: PhantomConfig
    seed: int
    study: PhantomStudy
    root: Path
    paths: dict[str, Path]

    @property
    def truth(self) -> dict:
        return json.loads(self.paths["truth"].read_text(encoding="utf-8"))


# Small studies (three vertebrae, thin slices) keep generation near a second each.
FRACTURED_CFG = PhantomConfig(
    top="T12", bottom="L2", slice_mm=1.25, in_plane_mm=0.8, orientation="IPL",
    fractures=(FractureSpec("T12", 2, "wedge"), FractureSpec("L1", 3, "crush"),
               FractureSpec("L2", 1, "biconcave")),
)
RANDOM_CFG = PhantomConfig(top="T12", bottom="L2", slice_mm=1.0)


def _write(tmp_path_factory: pytest.TempPathFactory, name: str, cfg: PhantomConfig, seed: int) -> WrittenPhantom:
    study = make_phantom(cfg, seed)
    root = tmp_path_factory.mktemp(name)
    return WrittenPhantom(cfg, seed, study, root, write_phantom(study, root))


@pytest.fixture(scope="session")
def fractured_phantom(tmp_path_factory: pytest.TempPathFactory) -> WrittenPhantom:
    """Requested fractures of all three morphologies; written as IPL with 0.8 x 0.8 x 1.25 mm voxels."""
    return _write(tmp_path_factory, "fractured_phantom", FRACTURED_CFG, seed=5)


@pytest.fixture(scope="session")
def random_phantom(tmp_path_factory: pytest.TempPathFactory) -> WrittenPhantom:
    """Fractures, orientation and in-plane spacing drawn from the seed; 1 mm slices."""
    return _write(tmp_path_factory, "random_phantom", RANDOM_CFG, seed=11)


@pytest.fixture(scope="session", params=["fractured", "random"])
def any_phantom(request: pytest.FixtureRequest) -> WrittenPhantom:
    return request.getfixturevalue(f"{request.param}_phantom")
