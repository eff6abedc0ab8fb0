"""benchmarks/mask_agreement.py: which level offset pairs two masks' bodies, on known sizes."""

from __future__ import annotations

import pytest

from benchmarks.mask_agreement import body_sizes, offset_rows
from tests.geometry.builders import box_mask


def _heights(row: str) -> float:
    return float(row.strip("|").split("|")[-1])


def test_the_offset_of_a_shifted_labelling_matches_its_heights():
    """The second mask holds the first's bodies one level lower (its L1 is the first's T12):
    offset +1 pairs them exactly; offset 0 pairs each with its neighbour."""
    first = {19: (50.0, 40.0, 22.0), 20: (52.0, 40.0, 25.0), 21: (54.0, 40.0, 28.0)}
    second = {lab + 1: size for lab, size in first.items()}
    rows = {int(r.split("|")[1]): r for r in offset_rows(first, second, range(-1, 2))}
    assert _heights(rows[1]) == pytest.approx(0.0)
    assert _heights(rows[0]) == pytest.approx(3.0)  # 25 vs 22 and 28 vs 25
    assert "3 (T12-L2 as L1-L3)" in rows[1]


def test_body_sizes_of_box_vertebrae(tmp_path):
    """Three stacked box bodies 30 mm wide, 24 mm deep and 20 mm tall: each measures so
    (within a voxel), the top and bottom ones included (the view leaves them whole)."""
    from healthivert.io.images import write_volume

    boxes = {20 + k: (slice(15, 45), slice(18, 42), slice(10 + 28 * k, 30 + 28 * k)) for k in range(3)}
    path = tmp_path / "boxes.nii.gz"
    write_volume(box_mask(boxes, (60, 60, 100)), path)
    sizes = body_sizes(path)
    assert sorted(sizes) == [20, 21, 22]
    for width, depth, height in sizes.values():
        assert width == pytest.approx(30.0, abs=1.5)
        assert depth == pytest.approx(24.0, abs=1.5)
        assert height == pytest.approx(20.0, abs=1.0)
