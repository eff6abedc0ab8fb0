"""The phantom's spine: a curved centreline (kyphosis, lordosis, scoliosis) and the rigid
local frame of every vertebra placed along it (RAS world mm)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Centreline:
    """A smooth 3-D curve sampled densely; ``points`` run from cranial to caudal (RAS mm)."""

    points: np.ndarray  # (n, 3)
    arc_mm: np.ndarray  # (n,) cumulative arc length from the first point

    def at(self, s: float) -> np.ndarray:
        """Position (mm) at arc length ``s``."""
        return np.array([np.interp(s, self.arc_mm, self.points[:, k]) for k in range(3)])

    def superior_tangent(self, s: float, ds: float = 1.0) -> np.ndarray:
        """Unit tangent at ``s`` pointing cranially."""
        t = self.at(s - ds) - self.at(s + ds)
        return t / np.linalg.norm(t)

    def xy_at_z(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The curve's R and A coordinates at superior coordinates ``z`` (mm)."""
        order = np.argsort(self.points[:, 2])
        pts = self.points[order]
        return np.interp(z, pts[:, 2], pts[:, 0]), np.interp(z, pts[:, 2], pts[:, 1])


def make_centreline(
    length_mm: float, kyphosis_mm: float, junction: float, scoliosis_mm: float,
    scoliosis_wavelength_mm: float, phase: float, step_mm: float = 0.25,
) -> Centreline:
    """A spine-like curve of at least ``length_mm`` arc length.

    The antero-posterior offset is a half sine: posterior (kyphotic) above ``junction``
    (a fraction of the length, the thoracolumbar junction) and anterior (lordotic) below;
    scoliosis is a lateral sine of amplitude ``scoliosis_mm``.
    """
    z = -np.arange(0.0, 1.4 * length_mm, step_mm)
    t = -z / length_mm
    y = kyphosis_mm * np.sin(np.pi * np.clip(t - junction, -1, 1))
    x = scoliosis_mm * np.sin(2 * np.pi * (-z) / scoliosis_wavelength_mm + phase)
    pts = np.stack([x, y, z], axis=1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return Centreline(pts, arc)


def local_frame(tangent_superior: np.ndarray, axial_rotation_deg: float) -> np.ndarray:
    """3x3 matrix whose columns are the vertebra's (right, anterior, superior) unit axes.

    The anterior axis is the world anterior direction projected perpendicular to the spine
    axis (so frames do not twist along the curve), then rotated about the axis.
    """
    si = tangent_superior / np.linalg.norm(tangent_superior)
    ap = np.array([0.0, 1.0, 0.0]) - si[1] * si
    ap /= np.linalg.norm(ap)
    lr = np.cross(ap, si)
    th = np.deg2rad(axial_rotation_deg)
    ap, lr = np.cos(th) * ap + np.sin(th) * lr, np.cos(th) * lr - np.sin(th) * ap
    return np.stack([lr, ap, si], axis=1)
