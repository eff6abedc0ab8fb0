"""The study view: CT / mask in three large planes (window, zoom, slices), the vertebra table (pick
a row to open that vertebra), and one vertebra in detail with why it got its grade."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st
import streamlit.components.v1 as components
from streamlit_image_coordinates import streamlit_image_coordinates

from healthivert.errors import InputError
from healthivert.io.images import load_ct, load_mask
from healthivert.report.record import VertebraRecord
from healthivert.review.explain import FALLBACK_MARK, explain_vertebra, grader_text, threshold_text
from healthivert.review.navigate import pick_from_table
from healthivert.review.prefetch import RenderCache
from healthivert.review.render import (
    GRADE_COLOURS,
    PLANES,
    WINDOWS,
    SliceImage,
    StudyImages,
    default_slices,
    figure_png,
    focus_on,
    height_profile_figure,
    label_at,
    label_centres,
    loss_map_figure,
    render_slice,
    straightened_figure,
)
from healthivert.review.studies import GRADE_NAMES, Study

CUSTOM = "custom"
ZOOMS: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0, 4.0)
PLANE_WIDTH_PX = {"sagittal": 600, "coronal": 600, "axial": 450}
#: planes on which a click opens the vertebra under it (the axial plane shows one vertebra)
CLICKABLE: tuple[str, ...] = ("sagittal", "coronal")


class _Png:
    """Encoded PNG bytes as streamlit-image-coordinates takes an image: an object with ``save``."""

    def __init__(self, png: bytes) -> None:
        self.png = png

    def save(self, buffer, **_) -> None:
        buffer.write(self.png)


#: A click leaves the keyboard's focus in the plane's frame, where the page's shortcuts do not
#: hear it; this gives it back to the page (run again on each click: its text changes).
_REFOCUS_JS = """<script>/* click CLICK */
const page = window.parent.document;
if (page.activeElement && page.activeElement.tagName === "IFRAME") page.activeElement.blur();
window.parent.focus();
</script>"""


def image_pick(images: StudyImages, labels: list[int]) -> int | None:
    """The vertebra of a new click on the sagittal or coronal plane (None: no new click, or off
    the spine). The click, in displayed pixels, is scaled to the drawn image and mapped back
    through the plane's geometry (:func:`~healthivert.review.render.label_at`).

    Read at the top of the script run, before the planes are drawn, so they show the picked one.
    """
    for plane in CLICKABLE:
        click = st.session_state.get(f"click_{plane}")
        if not click or click.get("unix_time") == st.session_state.get(f"click_seen_{plane}"):
            continue
        st.session_state[f"click_seen_{plane}"] = st.session_state["plane_clicked"] = click.get("unix_time")
        drawn = st.session_state.get(f"plane_drawn_{plane}")
        if drawn is None or not click.get("width") or not click.get("height"):
            continue
        width, height = drawn.view.size_px
        label = label_at(images, drawn, click["x"] * width / click["width"], click["y"] * height / click["height"])
        if label in labels:
            return label
    return None


@st.cache_resource(show_spinner="reading the CT ...", max_entries=4)
def _ct(path: str, mtime: float):
    return load_ct(path)


@st.cache_resource(show_spinner="reading the mask ...", max_entries=4)
def _mask(path: str, mtime: float):
    return load_mask(path)


def study_images(study: Study) -> StudyImages:
    """The study's recorded CT and mask, each only when it can still be read."""
    volumes = {}
    for kind, loader in (("ct", _ct), ("mask", _mask)):
        path = study.input_path(kind)
        if path is None:
            continue
        try:
            volumes[kind] = loader(str(path), Path(path).stat().st_mtime)
        except InputError as exc:
            st.warning(f"{kind} not shown: {exc}")
    return StudyImages(volumes.get("ct"), volumes.get("mask"))


@st.cache_data(show_spinner=False, max_entries=16)
def _centres(key: tuple, _images: StudyImages) -> dict[int, np.ndarray]:
    return label_centres(_images)


@st.cache_resource(show_spinner=False)
def _drawings() -> RenderCache:
    """The server's drawn planes and vertebra figures (PNG), shared by its sessions; neighbours of
    the vertebra in view are drawn ahead into it."""
    return RenderCache(max_entries=192)


