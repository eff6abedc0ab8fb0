"""HealthiVert review viewer (Streamlit): the script ``healthivert view`` runs.

Start it with ``healthivert view RESULTS_DIR [--port P] [--db URL]``, or
``streamlit run app/main.py -- --results RESULTS_DIR [--db URL]`` in a source checkout. It reads
only the results folder it was started on (and each study's own recorded CT / mask), and writes
only the review database (``RESULTS_DIR/reviews.sqlite`` unless ``--db`` names another).
"""

from __future__ import annotations

import re
import sys

import streamlit as st

from healthivert.errors import InputError
from healthivert.models import models_summary
from healthivert.review.paths import UnknownStudyError
from healthivert.review.relabel import shift_text
from healthivert.review.render import StudyImages
from healthivert.review.report_html import UNANCHORED_WARNING
from healthivert.review.store import ReviewStore
from healthivert.review.studies import Study
from healthivert.review.tables import display_names, study_summary, vertebra_rows
from healthivert.viewer.ui_config import ViewerConfig, open_store, read_config, results_folder
from healthivert.viewer.ui_list import show_study_list
from healthivert.viewer.ui_nav import show_nav_message, study_buttons, vertebra_buttons
from healthivert.viewer.ui_review import show_downloads, show_relabel, show_review
from healthivert.viewer.ui_study import (
    draw_ahead,
    image_pick,
    show_planes,
    show_table,
    show_vertebra,
    start_figures,
    study_images,
    table_pick,
)

LIST = "(study list)"
#: per-study widgets, started afresh when another study is opened
PER_STUDY_KEYS: tuple[str, ...] = ("vertebra", "slice_sagittal", "slice_coronal", "slice_axial", "slices_follow",
                                   "vertebra_table", "table_pick",
                                   "plane_clicked", *(f"{k}_{p}" for k in ("click", "click_seen", "plane_drawn")
                                                      for p in ("sagittal", "coronal")))


def reviewer_identity(config: ViewerConfig) -> str:
    """Who reviews: from the launch (``--reviewer``, else the login user), shown in the sidebar;
    asked once per session only when neither gives a name."""
    if config.reviewer:
        st.session_state["reviewer"] = config.reviewer
        st.sidebar.markdown(f"reviewer: **{config.reviewer}**")
    else:
        st.sidebar.text_input("reviewer (no login user: say who you are)", key="reviewer", max_chars=200)
    return st.session_state.get("reviewer") or ""


def choose_study(folders) -> str:
    """The study chosen in the sidebar (a link's ``?study=`` only when it is in the list)."""
    ids = sorted(folders.studies)
    if "study" not in st.session_state:
        wanted = st.query_params.get("study")
        if wanted is not None and wanted not in folders.studies:
            st.session_state["bad_link"] = True
        st.session_state["study"] = wanted if wanted in folders.studies else LIST
    if st.session_state["study"] not in (LIST, *ids):
        st.session_state["study"] = LIST
    return st.sidebar.selectbox("study", [LIST, *ids], key="study")


def labels_banner(study: Study, store: ReviewStore, shift: int) -> bool:
    """The unanchored-labels warning (and a reviewer's relabelling); True when unanchored."""
    latest = store.label_shift(study.study_id)
    if study.labels_anchored is False:
        checked = (f" A reviewer has checked them: {latest.reviewer} set the shift to {shift_text(latest.shift)}."
                   if latest is not None else "")
        st.error(f"⚠ {UNANCHORED_WARNING} (anchor: {study.labels.get('anchor', '?')}).{checked}")
    elif shift:
        st.info(f"Level names shifted by {shift_text(shift)} by {latest.reviewer}; result.json keeps the "
                "algorithm's names (shown in the table beside them).")
    return study.labels_anchored is False


def _plain(text: str) -> str:
    """Text from a file shown literally in Streamlit's markdown."""
    return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>$])", r"\\\1", text)


def show_study_metadata(study: Study) -> None:
    """The study's DICOM header (patient, date, series, scanner, spacing, UID) under its title."""
    fields, notes = study.metadata
    st.caption(" · ".join(f"{_plain(k)}: **{_plain(v)}**" for k, v in fields))
    for note in notes:
        st.caption(f"⚠ {_plain(note)}")


