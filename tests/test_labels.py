"""VerSe label names and order, and the TotalSegmentator v2 mapping."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.labels import (
    VERTEBRA_LABELS,
    looks_like_totalseg,
    sort_cranial_to_caudal,
    totalseg_to_verse,
    verse_label,
    verse_name,
)

TOTALSEG_CASES = [
    (26, 26, "S1"),
    (27, 24, "L5"),
    (31, 20, "L1"),
    (32, 19, "T12"),
    (43, 8, "T1"),
    (44, 7, "C7"),
    (50, 1, "C1"),
]


@pytest.mark.parametrize("totalseg, verse, name", TOTALSEG_CASES)
def test_totalseg_to_verse(totalseg, verse, name):
    mapped = totalseg_to_verse(np.full((2, 2, 2), totalseg, np.uint8))
    assert mapped.dtype == np.uint8
    assert np.all(mapped == verse)
    assert verse_name(verse) == name


def test_totalseg_to_verse_on_a_mixed_mask_clears_other_classes():
    ts = np.array([[[0, 5, 26, 27], [31, 32, 43, 44]], [[50, 51, 117, 25], [28, 29, 30, 33]]], np.uint8)
    expected = np.array([[[0, 0, 26, 24], [20, 19, 8, 7]], [[1, 0, 0, 0], [23, 22, 21, 18]]], np.uint8)
    np.testing.assert_array_equal(totalseg_to_verse(ts), expected)


@pytest.mark.parametrize(
    "label, name",
    [(1, "C1"), (7, "C7"), (8, "T1"), (19, "T12"), (20, "L1"), (24, "L5"), (25, "L6"), (26, "S1"), (28, "T13")],
)
def test_verse_name_and_label(label, name):
    assert verse_name(label) == name
    assert verse_label(name) == label
    assert verse_label(name.lower()) == label


@pytest.mark.parametrize("bad", [0, 27, 29, 99, -1])
def test_verse_name_rejects_unknown_labels(bad):
    with pytest.raises(ValueError, match=f"{bad} is not a VerSe vertebra label"):
        verse_name(bad)


@pytest.mark.parametrize("bad", ["L7", "T14", "X1", ""])
def test_verse_label_rejects_unknown_names(bad):
    with pytest.raises(ValueError, match=f"unknown vertebra name {bad!r}"):
        verse_label(bad)


@pytest.mark.parametrize(
    "labels, expected",
    [
        ([20, 19, 28], [19, 28, 20]),  # T13 between T12 and L1
        ([26, 25, 24], [24, 25, 26]),  # L6 between L5 and the sacrum
        ([26, 25, 20, 28, 19, 24, 8, 1], [1, 8, 19, 28, 20, 24, 25, 26]),
        ([np.uint8(21), 20.0], [20, 21]),
        ([], []),
    ],
)
def test_sort_cranial_to_caudal(labels, expected):
    assert sort_cranial_to_caudal(labels) == expected


def test_vertebra_labels_leave_out_the_sacrum():
    assert 26 not in VERTEBRA_LABELS
    assert {1, 19, 20, 25, 28} <= VERTEBRA_LABELS


@pytest.mark.parametrize(
    "labels, expected",
    [
        ({26, 27, 28, 29, 30, 31, 32, 33}, True),  # the TotalSegmentator example
        ({31, 32}, True),
        ({27}, True),  # only L5: 27 is no VerSe label
        ({16, 17, 18, 19, 20, 21, 22, 23, 24}, False),  # verse007
        ({19, 28, 20}, False),  # VerSe with T13
        ({24, 25, 26}, False),  # VerSe with L6 and sacrum
        ({0}, False),
        (set(), False),
    ],
)
def test_looks_like_totalseg(labels, expected):
    assert looks_like_totalseg(labels) is expected