@dataclass(frozen=True)
class PlaneSettings:
    """What the planes are drawn with besides the slice: the study's images (``source``: their
    paths), window, overlay, grades and names (sorted items), zoom."""

    source: tuple
    window: str | tuple[float, float]
    overlay: bool
    grades: tuple
    names: tuple
    zoom: float


def _slice_image(images: StudyImages, settings: PlaneSettings, plane: str, index: int,
                 focus: tuple | None, ahead: bool = False) -> SliceImage | None:
    """One plane, drawn once per settings (``ahead``: queued in the background, returns None)."""
    key = ("plane", settings, plane, index, focus)

    def draw() -> SliceImage:
        return render_slice(images, plane, index, settings.window, show_mask=settings.overlay,
                            show_labels=settings.overlay, grades=dict(settings.grades), names=dict(settings.names),
                            zoom=settings.zoom, focus_mm=focus, width_px=PLANE_WIDTH_PX[plane])

    if ahead:
        _drawings().ahead(key, draw)
        return None
    return _drawings().get(key, draw)


FIGURES = {"straightened": straightened_figure, "profile": height_profile_figure, "loss_map": loss_map_figure}


def _study_key(study: Study) -> tuple:
    """What a study's drawings depend on: its folder and its result.json (written last by a run)."""
    result = study.folder / "result.json"
    return (str(study.folder), study.study_id, result.stat().st_mtime_ns if result.exists() else 0)


def _figure_png(kind: str, key: tuple, study: Study, name: str, ahead: bool = False) -> bytes | None:
    """A vertebra's straightened crops, height profile or loss map as PNG (None: nothing to draw),
    drawn once per study version: switching back to a vertebra does not redraw it (``ahead``:
    queued in the background, returns None)."""

    def draw() -> bytes | None:
        fig = FIGURES[kind](study, name)
        return None if fig is None else figure_png(fig)

    if ahead:
        _drawings().ahead(("figure", kind, key, name), draw)
        return None
    return _drawings().get(("figure", kind, key, name), draw)


def _slice_indices(images: StudyImages, centre: np.ndarray | None) -> dict[str, int]:
    """The slices through a vertebra's centre (the image's middle without one)."""
    grid = images.display
    return default_slices(images) if centre is None else {
        p: int(np.clip(round(float(centre[a])), 0, grid.shape[a] - 1)) for p, a in PLANES.items()}


def start_figures(study: Study, label: int) -> None:
    """Call off the previous page's drawings ahead that have not started, and start this
    vertebra's figures in the background, drawn while the planes and the table are."""
    _drawings().cancel_pending()
    key, own = _study_key(study), study.vertebra(label).name
    for kind in FIGURES:
        _figure_png(kind, key, study, own, ahead=True)


def draw_ahead(study: Study, images: StudyImages, settings: PlaneSettings | None, labels: list[int],
               label: int) -> None:
    """Queue the planes and figures of the vertebrae before and after ``label`` (in ``labels``
    order) for drawing in the background, after the page is shown."""
    at = labels.index(label)
    centres = _centres(settings.source, images) if settings is not None else {}
    key = _study_key(study)
    for other in (labels[at + 1] if at + 1 < len(labels) else None, labels[at - 1] if at > 0 else None):
        if other is None:
            continue
        own = study.vertebra(other).name
        for kind in FIGURES:  # first: the slowest to draw
            _figure_png(kind, key, study, own, ahead=True)
        if settings is not None:
            centre = centres.get(other)
            for plane, index in _slice_indices(images, centre).items():
                focus = focus_on(images, plane, centre) if settings.zoom > 1 else None
                _slice_image(images, settings, plane, index, focus, ahead=True)


def _window_controls(enabled: bool):
    """Window preset or custom width / level (HU); returns a preset name or (width, level)."""
    c1, c2, c3 = st.columns([3, 2, 2])
    window = c1.radio("window", [*WINDOWS, CUSTOM], horizontal=True, key="window", disabled=not enabled,
                      format_func=lambda w: w if w == CUSTOM else f"{w} (W {WINDOWS[w][0]:.0f} L {WINDOWS[w][1]:.0f})")
    if window != CUSTOM:
        return window
    width = c2.slider("window width (HU)", 50, 4000, int(WINDOWS["bone"][0]), step=10, key="window_width")
    level = c3.slider("window level (HU)", -1000, 1500, int(WINDOWS["bone"][1]), step=10, key="window_level")
    return (float(width), float(level))