def choose_vertebra(rows: list[dict], names: dict[int, str], images: StudyImages) -> int:
    """The vertebra in review: a row just picked in the table or a vertebra just clicked on a plane,
    else the one kept across reruns, else the worst (by final grade)."""
    labels = list(names)
    picked = table_pick(labels)
    if picked is None:
        picked = image_pick(images, labels)
    if picked is not None:
        st.session_state["vertebra"] = picked
    if st.session_state.get("vertebra") not in labels:
        worst = max(rows, key=lambda r: -1 if r["final_grade"] is None else r["final_grade"])
        st.session_state["vertebra"] = int(worst["label"])
    return st.session_state["vertebra"]


def main() -> None:
    """One run of the viewer script (Streamlit reruns it on every interaction)."""
    st.set_page_config(page_title="HealthiVert review", layout="wide")

    config = read_config(sys.argv[1:])
    if config is None:
        st.error("No results folder: start the viewer with `healthivert view RESULTS_DIR`.")
        st.stop()
    try:
        folders = results_folder(config.results)
        store = open_store(folders, config.db_url)
    except (InputError, ValueError) as exc:
        st.error(str(exc))
        st.stop()

    st.sidebar.title("HealthiVert review")
    reviewer_identity(config)
    if st.sidebar.button("rescan results folder", key="rescan"):
        folders.refresh()
    choice = choose_study(folders)
    study_buttons(folders, store, None if choice == LIST else choice)
    st.sidebar.caption("keys: A accept · O override · Ctrl+Enter save · N / P next / previous unreviewed "
                       "vertebra · Shift+N / Shift+P unreviewed study")
    if st.session_state.pop("bad_link", False):
        st.warning("The link names a study that is not in this results folder; showing the study list.")
    show_nav_message()

    if choice == LIST:
        st.query_params.clear()
        show_study_list(folders, store)
        st.stop()

    st.query_params["study"] = choice
    if st.session_state.get("shown_study") != choice:  # per-study widgets start afresh
        for key in PER_STUDY_KEYS:
            st.session_state.pop(key, None)
        st.session_state["shown_study"] = choice
    try:
        study = Study.load(folders, choice)
    except (UnknownStudyError, OSError, ValueError) as exc:
        st.error(f"cannot open the study: {exc}")
        st.stop()
    show_study(folders, store, study)


def show_study(folders, store: ReviewStore, study: Study) -> None:
    """The study page: labels warning, summary, planes, table, the vertebra in review, exports."""
    latest = store.label_shift(study.study_id)
    shift = latest.shift if latest is not None else 0
    try:
        names = display_names(study, shift)
    except ValueError as exc:  # result.json changed since the shift was saved
        st.warning(f"the saved shift of the level names no longer fits this study ({exc}); showing the algorithm's")
        shift, names = 0, display_names(study, 0)
    reviews = store.reviews(study.study_id)
    rows = vertebra_rows(study, reviews, shift)
    summary = study_summary(study, reviews, shift)
    st.title(f"Study {study.study_id}")
    show_study_metadata(study)
    unanchored = labels_banner(study, store, shift)
    m = st.columns(4)
    m[0].metric("vertebrae graded", f"{summary['graded']} of {summary['vertebrae']}")
    m[1].metric("worst grade (algorithm)", "-" if summary["worst_grade"] is None else summary["worst_grade"])
    worst_final = summary["worst_final_grade"]
    m[2].metric("worst grade (after review)", "-" if worst_final is None else worst_final)
    m[3].metric("review status", summary["review_status"])
    if not names:
        st.info("This study has no vertebrae.")
        show_relabel(store, study, shift, unanchored)
        st.stop()

    images = study_images(study)
    label = choose_vertebra(rows, names, images)
    start_figures(study, label)
    settings = show_planes(study, images, {int(r["label"]): r["final_grade"] for r in rows}, names, label)
    st.subheader("Vertebrae")
    show_table(rows)
    if "models" in study.result:  # results written before models were recorded have none
        st.caption(models_summary(study.result["models"]))
    c1, c2 = st.columns([2, 3])
    label = c1.selectbox("vertebra", list(names), key="vertebra", format_func=lambda lab: names[lab])
    vertebra_buttons(store, study, c2)
    show_vertebra(study, label, names[label])
    show_review(store, study, label, names[label])
    show_relabel(store, study, shift, unanchored)
    show_downloads(store, study, rows)
    draw_ahead(study, images, settings, list(names), label)  # the neighbours, once the page is shown


# Streamlit runs this file as __main__; a spawned process (a Dask worker started while
# Streamlit had made this file the main module) imports it as __mp_main__ and must not run it;
# app/main.py imports it and calls main() itself.
if __name__ == "__main__":
    main()
