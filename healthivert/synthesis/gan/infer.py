"""``--synthesizer gan``: pseudo-healthy bodies from the HealthiVert-GAN (2.5-D).

Every sagittal slice in the central 4/5 of the body's LR extent and every coronal slice in the
central 4/5 of its AP extent is masked with the 40 mm band and restored; SHRM keeps
max(ceil(predicted height), present height) rows of the band, and the target segmentation's
rows (probability >= 0.5) among them give each column's pseudo-healthy height (mm). The two views' height
maps are fused (mean where both cover a column) into one 3-D body, and the model's height
calibration (``calibration.py``) maps the fused column heights. Iterative synthesis: a
vertebra next to one that the first pass restores (loss > 15 %) is synthesised again with
that neighbour stretched to its pseudo-healthy height in the context.
"""

from __future__ import annotations

import numpy as np
import torch

from healthivert.errors import InputError
from healthivert.geometry.vertebrae import StraightVertebra
from healthivert.labels import T13, level_gap
from healthivert.sections import SECTIONS, relative_height_loss, section_heights
from healthivert.synthesis.base import PseudoHealthy, body_from_heights
from healthivert.synthesis.gan.canvas import COL_MIN_MM, COLS, VIEWS, VertebraStack, kept_band_rows, make_sample
from healthivert.synthesis.gan.model import DEFAULT_WEIGHTS, GANModel, load_gan
from healthivert.synthesis.prior import RESTORE_ABOVE

BATCH = 64


def gan_synthesizer(weights: str | None = None):
    """Factory (registered as "gan" in ``healthivert.synthesis``): loads the shipped (or given)
    weights once, on the GPU when there is one (CPU otherwise); fails at once if they are missing."""
    model, _ = load_gan(weights or DEFAULT_WEIGHTS, device=inference_device())
    return lambda vertebrae: synthesize_gan(vertebrae, model)