def _follow(study: Study, images: StudyImages, label: int, centre: np.ndarray | None) -> None:
    """Move the slice sliders through a newly chosen vertebra (once per choice, so scrolling stays free)."""
    followed = st.session_state.get("slices_follow")
    if followed == (study.study_id, label):
        return
    st.session_state["slices_follow"] = (study.study_id, label)
    for plane, index in _slice_indices(images, centre).items():
        st.session_state[f"slice_{plane}"] = index + 1


def show_planes(study: Study, images: StudyImages, grades: dict[int, int | None], names: dict[int, str],
                label: int) -> PlaneSettings | None:
    """The three planes, large, through the chosen vertebra; zoom centres on it. Returns what they
    were drawn with (None: no image)."""
    grid = images.display
    if grid is None:
        st.info("Neither the CT nor the mask recorded in result.json can be read; images are not shown.")
        return None
    if images.ct is None:
        st.caption("mask-only study: the labelled mask is shown without a CT")
    window = _window_controls(images.ct is not None)
    c1, c2 = st.columns([3, 2])
    zoom = c1.select_slider("zoom (centred on the chosen vertebra)", ZOOMS, value=1.0, key="zoom",
                            format_func=lambda z: f"{z:g}x")
    overlay = c2.checkbox("vertebra mask and labels", value=True, key="overlay", disabled=images.mask is None)
    settings = PlaneSettings((f"{study.input_path('ct')}|{study.input_path('mask')}", study.study_id), window,
                             overlay, tuple(sorted(grades.items())), tuple(sorted(names.items())), zoom)
    centre = _centres(settings.source, images).get(label)
    _follow(study, images, label, centre)
    cols = st.columns([2, 2, 1.5])
    for col, plane in zip(cols, PLANES):
        n = grid.shape[PLANES[plane]]
        index = col.slider(f"{plane} slice", 1, n, key=f"slice_{plane}",
                           help="drag, or click it and scroll slices with the arrow keys") - 1
        focus = focus_on(images, plane, centre) if zoom > 1 else None
        drawn = _slice_image(images, settings, plane, index, focus)
        if plane in CLICKABLE and images.mask is not None:
            st.session_state[f"plane_drawn_{plane}"] = drawn
            with col:
                streamlit_image_coordinates(_Png(drawn.png), width="stretch", key=f"click_{plane}", cursor="pointer")
            col.caption(f"{drawn.title} · click a vertebra (or its name) to open it")
        else:
            col.image(drawn.png, caption=drawn.title, width="stretch")
    if "plane_clicked" in st.session_state:  # give the keys (A, O, N ...) back to the page
        components.html(_REFOCUS_JS.replace("CLICK", str(st.session_state["plane_clicked"])), height=0)
    return settings


def _grade_style(value) -> str:
    if pd.isna(value):
        return ""
    return f"background-color: {GRADE_COLOURS[int(value)]}; color: white; font-weight: bold"


def vertebra_frame(rows: list[dict]) -> pd.DataFrame:
    """The per-vertebra table shown in the viewer (names after any relabelling)."""
    shifted = any(r["label_shift"] for r in rows)
    frame = pd.DataFrame([{
        "vertebra": r["name"], **({"algorithm name": r["algorithm_name"]} if shifted else {}),
        "label": r["label"], "algorithm grade": r["algorithm_grade"],
        "reviewed grade": r["reviewed_grade"], "reviewer": r["reviewer"] or "",
        **{f"p{g}": r[f"prob_grade{g}"] for g in range(4)},
        **{f"RHLV {s[:4]} %": None if r[f"rhlv_{s}"] is None else 100 * r[f"rhlv_{s}"]
           for s in ("anterior", "middle", "posterior", "whole")},
        **{f"H {s[:4]} mm": r[f"height_{s}_mm"] for s in ("anterior", "middle", "posterior")},
        **{f"H healthy {s[:4]} mm": r[f"healthy_height_{s}_mm"] for s in ("anterior", "middle", "posterior")},
        "pseudo-healthy": f"⚠ {FALLBACK_MARK}" if r["gan_refused"] else (r["synthesizer"] or ""),
        "HU": r["trabecular_hu"], "status": r["status"],
    } for r in rows])
    for col in ("algorithm grade", "reviewed grade"):
        frame[col] = frame[col].astype("Int64")
    return frame


