"""The HealthiVert-GAN input canvas: a 2-D slice of a straightened vertebra with its body
replaced by a fixed-height band (the "40 mm mask") and the context packed against it.

Conventions: a slice is (rows, cols) at 1 mm; rows run along SI from superior (row 0) to
inferior, cols along AP (sagittal view, posterior first) or LR (coronal view, left first).
The canvas is ``ROWS`` x ``COLS``; the band fills rows ``BAND_TOP`` .. ``BAND_TOP + BAND_MM``.
Inside the band the truth is the slice's window of ``BAND_MM`` rows centred on the body; above
and below, the slice's rows beyond the body's top and bottom, packed against the band, so the
input never shows the body's real height. Pure numpy; no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from healthivert.geometry.vertebrae import StraightVertebra

ROWS, COLS = 96, 80
BAND_MM = 40
BAND_TOP = (ROWS - BAND_MM) // 2
COL_MIN_MM = -COLS // 2  # canvas col j sits at (COL_MIN_MM + j) mm on the slice's column axis
HU_WINDOW = (-300.0, 800.0)  # mapped to [-1, 1], as in the paper
VIEWS = ("sagittal", "coronal")
CENTRAL_FRACTION = 0.8  # slices come from the central 4/5 of the body's extent across the view


def normalise_hu(hu: np.ndarray) -> np.ndarray:
    """HU window [-300, 800] mapped to [-1, 1] (float32)."""
    lo, hi = HU_WINDOW
    return (np.clip(hu, lo, hi) - lo) / (hi - lo) * 2.0 - 1.0


def hu_from_normalised(ct: np.ndarray) -> np.ndarray:
    """The inverse of :func:`normalise_hu` inside the window (HU, float32)."""
    lo, hi = HU_WINDOW
    return ((np.asarray(ct, np.float32) + 1.0) / 2.0 * (hi - lo) + lo).astype(np.float32)


@dataclass
class VertebraStack:
    """One vertebra resampled for the GAN: arrays (LR, AP, SI) at 1 mm, SI ascending.

    Attributes:
        label: VerSe label.
        ct: CT normalised to [-1, 1].
        body: the isolated body (0/1, float32).
        labels: every VerSe label on the grid (uint8).
        lr_mm, ap_mm: axis coordinates (mm, integers).
    """

    label: int
    ct: np.ndarray
    body: np.ndarray
    labels: np.ndarray
    lr_mm: np.ndarray
    ap_mm: np.ndarray

    @classmethod
    def from_vertebra(cls, v: StraightVertebra) -> VertebraStack:
        """Resample a straightened vertebra (which must carry a CT and its label map)."""
        if v.ct is None or v.labels is None:
            raise ValueError(f"label {v.label}: the GAN synthesizer needs the CT")
        lr_step, ap_step, si_step = v.grid.spacing_mm
        if not (np.isclose(lr_step, 1.0) and np.isclose(ap_step, 1.0)):
            raise ValueError(f"the GAN needs 1 mm LR/AP crops; got {lr_step} x {ap_step} mm")
        keep = np.flatnonzero(np.isclose(v.grid.si_mm, np.round(v.grid.si_mm)))  # the whole-mm rows
        if not np.allclose(np.diff(v.grid.si_mm[keep]), 1.0):
            raise ValueError(f"SI step {si_step} mm does not divide 1 mm")
        return cls(v.label, normalise_hu(v.ct[:, :, keep]).astype(np.float32),
                   (v.soft * v.body)[:, :, keep].astype(np.float32), v.labels[:, :, keep],
                   np.round(v.grid.lr_mm).astype(int), np.round(v.grid.ap_mm).astype(int))

    def axis_extent(self, view: str) -> tuple[int, int]:
        """First and last index (across the view: LR for sagittal, AP for coronal) holding body."""
        axis = (1, 2) if view == "sagittal" else (0, 2)
        present = np.flatnonzero(self.body.max(axis=axis) >= 0.5)
        return (int(present[0]), int(present[-1])) if present.size else (0, -1)

    def slice(self, view: str, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ct, body, labels, col_mm) of one slice, rows from superior to inferior."""
        def take(a: np.ndarray) -> np.ndarray:
            return (a[index, :, ::-1] if view == "sagittal" else a[:, index, ::-1]).T

        cols = self.ap_mm if view == "sagittal" else self.lr_mm
        return take(self.ct), take(self.body), take(self.labels), cols

    def across_mm(self, view: str) -> np.ndarray:
        """Coordinates (mm) of the slices of a view: LR for sagittal, AP for coronal."""
        return self.lr_mm if view == "sagittal" else self.ap_mm

    def index_at(self, view: str, mm: float) -> int | None:
        """The slice of a view at ``mm`` across it (within half a millimetre), or None."""
        across = self.across_mm(view)
        i = int(np.argmin(np.abs(across - mm)))
        return i if abs(across[i] - mm) <= 0.5 else None

    def slice_indices(self, view: str) -> np.ndarray:
        """Indices of the slices in the central 4/5 of the body's extent across the view."""
        first, last = self.axis_extent(view)
        if last < first:
            return np.zeros(0, int)
        margin = (last - first) * (1 - CENTRAL_FRACTION) / 2
        return np.arange(int(np.ceil(first + margin)), int(np.floor(last - margin)) + 1)

    def position(self, view: str, index: int) -> float:
        """The slice's place across the body: -1 at one edge, 0 at the centre, 1 at the other."""
        first, last = self.axis_extent(view)
        return float(np.clip((index - (first + last) / 2) / max((last - first) / 2, 1.0), -1, 1))


