"""The spine curve: a smooth spline through vertebral centroids with twist-free frames.

The curve is a cubic spline (``scipy.interpolate.make_interp_spline``) through the
centroids ordered cranial to caudal, parametrised by chord length and extended
``EXTENSION_MM`` straight past each end, as the HealthiVert-GAN paper's straightening does.
Frames along it are rotation-minimising (the double-reflection method of Wang et al., 2008:
no library we use provides it), started from the patient's anterior direction, so they do
not twist along the spine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import make_interp_spline

from healthivert.labels import sort_cranial_to_caudal

EXTENSION_MM = 20.0
STEP_MM = 0.5


@dataclass(frozen=True)
class SpineCurve:
    """A curve sampled every ``STEP_MM`` of arc length, cranial to caudal, with frames.

    Attributes:
        points: (n, 3) RAS positions (mm).
        arc_mm: (n,) arc length of each point.
        frames: (n, 3, 3) columns (right, anterior, superior) unit vectors at each point.
        anchors: VerSe label -> arc length of its centroid's projection on the curve (mm).
    """

    points: np.ndarray
    arc_mm: np.ndarray
    frames: np.ndarray
    anchors: dict[int, float]

    def project(self, point: np.ndarray) -> float:
        """Arc length (mm) of the curve point nearest to ``point``."""
        return float(self.arc_mm[np.argmin(np.linalg.norm(self.points - point, axis=1))])

    def interpolate(self, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (..., 3) and frames (..., 3, 3) at arc lengths ``s`` (linear between samples)."""
        s = np.clip(np.asarray(s, dtype=float), self.arc_mm[0], self.arc_mm[-1])
        idx = np.clip(np.searchsorted(self.arc_mm, s) - 1, 0, len(self.arc_mm) - 2)
        w = ((s - self.arc_mm[idx]) / (self.arc_mm[idx + 1] - self.arc_mm[idx]))[..., None]
        pos = (1 - w) * self.points[idx] + w * self.points[idx + 1]
        fr = (1 - w[..., None]) * self.frames[idx] + w[..., None] * self.frames[idx + 1]
        fr /= np.linalg.norm(fr, axis=-2, keepdims=True)
        return pos, fr


def _rotation_minimising_frames(points: np.ndarray, up: np.ndarray, start: int = 0) -> np.ndarray:
    """Double-reflection rotation-minimising frames (Wang et al. 2008) along a polyline.

    ``up`` is the superior tangent at each point. At ``start`` the anterior vector is the
    patient's anterior (0, 1, 0) made perpendicular to the tangent; frames are carried from
    there towards both ends.
    """
    if start > 0:
        below = _rotation_minimising_frames(points[start:], up[start:])
        above = _rotation_minimising_frames(points[start::-1], up[start::-1])
        return np.concatenate([above[::-1], below[1:]])
    n = len(points)
    frames = np.empty((n, 3, 3))
    ant = np.array([0.0, 1.0, 0.0]) - up[0][1] * up[0]
    if np.linalg.norm(ant) < 1e-6:  # a spine running antero-posteriorly: pick any normal
        ant = np.cross(up[0], [1.0, 0.0, 0.0])
    ant /= np.linalg.norm(ant)
    for i in range(n):
        if i > 0:
            v1 = points[i] - points[i - 1]
            c1 = v1 @ v1
            if c1 > 1e-12:
                a_l = ant - (2 / c1) * (v1 @ ant) * v1
                t_l = up[i - 1] - (2 / c1) * (v1 @ up[i - 1]) * v1
                v2 = up[i] - t_l
                c2 = v2 @ v2
                ant = a_l - (2 / c2) * (v2 @ a_l) * v2 if c2 > 1e-12 else a_l
            ant = ant - (ant @ up[i]) * up[i]
            ant /= np.linalg.norm(ant)
        frames[i] = np.stack([np.cross(ant, up[i]), ant, up[i]], axis=1)
    return frames


def fit_spine_curve(centroids: dict[int, np.ndarray]) -> SpineCurve:
    """Fit the spine curve through centroids ``{VerSe label: RAS mm}``.

    One centroid gives a straight superior-inferior line through it; two, a straight line;
    three, a quadratic; four or more, a cubic spline.
    """
    if not centroids:
        raise ValueError("no centroids to fit a spine curve through")
    labels = sort_cranial_to_caudal(centroids)
    pts = np.array([centroids[k] for k in labels], dtype=float)
    if len(pts) == 1:
        pts = np.vstack([pts[0] + [0, 0, 1.0], pts[0], pts[0] - [0, 0, 1.0]])
        knots_labels = [None, labels[0], None]
    else:
        knots_labels = labels
    chord = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    if np.any(np.diff(chord) < 1e-6):
        raise ValueError("two centroids coincide; cannot fit a spine curve")
    spline = make_interp_spline(chord, pts, k=min(3, len(pts) - 1))
    t = np.linspace(0.0, chord[-1], max(int(np.ceil(chord[-1] / 0.25)), 2) + 1)
    dense = spline(t)
    d_first, d_last = spline(t[0], 1), spline(t[-1], 1)
    d_first, d_last = d_first / np.linalg.norm(d_first), d_last / np.linalg.norm(d_last)
    ext = np.arange(0.25, EXTENSION_MM + 1e-9, 0.25)
    dense = np.vstack([dense[0] - ext[::-1, None] * d_first, dense, dense[-1] + ext[:, None] * d_last])
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
    s = np.arange(0.0, arc[-1], STEP_MM)
    points = np.stack([np.interp(s, arc, dense[:, k]) for k in range(3)], axis=1)
    up = -np.gradient(points, axis=0)  # the curve runs caudally; the superior tangent is minus
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    # start mid-spine, where the curve is best supported, and carry the frame to both ends
    frames = _rotation_minimising_frames(points, up, start=len(points) // 2)
    anchors = {}
    for label, c in zip(knots_labels, pts):
        if label is not None:
            anchors[label] = float(s[np.argmin(np.linalg.norm(points - c, axis=1))])
    return SpineCurve(points, s, frames, anchors)
