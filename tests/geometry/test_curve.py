"""The spine curve (healthivert/geometry/curve.py): arc lengths, anchors and twist-free frames."""

from __future__ import annotations

import numpy as np
import pytest

from healthivert.geometry.curve import EXTENSION_MM, STEP_MM, SpineCurve, fit_spine_curve

RIGHT, ANTERIOR, SUPERIOR = np.eye(3)


def _index(curve: SpineCurve, label: int) -> int:
    return int(np.argmin(np.abs(curve.arc_mm - curve.anchors[label])))


def _assert_orthonormal_right_handed(frames: np.ndarray) -> None:
    gram = np.einsum("nij,nik->njk", frames, frames)
    np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), gram.shape), atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(frames), 1.0, atol=1e-9)


def _vertical(x: float, y: float, z_top: float, labels: list[int], gap_mm: float) -> dict[int, np.ndarray]:
    return {lab: np.array([x, y, z_top - i * gap_mm]) for i, lab in enumerate(labels)}


@pytest.mark.parametrize(
    "centroids",
    [
        _vertical(5.0, -3.0, 100.0, [18, 19, 20, 21], 30.0),  # a cubic spline through four
        _vertical(0.0, 0.0, 0.0, [19, 20, 21], 27.5),  # a quadratic through three
        _vertical(-12.0, 40.0, 7.0, [20, 21], 31.0),  # a line through two
        _vertical(1.0, 2.0, 3.0, [20], 0.0),  # one: a vertical line through it
    ],
    ids=["four", "three", "two", "one"],
)
def test_straight_vertical_spine_has_identity_frames_and_exact_anchors(centroids):
    curve = fit_spine_curve(centroids)
    labels = list(centroids)  # given cranial to caudal
    # frames are (right, anterior, superior) = the RAS axes everywhere
    np.testing.assert_allclose(curve.frames, np.broadcast_to(np.eye(3), curve.frames.shape), atol=1e-9)
    top = centroids[labels[0]]
    np.testing.assert_allclose(curve.points[:, :2], np.broadcast_to(top[:2], (len(curve.points), 2)), atol=1e-9)
    np.testing.assert_allclose(np.diff(curve.arc_mm), STEP_MM)
    # arc length grows caudally, one mm per mm of descent
    start = curve.points[0, 2]
    np.testing.assert_allclose(curve.points[:, 2], start - curve.arc_mm, atol=1e-6)
    for lab in labels:
        # the curve passes through each centroid at its anchor
        assert curve.anchors[lab] == pytest.approx(start - centroids[lab][2], abs=1e-6)
        assert curve.project(centroids[lab] + [3.0, 3.0, 0.0]) == pytest.approx(curve.anchors[lab])
    if len(labels) > 1:
        # it starts EXTENSION_MM above the first centroid and ends EXTENSION_MM below the last
        assert curve.anchors[labels[0]] == pytest.approx(EXTENSION_MM, abs=1e-6)
        span = top[2] - centroids[labels[-1]][2]
        assert curve.arc_mm[-1] == pytest.approx(2 * EXTENSION_MM + span, abs=STEP_MM)
    else:
        # one centroid: a short vertical segment through it, extended both ways
        assert curve.anchors[labels[0]] >= EXTENSION_MM
        assert curve.arc_mm[-1] >= 2 * EXTENSION_MM


def test_tilted_straight_spine_rotates_about_the_right_axis():
    """A straight spine leaning 20 degrees forward: superior along it, right stays (1, 0, 0)."""
    tilt = np.deg2rad(20.0)
    up = np.array([0.0, -np.sin(tilt), np.cos(tilt)])  # the top leans posteriorly
    centroids = {lab: -i * 30.0 * up for i, lab in enumerate([18, 19, 20, 21, 22])}
    curve = fit_spine_curve(centroids)
    expected = np.stack([RIGHT, np.cross(up, RIGHT), up], axis=1)  # anterior = up x right
    assert expected[1, 1] > 0.9  # still faces the patient's front
    np.testing.assert_allclose(curve.frames, np.broadcast_to(expected, curve.frames.shape), atol=1e-9)
    for i, lab in enumerate(centroids):
        assert curve.anchors[lab] == pytest.approx(EXTENSION_MM + 30.0 * i, abs=1e-6)


def _sagittal_arc(radius: float = 300.0, n: int = 7, gap_mm: float = 30.0):
    """Centroids on a circle in the sagittal (y-z) plane, bowing anteriorly, cranial first."""
    phi = np.arange(n)[::-1] * gap_mm / radius
    phi -= phi.mean()
    labels = list(range(15, 15 + n))
    centre = np.array([0.0, -radius, 0.0])
    points = {lab: centre + radius * np.array([0.0, np.cos(p), np.sin(p)]) for lab, p in zip(labels, phi)}
    return points, dict(zip(labels, phi))