def to_canvas_cols(arr: np.ndarray, col_mm: np.ndarray, fill: float) -> np.ndarray:
    """Columns of a slice placed on the canvas's fixed ``COLS`` (1 mm, centred on 0 mm)."""
    out = np.full((arr.shape[0], COLS), fill, dtype=arr.dtype)
    j = col_mm - COL_MIN_MM
    ok = (j >= 0) & (j < COLS)
    out[:, j[ok]] = arr[:, ok]
    return out


def body_rows(body: np.ndarray) -> tuple[int, int, float] | None:
    """(first row, last row, silhouette height mm) of the body in a slice, or None if absent."""
    silhouette = body.max(axis=1)
    rows = np.flatnonzero(silhouette >= 0.5)
    if rows.size == 0:
        return None
    return int(rows[0]), int(rows[-1]), float(silhouette.sum())


def pack_rows(n_rows: int, top: int, bottom: int, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Source row of each canvas row (-1 where the slice has none).

    Band rows take the slice's ``BAND_MM`` rows centred on the body; rows above the band
    take the slice's rows above ``top``, packed against it; rows below likewise below ``bottom``.
    ``shift`` (rows above, rows below; training augmentation) moves each side's context: k > 0
    drops the k rows next to the body (the disc reads k mm thinner), k < 0 repeats the row next
    to the body |k| times (k mm thicker).
    """
    centre = int(round((top + bottom) / 2))
    r = np.arange(ROWS)
    up, down = BAND_TOP - 1 - r, r - BAND_TOP - BAND_MM  # rows from the band's edge, 0 next to it

    def away(d: np.ndarray, k: int) -> np.ndarray:
        return d + k if k >= 0 else np.maximum(d + k, 0)

    src = np.where(r < BAND_TOP, top - 1 - away(up, shift[0]),
                   np.where(r < BAND_TOP + BAND_MM, centre - BAND_MM // 2 + (r - BAND_TOP),
                            bottom + 1 + away(down, shift[1])))
    return np.where((src >= 0) & (src < n_rows), src, -1)


def window_rows(n_rows: int, top: int, bottom: int) -> np.ndarray:
    """Source rows of an unmasked canvas centred on the body (for the fracture classifier)."""
    centre = int(round((top + bottom) / 2))
    src = centre - ROWS // 2 + np.arange(ROWS)
    return np.where((src >= 0) & (src < n_rows), src, -1)


def take_rows(arr: np.ndarray, src: np.ndarray, fill: float) -> np.ndarray:
    """``arr[src]`` with ``fill`` where ``src`` is -1."""
    out = arr[np.clip(src, 0, len(arr) - 1)].copy()
    out[src < 0] = fill
    return out


def band_mask() -> np.ndarray:
    """(ROWS, COLS) float32: 1 inside the band."""
    m = np.zeros((ROWS, COLS), np.float32)
    m[BAND_TOP:BAND_TOP + BAND_MM] = 1.0
    return m


def shown_rows(context_mm: int | None) -> np.ndarray:
    """(ROWS,) bool: the canvas rows within ``context_mm`` of the band, the band included
    (every row when None). Rows beyond are shown as fill, whatever the slice holds there."""
    r = np.arange(ROWS)
    if context_mm is None:
        return np.ones(ROWS, bool)
    return (r >= BAND_TOP - context_mm) & (r < BAND_TOP + BAND_MM + context_mm)


@dataclass
class CanvasSample:
    """One slice on the canvas: the truth, the row mapping and the slice's facts.

    ``ct`` is the true (packed) CT in [-1, 1], ``target`` the target's body, ``adjacent`` the
    other vertebrae; ``window`` the unmasked CT centred on the body (classifier input);
    ``height_mm`` the body's silhouette height in the slice; ``body_rows`` its row count.
    """

    ct: np.ndarray
    target: np.ndarray
    adjacent: np.ndarray
    window: np.ndarray
    src: np.ndarray
    window_src: np.ndarray
    height_mm: float
    body_rows: int
    position: float
    view: str


def _stretched_rows(n_rows: int, top: int, bottom: int, labels: np.ndarray,
                    above: tuple[int, float] | None, below: tuple[int, float] | None) -> np.ndarray:
    """Source row coordinate of every slice row once the neighbour above / below (label,
    factor) is stretched by ``factor`` away from the target, its endplate next to the target's
    disc kept in place. Rows between the target's top and bottom are unchanged."""
    y = np.arange(n_rows, dtype=float)
    src = y.copy()
    for side, spec in (("above", above), ("below", below)):
        if spec is None or spec[1] <= 1.0:
            continue
        label, factor = spec
        rows = np.flatnonzero((labels == label).any(axis=1))
        rows = rows[rows < top] if side == "above" else rows[rows > bottom]
        if rows.size == 0:
            continue
        edge = top - 1 if side == "above" else bottom + 1
        near, far = (rows[-1], rows[0]) if side == "above" else (rows[0], rows[-1])
        d = np.abs(y - edge)  # distance from the target, on this side
        d_near, d_far = abs(near - edge), abs(far - edge)
        d_far_new = d_near + factor * (d_far - d_near)
        d_src = np.where(d <= d_near, d, np.where(d <= d_far_new, d_near + (d - d_near) / factor,
                                                  d_far + (d - d_far_new)))
        on_side = y < top if side == "above" else y > bottom
        src = np.where(on_side, edge - d_src if side == "above" else edge + d_src, src)
    return src


def _resample_rows(arr: np.ndarray, src: np.ndarray, order: int, fill: float) -> np.ndarray:
    from scipy import ndimage

    cols = np.arange(arr.shape[1], dtype=float)
    rr, cc = np.meshgrid(src, cols, indexing="ij")
    return ndimage.map_coordinates(arr, [rr, cc], order=order, mode="constant", cval=fill).astype(arr.dtype)


def make_sample(stack: VertebraStack, view: str, index: int, above: tuple[int, float] | None = None,
                below: tuple[int, float] | None = None, disc_shift: tuple[int, int] = (0, 0)) -> CanvasSample | None:
    """The canvas of one slice, or None when the slice holds no body.

    ``above`` / ``below``: (neighbour label, height factor) to show that neighbour restored,
    stretched by the factor (iterative synthesis: the target is synthesised on its neighbours'
    pseudo-healthy versions). ``disc_shift``: :func:`pack_rows`' ``shift`` (training only).
    """
    ct, body, labels, cols = stack.slice(view, index)
    rows = body_rows(body)
    if rows is None:
        return None
    top, bottom, height = rows
    if above or below:
        src_rows = _stretched_rows(len(ct), top, bottom, labels, above, below)
        ct, labels = _resample_rows(ct, src_rows, 1, -1.0), _resample_rows(labels, src_rows, 0, 0)
    src, wsrc = pack_rows(len(ct), top, bottom, disc_shift), window_rows(len(ct), top, bottom)
    ct_c = to_canvas_cols(ct, cols, -1.0)
    lab_c = to_canvas_cols(labels, cols, 0)
    body_c = to_canvas_cols(body, cols, 0.0)
    adjacent = ((lab_c > 0) & (lab_c != stack.label)).astype(np.float32)
    target = take_rows(body_c, src, 0.0)
    target[:BAND_TOP] = 0.0  # the body lies between top and bottom: only the band holds it
    target[BAND_TOP + BAND_MM:] = 0.0
    return CanvasSample(take_rows(ct_c, src, -1.0), (target >= 0.5).astype(np.float32),
                        take_rows(adjacent, src, 0.0), take_rows(ct_c, wsrc, -1.0), src, wsrc,
                        height, bottom - top + 1, stack.position(view, index), view)


def with_twin_band(sample: CanvasSample, twin: CanvasSample) -> CanvasSample:
    """A fractured slice's canvas whose truth inside the band is its intact twin's (phantom
    training: the network sees the fractured study, as ever with the body masked, and learns
    the body at its healthy height, so no fracture cue in the context reaches its output).

    The input side (the context above and below, the unmasked window for the attention map,
    the row mapping, the slice position) stays the fractured slice's; the band's CT, the
    target body, the band's adjacent vertebrae and the height are the twin's.
    """
    band = slice(BAND_TOP, BAND_TOP + BAND_MM)
    ct, adjacent = sample.ct.copy(), sample.adjacent.copy()
    ct[band], adjacent[band] = twin.ct[band], twin.adjacent[band]
    return replace(sample, ct=ct, adjacent=adjacent, target=twin.target.copy(), height_mm=twin.height_mm,
                   body_rows=twin.body_rows)


def repack_window(window_map: np.ndarray, sample: CanvasSample, fill: float = 0.0) -> np.ndarray:
    """A map computed on the unmasked window (an attention map) moved onto the packed canvas."""
    lookup = np.full(int(max(sample.src.max(), sample.window_src.max())) + 1, -1)
    valid = sample.window_src >= 0
    lookup[sample.window_src[valid]] = np.flatnonzero(valid)
    rows = np.where(sample.src >= 0, lookup[np.clip(sample.src, 0, len(lookup) - 1)], -1)
    return take_rows(window_map, rows, fill)


def kept_band_rows(predicted_mm: float, body_rows_now: int) -> tuple[int, int]:
    """SHRM: band rows (start, stop) kept around the band's centre.

    The kept height is max(ceil(predicted), the body's present row count): a pseudo-healthy
    body is never shorter than the real one.
    """
    keep = int(min(max(np.ceil(predicted_mm), body_rows_now), BAND_MM))
    start = BAND_TOP + BAND_MM // 2 - keep // 2
    return start, start + keep
