"""Stepping through the work: next / previous unreviewed vertebra of the study and unreviewed study
of the results folder (buttons with keyboard shortcuts N / P and Shift+N / Shift+P)."""

from __future__ import annotations

import streamlit as st

from healthivert.review.navigate import step_to
from healthivert.review.overview import list_studies
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore
from healthivert.review.studies import Study
from healthivert.review.tables import unreviewed_labels

STUDY_KEYS: dict[int, str] = {1: "Shift+N", -1: "Shift+P"}
VERTEBRA_KEYS: dict[int, str] = {1: "N", -1: "P"}


def _step_vertebra(store: ReviewStore, study: Study, step: int) -> None:
    """Callback: open the next (previous) vertebra the algorithm graded that nobody has reviewed."""
    todo = set(unreviewed_labels(study, store.reviews(study.study_id)))
    order = [v.label for v in study.vertebrae]
    target = step_to(order, todo, st.session_state.get("vertebra"), step)
    if target is None:
        st.session_state["nav_message"] = "every graded vertebra of this study is reviewed"
    else:
        st.session_state["vertebra"] = target


def _step_study(folders: ResultsFolder, store: ReviewStore, current: str | None, step: int) -> None:
    """Callback: open the next (previous) study, in the study list's order, not fully reviewed."""
    rows = list_studies(folders, store)
    todo = {r["study_id"] for r in rows if r["review_status"] != "reviewed"}
    target = step_to([r["study_id"] for r in rows], todo, current, step)
    if target is None:
        st.session_state["nav_message"] = "every study is reviewed"
    else:
        st.session_state["study"] = target


def study_buttons(folders: ResultsFolder, store: ReviewStore, current: str | None) -> None:
    """Previous / next unreviewed study, in the sidebar."""
    for step, text in ((1, "next unreviewed study ▶"), (-1, "◀ previous unreviewed study")):
        st.sidebar.button(text, key=f"study_step_{step:+d}", shortcut=STUDY_KEYS[step], on_click=_step_study,
                          args=(folders, store, current, step), width="stretch")


def vertebra_buttons(store: ReviewStore, study: Study, container) -> None:
    """Previous / next unreviewed vertebra."""
    c1, c2 = container.columns(2)
    for col, step, text in ((c1, -1, "◀ unreviewed"), (c2, 1, "unreviewed ▶")):
        col.button(text, key=f"vertebra_step_{step:+d}", shortcut=VERTEBRA_KEYS[step], on_click=_step_vertebra,
                   args=(store, study, step), help=f"{'next' if step > 0 else 'previous'} unreviewed vertebra")


def show_nav_message() -> None:
    message = st.session_state.pop("nav_message", None)
    if message:
        st.info(message)
