"""Shared set-up of the segmentation tests on real data."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from healthivert.io.images import load_ct, load_mask
from tests.helpers import shared_path


@pytest.fixture
def verse007_segmenting(monkeypatch):
    """sub-verse007 (T9-L3, 1 x 1 x 3 mm) to segment with the shipped weights, the network run
    once: ``infer`` (its ``predict_probabilities`` patched to return that run's output, so a
    test may patch the steps after it and segment again), ``ct``, the experts' ``truth`` labels,
    ``model`` and ``cfg``."""
    import healthivert.segmentation.infer as infer
    from healthivert.segmentation import DEFAULT_WEIGHTS, load_weights

    root = shared_path("real/verse2019_subset")
    ct = load_ct(root / "rawdata/sub-verse007/sub-verse007_ct.nii.gz")
    truth = load_mask(root / "derivatives/sub-verse007/sub-verse007_seg-vert_msk.nii.gz").array
    model, cfg, _ = load_weights(DEFAULT_WEIGHTS)
    prob = infer.predict_probabilities(model, infer.preprocess(ct, cfg), cfg)
    monkeypatch.setattr(infer, "predict_probabilities", lambda *_: prob)
    return SimpleNamespace(infer=infer, ct=ct, truth=truth, model=model, cfg=cfg)