def table_pick(labels: list[int]) -> int | None:
    """The vertebra of a row newly selected in the vertebra table (None: no new selection).

    Read at the top of the script run, before the planes are drawn, so they show the picked one.
    """
    state = st.session_state.get("vertebra_table") or {}
    rows = tuple((state.get("selection") or {}).get("rows", []))
    if rows == st.session_state.get("table_pick", ()):
        return None
    st.session_state["table_pick"] = rows
    return pick_from_table(rows, labels)


def show_table(rows: list[dict]) -> None:
    frame = vertebra_frame(rows)
    styled = frame.style.map(_grade_style, subset=["algorithm grade", "reviewed grade"])
    number = {c: st.column_config.NumberColumn(format="%.2f" if c.startswith("p") else "%.1f")
              for c in frame.columns if frame[c].dtype.kind == "f"}
    st.dataframe(styled, hide_index=True, column_config=number, key="vertebra_table", on_select="rerun",
                 selection_mode="single-row")
    st.caption("Click a row to open that vertebra. Genant: " + ", ".join(f"{g} {n}" for g, n in GRADE_NAMES.items())
               + ". Heights: measured and pseudo-healthy (mm). RHLV = (H_healthy - H) / H_healthy. "
               f"⚠ {FALLBACK_MARK}: the GAN's pseudo-healthy body disagreed with the neighbours', "
               "the prior's was used.")


def show_explanation(study: Study, vertebra: VertebraRecord, name: str) -> None:
    """Why the vertebra got its grade (see ``healthivert.review.explain``)."""
    e = explain_vertebra(vertebra, study.synthesizer, study.result.get("grader"), name)
    if e.fallback:
        st.warning(f"⚠ {e.fallback}")
    for line in e.lines:
        if line not in (e.fallback, e.disagreement):
            st.markdown(line)
    if e.disagreement:
        st.info(e.disagreement)
    if e.probabilities:
        st.caption(f"Probabilities from {grader_text(e.grader)}: " + " · ".join(
            f"grade {g} {p:.2f}" for g, p in sorted(e.probabilities.items()))
                   + f". Genant thresholds on the worst section's RHLV: {threshold_text()}.")


def show_vertebra(study: Study, label: int, name: str) -> None:
    """Explanation, straightened real body with the pseudo-healthy outline, height-loss maps and
    height profile (files are named by the algorithm's name)."""
    vertebra = study.vertebra(label)
    own = vertebra.name
    st.subheader(f"{name}: why grade {vertebra.genant_grade}" if vertebra.graded else f"{name}: not graded")
    show_explanation(study, vertebra, name)
    c1, c2 = st.columns([3, 2])
    key = _study_key(study)
    png = _figure_png("straightened", key, study, own)
    if png is None:
        c1.info(f"no straightened crops for {name} (not measured, or written without crops)")
    else:
        c1.image(png, caption="straightened frame, mid-sagittal: the real body filled, the "
                              "pseudo-healthy body as a dashed outline", width="stretch")
    png = _figure_png("profile", key, study, own)
    if png is not None:
        c2.image(png, caption="body height along AP", width="stretch")
    png = _figure_png("loss_map", key, study, own)
    if png is not None:
        st.image(png, caption=f"{name} height-loss map viewed from above: white = no loss, red = "
                              "height lost, blue = taller than pseudo-healthy", width="stretch")
    else:
        drawn = study.loss_map(own, "png")
        if drawn is None:
            st.info(f"no height-loss map for {name}")
        else:
            st.image(drawn.read_bytes(), caption=f"{name} height-loss map (as the pipeline drew it)", width="stretch")
