"""A small phantom cohort in the VerSe layout, written once for the batch tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthivert.phantom import PhantomConfig, write_cohort

# Three vertebrae at 2 mm slices: a few seconds per study with the rule grader.
SMALL_CFG = PhantomConfig(top="T12", bottom="L2", slice_mm=2.0)
N_STUDIES = 4


@pytest.fixture(scope="session")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A VerSe tree of four phantom studies (sub-phantom0100 .. 0103), three vertebrae each."""
    root = tmp_path_factory.mktemp("batch_cohort")
    write_cohort(root, N_STUDIES, 100, SMALL_CFG)
    return root
