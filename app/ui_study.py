"""The study view: CT / mask in three planes, the vertebra table, and one vertebra in detail."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from healthivert.errors import InputError
from healthivert.io.images import load_ct, load_mask
from healthivert.review.render import (
    GRADE_COLOURS,
    PLANES,
    WINDOWS,
    StudyImages,
    default_slices,
    figure_png,
    height_profile_figure,
    loss_map_figure,
    slice_figure,
    straightened_figure,
)
from healthivert.review.studies import GRADE_NAMES, Study


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


@st.cache_data(show_spinner=False, max_entries=64)
def _slice_png(key: tuple, _images: StudyImages, plane: str, index: int, window: str, overlay: bool,
               grades: tuple) -> bytes:
    fig = slice_figure(_images, plane, index, window, show_mask=overlay, show_labels=overlay,
                       grades=dict(grades), size_in=3.6)
    return figure_png(fig, dpi=90)


def show_planes(study: Study, images: StudyImages, grades: dict[int, int | None]) -> None:
    grid = images.display
    if grid is None:
        st.info("Neither the CT nor the mask recorded in result.json can be read; images are not shown.")
        return
    if images.ct is None:
        st.caption("mask-only study: the labelled mask is shown without a CT")
    c1, c2 = st.columns([3, 2])
    window = c1.radio("window", list(WINDOWS), horizontal=True, key="window",
                      format_func=lambda w: f"{w} (W {WINDOWS[w][0]:.0f} L {WINDOWS[w][1]:.0f})",
                      disabled=images.ct is None)
    overlay = c2.checkbox("vertebra mask and labels", value=True, key="overlay", disabled=images.mask is None)
    defaults = default_slices(images)
    cols = st.columns(3)
    src = f"{study.input_path('ct')}|{study.input_path('mask')}"
    for col, plane in zip(cols, PLANES):
        n = grid.shape[PLANES[plane]]
        index = col.slider(f"{plane} slice", 1, n, defaults[plane] + 1, key=f"slice_{plane}") - 1
        png = _slice_png((src, study.study_id), images, plane, index, window, overlay,
                         tuple(sorted(grades.items())))
        col.image(png, width="stretch")


def _grade_style(value) -> str:
    if pd.isna(value):
        return ""
    return f"background-color: {GRADE_COLOURS[int(value)]}; color: white; font-weight: bold"


def vertebra_frame(rows: list[dict]) -> pd.DataFrame:
    """The per-vertebra table shown in the viewer."""
    frame = pd.DataFrame([{
        "vertebra": r["name"], "label": r["label"], "algorithm grade": r["algorithm_grade"],
        "reviewed grade": r["reviewed_grade"], "reviewer": r["reviewer"] or "",
        **{f"p{g}": r[f"prob_grade{g}"] for g in range(4)},
        **{f"RHLV {s[:4]} %": None if r[f"rhlv_{s}"] is None else 100 * r[f"rhlv_{s}"]
           for s in ("anterior", "middle", "posterior", "whole")},
        **{f"H {s[:4]} mm": r[f"height_{s}_mm"] for s in ("anterior", "middle", "posterior")},
        **{f"H healthy {s[:4]} mm": r[f"healthy_height_{s}_mm"] for s in ("anterior", "middle", "posterior")},
        "HU": r["trabecular_hu"], "status": r["status"],
    } for r in rows])
    for col in ("algorithm grade", "reviewed grade"):
        frame[col] = frame[col].astype("Int64")
    return frame


def show_table(rows: list[dict]) -> None:
    frame = vertebra_frame(rows)
    styled = frame.style.map(_grade_style, subset=["algorithm grade", "reviewed grade"])
    number = {c: st.column_config.NumberColumn(format="%.2f" if c.startswith("p") else "%.1f")
              for c in frame.columns if frame[c].dtype.kind == "f"}
    st.dataframe(styled, hide_index=True, column_config=number)
    st.caption("Genant: " + ", ".join(f"{g} {n}" for g, n in GRADE_NAMES.items())
               + ". Heights: measured and pseudo-healthy (mm). RHLV = (H_healthy - H) / H_healthy.")


def show_vertebra(study: Study, name: str) -> None:
    """Straightened original and pseudo-healthy body, its height-loss map and height profile."""
    c1, c2 = st.columns([3, 2])
    fig = straightened_figure(study, name)
    if fig is None:
        c1.info(f"no straightened crops for {name} (not measured, or written without crops)")
    else:
        c1.image(figure_png(fig), caption="straightened frame, mid-sagittal: original | pseudo-healthy",
                 width="stretch")
    png = study.loss_map(name, "png")
    if png is not None:
        c2.image(png.read_bytes(), caption=f"{name} height-loss map (viewed from above)", width="stretch")
    else:
        fig = loss_map_figure(study, name)
        if fig is None:
            c2.info(f"no height-loss map for {name}")
        else:
            c2.image(figure_png(fig), caption=f"{name} height-loss map (from its NIfTI)", width="stretch")
    fig = height_profile_figure(study, name)
    if fig is not None:
        c1.image(figure_png(fig), caption="body height along AP", width="stretch")
