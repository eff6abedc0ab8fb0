"""Vertebra geometry of the phantom, in each vertebra's local frame.

Local coordinates (mm): ``l`` towards the patient's right, ``a`` anterior, ``u`` superior
along the spine axis, origin at the vertebral body's centre. Sizes follow adult means,
interpolated between levels (T1 to L5) and jittered per study and per vertebra; the natural
sagittal wedge of each level is the published normative one, varying between bodies by the
published spread of healthy people (:mod:`healthivert.normative`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from healthivert.normative import wedge_deg, wedge_sd_deg

# level index: 0 = T1 ... 11 = T12, 12 = L1 ... 16 = L5 (VerSe labels 8..24)
_LEVELS = np.array([0, 7, 11, 12, 14, 16])
_HEIGHT = np.array([15.0, 19.0, 23.0, 24.5, 26.0, 27.0])  # body height, mm
_DEPTH = np.array([16.0, 26.0, 30.0, 31.0, 34.0, 35.0])  # body AP, mm
_WIDTH = np.array([26.0, 30.0, 38.0, 41.0, 46.0, 50.0])  # body LR, mm
_DISC = np.array([4.0, 5.0, 6.0, 8.0, 9.5, 10.5])  # disc below the vertebra, mm
_CANAL_LR = np.array([8.0, 8.5, 9.5, 10.5, 11.5, 12.5])  # canal half-width, mm
#: the body's flat posterior wall sits this fraction of its AP depth behind its centre
POSTERIOR_WALL_FRACTION = 0.42
#: A body's natural wedge is drawn from its level's published normal (mean, SD) and kept within
#: this many SDs: at 2 SD, T10's anterior third is 11 % shorter than the level's norm, short of
#: a mild fracture's 20 %, so a healthy phantom body never passes for a fractured one.
WEDGE_SD_LIMIT = 2.0


def level_index(label: int) -> int:
    """0 for T1 ... 16 for L5 (VerSe labels 8..24; T13 and L6 take their neighbours' sizes)."""
    if label == 28:
        return 11
    if label == 25:
        return 16
    if not 8 <= label <= 24:
        raise ValueError(f"phantoms model T1..L5 (VerSe 8..24); got label {label}")
    return label - 8


@dataclass(frozen=True)
class VertebraShape:
    """Healthy dimensions of one vertebra (mm) and its natural anterior wedging (fraction)."""

    label: int
    height: float
    depth: float
    width: float
    disc_below: float
    canal_lr: float
    canal_ap: float
    natural_wedge: float
    endplate_concavity: float

    @property
    def posterior_wall(self) -> float:
        """``a`` coordinate of the body's flat posterior wall (mm)."""
        return -POSTERIOR_WALL_FRACTION * self.depth

    @property
    def thoracic(self) -> bool:
        return self.label <= 19 or self.label == 28


def vertebra_shape(label: int, rng: np.random.Generator, study_scale: float = 1.0,
                   proportions: tuple[float, float, float] = (1.0, 1.0, 1.0)) -> VertebraShape:
    """Adult dimensions for a level, scaled by ``study_scale`` and jittered by a few percent;
    ``proportions`` further scales the body's (height, depth, width)."""
    i = level_index(label)

    def size(table: np.ndarray, jitter: float = 0.03) -> float:
        return float(np.interp(i, _LEVELS, table) * study_scale * (1 + rng.uniform(-jitter, jitter)))

    height, depth, width = (size(t) * k for t, k in zip((_HEIGHT, _DEPTH, _WIDTH), proportions))
    disc_below, canal_lr = size(_DISC, 0.1), size(_CANAL_LR, 0.05)
    canal_ap = float(rng.uniform(7.0, 8.5) * study_scale)
    # the level's published normative wedge and spread (healthivert.normative); as a fraction
    # of the height lost from the posterior wall to the anterior edge (see healthy_endplates)
    spread = float(np.clip(rng.normal(), -WEDGE_SD_LIMIT, WEDGE_SD_LIMIT)) * wedge_sd_deg(label, depth, height)
    wedge = np.radians(wedge_deg(label) + spread)
    wall_to_edge = 0.5 + POSTERIOR_WALL_FRACTION  # (depth / 2 - posterior_wall) / depth
    return VertebraShape(
        label=label, height=height, depth=depth, width=width, disc_below=disc_below, canal_lr=canal_lr,
        canal_ap=canal_ap,
        natural_wedge=float(depth * np.tan(wedge) / (height * wall_to_edge)),
        endplate_concavity=float(rng.uniform(0.4, 1.0)),
    )


def footprint(shape: VertebraShape, a: np.ndarray, l: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whether (a, l) lies in the body's axial footprint, and its normalised radius squared."""
    rho2 = (a / (shape.depth / 2)) ** 2 + (l / (shape.width / 2)) ** 2
    return (rho2 <= 1.0) & (a >= shape.posterior_wall), rho2


def healthy_endplates(
    shape: VertebraShape, a: np.ndarray, rho2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Superior and inferior endplate heights ``u`` (mm) of the healthy body at (a, rho2)."""
    half = shape.height / 2 * (1 - shape.natural_wedge * a / shape.depth)
    dip = shape.endplate_concavity * np.clip(1 - rho2, 0, 1)
    return half - dip, -half + dip


def in_capsule(
    lau: tuple[np.ndarray, np.ndarray, np.ndarray], p0, p1, radius: float, scale=(1.0, 1.0, 1.0)
) -> np.ndarray:
    """Whether points (l, a, u arrays, mm) lie within ``radius`` of segment p0-p1, after
    scaling each axis by ``scale``. Only points in the capsule's bounding box are evaluated."""
    s = np.asarray(scale, dtype=np.float32)
    a, b = np.asarray(p0, np.float32) * s, np.asarray(p1, np.float32) * s
    lo, hi = (np.minimum(a, b) - radius) / s, (np.maximum(a, b) + radius) / s
    near = np.ones(lau[0].shape, dtype=bool)
    for k in range(3):
        near &= (lau[k] >= lo[k]) & (lau[k] <= hi[k])
    out = np.zeros(near.shape, dtype=bool)
    q = np.stack([c[near] for c in lau], axis=-1) * s
    d = b - a
    t = np.clip(((q - a) @ d) / float(d @ d), 0.0, 1.0)
    out[near] = np.sum((q - (a + t[:, None] * d)) ** 2, axis=-1) <= radius**2
    return out


def posterior_elements(
    shape: VertebraShape, lau: tuple[np.ndarray, np.ndarray, np.ndarray], ribs: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior elements (pedicles, lamina, spinous and transverse processes) and ribs.

    Args:
        lau: local coordinates (l, a, u) in mm, three arrays of one shape.
        ribs: add a rib on each side (thoracic levels); ribs are bone but not labelled.

    Returns:
        (vertebra_part, rib) boolean arrays of shape ``lau.shape[:-1]``.
    """
    l, a, u = lau
    h = shape.height
    pw = 7.0 if shape.thoracic else 9.0  # pedicle width, mm
    a_pw, rc_lr, rc_ap = shape.posterior_wall, shape.canal_lr, shape.canal_ap
    a_cc = a_pw - rc_ap  # canal centre
    u_p = 0.12 * h  # pedicles and arch sit in the upper half of the body
    canal = (l / rc_lr) ** 2 + ((a - a_cc) / rc_ap) ** 2 <= 1.0
    part = np.zeros(l.shape, dtype=bool)
    for side in (-1.0, 1.0):
        lp = side * (rc_lr + pw / 2 - 1.0)
        part |= in_capsule(lau, (lp, a_pw + 3.0, u_p), (lp, a_cc - rc_ap, u_p), pw / 2,
                           (1.0, 1.0, pw / (0.45 * h)))
    t = 5.0  # lamina thickness, mm
    ring = (l / (rc_lr + t)) ** 2 + ((a - a_cc) / (rc_ap + t)) ** 2 <= 1.0
    part |= ring & ~canal & (a <= a_cc) & (np.abs(u - u_p) <= 0.3 * h)
    tilt = np.deg2rad(40.0 if shape.thoracic else 12.0)
    sp0 = np.array([0.0, a_cc - rc_ap - t + 2.0, u_p])
    sp_len = 30.0 if shape.thoracic else 27.0
    sp1 = sp0 + sp_len * np.array([0.0, -np.cos(tilt), -np.sin(tilt)])
    part |= in_capsule(lau, sp0, sp1, 4.0, (1.0, 1.4, 0.8))
    tp_len = 20.0 if shape.thoracic else 26.0
    rib = np.zeros(l.shape, dtype=bool)
    for side in (-1.0, 1.0):
        tp0 = np.array([side * (rc_lr + pw - 2.0), a_cc, u_p])
        tp1 = tp0 + np.array([side * tp_len, -6.0, 2.0])
        part |= in_capsule(lau, tp0, tp1, 4.5)
        if ribs:
            r1 = tp1 + np.array([side * 45.0, 35.0, -18.0])
            r2 = r1 + np.array([side * 25.0, 60.0, -15.0])
            rib |= in_capsule(lau, tp1, r1, 5.0) | in_capsule(lau, r1, r2, 5.0)
    return part & ~canal, rib & ~part