def test_curved_spine_frames_follow_the_tangent_without_twist():
    radius = 300.0
    centroids, phi = _sagittal_arc(radius)
    curve = fit_spine_curve(centroids)
    frames = curve.frames
    _assert_orthonormal_right_handed(frames)
    # superior axis = the curve's cranial tangent at every sample
    tangent = curve.points[:-2] - curve.points[2:]
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    assert np.einsum("ni,ni->n", frames[1:-1, :, 2], tangent).min() > 1 - 1e-6
    # a sagittal curve never turns the right axis (the binormal): no twist about the spine
    np.testing.assert_allclose(frames[:, :, 0], np.broadcast_to(RIGHT, (len(frames), 3)), atol=1e-9)
    for lab, p in phi.items():
        frame = frames[_index(curve, lab)]
        expected = np.stack([RIGHT, [0.0, np.cos(p), np.sin(p)], [0.0, -np.sin(p), np.cos(p)]], axis=1)
        angle = np.degrees(np.arccos(np.clip((np.trace(frame.T @ expected) - 1) / 2, -1, 1)))
        assert angle < 0.5, (lab, angle)
    # anchors: the arc length of each centroid along the circle (exact for a 1-radian-per-300-mm arc)
    first = min(phi, key=lambda lab: -phi[lab])
    for lab, p in phi.items():
        assert curve.anchors[lab] == pytest.approx(EXTENSION_MM + radius * (phi[first] - p), abs=0.5)


def test_lateral_curve_keeps_anterior_fixed():
    """Scoliosis in the coronal plane: the anterior vector is the binormal and stays (0, 1, 0)."""
    radius, gap = 250.0, 30.0
    phi = (np.arange(6)[::-1] - 2.5) * gap / radius
    centroids = {15 + i: radius * np.array([np.cos(p) - 1.0, 0.0, np.sin(p)]) for i, p in enumerate(phi)}
    curve = fit_spine_curve(centroids)
    _assert_orthonormal_right_handed(curve.frames)
    np.testing.assert_allclose(curve.frames[:, :, 1], np.broadcast_to(ANTERIOR, (len(curve.frames), 3)), atol=1e-9)
    assert np.abs(curve.frames[:, 0, 2]).max() > 0.2  # the superior axis does bend (left-right)


def test_frames_are_rotation_minimising_on_a_helix():
    """On a non-planar curve the anterior vector turns only towards the tangent, never about it:
    its change along the right axis vanishes (a Frenet frame would twist by the torsion)."""
    r, c = 30.0, 60.0
    theta = np.linspace(0.0, 2.0, 8)
    centroids = {14 + i: np.array([r * np.cos(t), r * np.sin(t), -c * t]) for i, t in enumerate(theta)}
    curve = fit_spine_curve(centroids)
    frames = curve.frames
    _assert_orthonormal_right_handed(frames)
    d_anterior = np.diff(frames[:, :, 1], axis=0)
    twist = np.einsum("ni,ni->n", d_anterior, frames[:-1, :, 0])
    torsion_step = c / (r * r + c * c) * STEP_MM  # what a Frenet frame would turn per sample
    assert np.abs(twist).max() < 1e-3 * torsion_step
    assert np.linalg.norm(d_anterior, axis=1).max() > 0.3 * torsion_step  # it does move


def test_start_orientation_is_anterior_even_when_the_first_centroids_are_odd():
    """Frames start mid-spine, from the patient's anterior: two zig-zagging cranial centroids
    (off both anteriorly and laterally) must not twist the well-aligned rest of the spine."""
    centroids = _vertical(0.0, 0.0, 0.0, [15, 16, 17, 18, 19, 20, 21], 30.0)
    centroids[15] = np.array([15.0, 12.0, 0.0])
    centroids[16] = np.array([-10.0, -8.0, -30.0])
    curve = fit_spine_curve(centroids)
    _assert_orthonormal_right_handed(curve.frames)
    for lab in (19, 20, 21):
        frame = curve.frames[_index(curve, lab)]
        assert frame[:, 0] @ RIGHT > 0.999, (lab, frame)
        assert frame[:, 1] @ ANTERIOR > 0.999, (lab, frame)
    # and every vertebra's anterior axis still points to the front half
    for lab in centroids:
        assert curve.frames[_index(curve, lab)][1, 1] > 0.5


@pytest.mark.parametrize(
    "centroids, message",
    [
        ({}, "no centroids"),
        ({19: np.zeros(3), 20: np.zeros(3), 21: np.array([0.0, 0.0, -30.0])}, "coincide"),
    ],
)
def test_fit_spine_curve_rejects_bad_centroids(centroids, message):
    with pytest.raises(ValueError, match=message):
        fit_spine_curve(centroids)


def test_interpolate_between_samples_is_linear_and_keeps_unit_axes():
    centroids, _ = _sagittal_arc()
    curve = fit_spine_curve(centroids)
    s = np.array([curve.arc_mm[10] + 0.25, curve.arc_mm[0] - 5.0, curve.arc_mm[-1] + 5.0])
    pos, frames = curve.interpolate(s)
    np.testing.assert_allclose(pos[0], (curve.points[10] + curve.points[11]) / 2, atol=1e-9)
    np.testing.assert_allclose(pos[1], curve.points[0])  # clipped to the ends
    np.testing.assert_allclose(pos[2], curve.points[-1])
    np.testing.assert_allclose(np.linalg.norm(frames, axis=-2), 1.0, atol=1e-12)