def inference_device() -> str:
    """``cuda`` when PyTorch sees a GPU, else ``cpu``. The two differ by rounding (TF32 on
    recent GPUs), which SHRM's row counts can turn into up to about 1 point of height loss on a
    vertebra (phantom 1000: largest difference 0.9 points, anterior)."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def _column_heights(seg_prob: np.ndarray, start: int, stop: int, predicted_mm: float) -> np.ndarray:
    """Per canvas column: body height (mm). SHRM: the predicted height is the body's height in
    the slice (its tallest column, as the height head is trained); the generated label map gives
    the profile across the columns: rows (1 mm) of the kept band with probability >= 0.5, as the
    paper counts label voxels, scaled so that the tallest column is the predicted height. The
    label rows alone read the interior columns 1-2 mm short, and shorter on fractured vertebrae
    than on their healthy twins, while the height head does not (phantom seeds 5100-5105)."""
    rows = (seg_prob[start:stop] >= 0.5).sum(axis=0).astype(np.float32)
    tallest = float(rows.max())
    return rows * (predicted_mm / tallest) if tallest > 0 else rows


def restore_heights(stack: VertebraStack, model: GANModel, above=None, below=None) -> dict[str, np.ndarray]:
    """Pseudo-healthy column heights (LR, AP) in mm from each view (NaN where not covered)."""
    n_lr, n_ap = len(stack.lr_mm), len(stack.ap_mm)
    out = {}
    for view in VIEWS:
        heights = np.full((n_lr, n_ap), np.nan, np.float32)
        axis_mm = stack.ap_mm if view == "sagittal" else stack.lr_mm  # the canvas columns' axis
        j = axis_mm - COL_MIN_MM
        on_canvas = (j >= 0) & (j < COLS)
        samples = [(i, s) for i in stack.slice_indices(view)
                   if (s := make_sample(stack, view, int(i), above, below)) is not None]
        for b in range(0, len(samples), BATCH):
            chunk = samples[b:b + BATCH]
            batch = model.inputs([s for _, s in chunk])
            with torch.no_grad():
                pred = model.generator(batch["input"])
            probs = torch.sigmoid(pred["target"])[:, 0].cpu().numpy()
            predicted = pred["height"].cpu().numpy()
            for (i, s), prob, h in zip(chunk, probs, predicted):
                start, stop = kept_band_rows(float(h), s.body_rows)
                cols = _column_heights(prob, start, stop, float(h))
                line = np.full(len(axis_mm), np.nan, np.float32)
                line[on_canvas] = cols[j[on_canvas]]
                if view == "sagittal":
                    heights[i] = line
                else:
                    heights[:, i] = line
        out[view] = heights
    return out


def fuse(views: dict[str, np.ndarray], real_heights: np.ndarray) -> np.ndarray:
    """One height map from the views: their mean where they cover a column, and on the real
    footprint's uncovered columns the real height scaled by the covered columns' median ratio."""
    footprint = real_heights > 0
    stacked = np.stack(list(views.values()))
    n = np.isfinite(stacked).sum(axis=0)
    fused = np.where(n > 0, np.nansum(stacked, axis=0) / np.maximum(n, 1), np.nan)
    covered = footprint & np.isfinite(fused) & (fused > 0)
    if not covered.any():
        return real_heights.astype(np.float32)
    ratio = float(np.median(fused[covered] / real_heights[covered]))
    return np.where(covered, fused, np.where(footprint, real_heights * ratio, 0.0)).astype(np.float32)


def _loss(v: StraightVertebra, heights: np.ndarray) -> float:
    def sections(h):
        return section_heights(h.T, v.grid.ap_mm, v.grid.lr_mm)

    loss = relative_height_loss(sections(heights), sections(v.heights_mm))
    return max(loss[s] for s in SECTIONS)


def synthesize_gan(vertebrae: list[StraightVertebra], model: GANModel) -> dict[int, PseudoHealthy]:
    """Pseudo-healthy bodies of all vertebrae (ordered cranial to caudal); needs their CT."""
    usable = [v for v in vertebrae if v.body.any()]
    if any(v.ct is None or v.labels is None for v in usable):
        raise InputError("the gan synthesizer reads the CT: give --ct (or use --synthesizer prior)")
    stacks = {v.label: VertebraStack.from_vertebra(v) for v in usable}
    def restored_map(v: StraightVertebra, above=None, below=None) -> np.ndarray:
        return model.calibration.apply(fuse(restore_heights(stacks[v.label], model, above, below), v.heights_mm))

    first = {v.label: restored_map(v) for v in usable}
    restored = {v.label: float(np.median(first[v.label][v.heights_mm > 0] / v.heights_mm[v.heights_mm > 0]))
                for v in usable if _loss(v, first[v.label]) > RESTORE_ABOVE}
    with_t13 = any(v.label == T13 for v in vertebrae)
    out = {}
    def next_to(k: int, j: int) -> bool:
        return 0 <= j < len(usable) and level_gap(usable[j].label, usable[k].label, with_t13) == 1

    def adjacent(k: int, j: int) -> tuple[int, float] | None:
        """(label, restoration factor) of vertebra j when it is restored and next to vertebra k."""
        lab = usable[j].label if next_to(k, j) else None
        return (lab, restored[lab]) if lab in restored else None

    for k, v in enumerate(usable):
        above, below = adjacent(k, k - 1), adjacent(k, k + 1)
        heights = first[v.label]
        if above or below:
            heights = restored_map(v, above, below)
        used = [n for n in (above, below) if n]
        method = "HealthiVert-GAN, sagittal + coronal" + (
            f", on restored neighbours {', '.join(str(n[0]) for n in used)}" if used else "")
        context = [usable[j].label for j in (k - 1, k + 1) if next_to(k, j)]  # the neighbours in its input
        out[v.label] = PseudoHealthy(heights, body_from_heights(heights, v.body, v.grid.si_mm), method, context)
    return out
