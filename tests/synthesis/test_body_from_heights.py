"""The pseudo-healthy body mask drawn from column heights (``synthesis.base``)."""

from __future__ import annotations

import numpy as np

from healthivert.synthesis.base import body_from_heights, column_middles


def _box(n_si: int = 40) -> tuple[np.ndarray, np.ndarray]:
    body = np.zeros((6, 8, n_si), dtype=bool)
    body[1:5, 1:7, 10:30] = True  # 20 samples tall, middle at sample 19.5
    return body, np.arange(n_si) * 0.5


def test_a_rim_past_the_waist_is_centred_with_the_body():
    """The anterior-most column holds only the lower endplate's rim (an osteophyte past the
    concave wall): its pseudo-healthy column stands in line with the body, not around the rim."""
    body, si = _box()
    body[1:5, 7, 10:14] = True  # a rim lip in front, 4 samples at the bottom
    mid = column_middles(body, si)
    np.testing.assert_allclose(mid[1:5, 1:7], 9.75)
    np.testing.assert_allclose(mid[1:5, 7], 9.75)
    heights = np.where(body.any(axis=2), 10.0, 0.0)  # a 10 mm healthy column everywhere
    healthy = body_from_heights(heights, body, si)
    rows = np.flatnonzero(healthy[2, 7])
    assert (rows[0], rows[-1]) == (10, 29), rows


def test_a_tilted_body_keeps_each_full_column_centre():
    body, si = _box()
    body[:] = False
    for j in range(1, 7):
        body[1:5, j, 10 + j: 30 + j] = True  # the body rises by one sample per AP column
    mid = column_middles(body, si)
    np.testing.assert_allclose(mid[2, 1:7], (19.5 + np.arange(1, 7)) * 0.5)
    healthy = body_from_heights(np.where(body.any(axis=2), 10.0, 0.0), body, si)
    np.testing.assert_array_equal(healthy, body)
