"""The study list: id, vertebrae graded, worst grade, review status, whether the labels are
anchored (and a reviewer's shift of them); filter and sort."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from healthivert.review.overview import REVIEW_STATUSES, SORT_KEYS, filter_studies, list_studies, sort_studies
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore

COLUMNS = {"study_id": "study", "graded": "graded", "vertebrae": "vertebrae", "worst_grade": "worst grade (algorithm)",
           "worst_final_grade": "worst grade (after review)", "reviewed": "reviewed", "review_status": "review status",
           "labels": "labels"}
UNANCHORED_MARK = "⚠ unanchored"


def labels_cell(anchored: bool | None, shift: int) -> str:
    """The study list's labels column: ``⚠ unanchored`` when the labels are a guess, empty when not
    recorded (older results), and a reviewer's shift when there is one."""
    text = {False: UNANCHORED_MARK, True: "anchored", None: ""}[anchored]
    return f"{text} (shifted {shift:+d})".strip() if shift else text


def show_study_list(folders: ResultsFolder, store: ReviewStore) -> None:
    st.header("Studies")
    st.caption(f"results folder: {folders.root}")
    rows = list_studies(folders, store)
    c1, c2, c3, c4 = st.columns([2, 2, 1, 2])
    text = c1.text_input("filter by study id", key="filter_text")
    statuses = c2.multiselect("review status", REVIEW_STATUSES, default=list(REVIEW_STATUSES), key="filter_status")
    min_grade = c3.selectbox("worst grade at least", [None, 1, 2, 3], key="filter_grade",
                             format_func=lambda g: "any" if g is None else str(g))
    sort_by = c4.selectbox("sort by", list(SORT_KEYS), key="sort_by")
    shown = sort_studies(filter_studies(rows, text, statuses, min_grade), sort_by)
    shown = [{**r, "labels": labels_cell(r["labels_anchored"], r["label_shift"])} for r in shown]
    st.write(f"{len(shown)} of {len(rows)} studies")
    frame = pd.DataFrame(shown, columns=list(COLUMNS)).rename(columns=COLUMNS)
    for col in ("worst grade (algorithm)", "worst grade (after review)"):
        frame[col] = frame[col].astype("Int64")
    st.dataframe(frame, hide_index=True, key="study_table")
    unanchored = [r["study_id"] for r in rows if r["labels_anchored"] is False]
    if unanchored:
        st.warning(f"{len(unanchored)} studies with unanchored labels (no sacrum or 12th rib found in "
                   "view, or the count is in doubt): "
                   f"{', '.join(unanchored[:10])}{' ...' if len(unanchored) > 10 else ''}; check their level names.")
    for line in folders.problems:
        st.warning(line)
    st.info("Choose a study in the sidebar to open it, or step through the unreviewed ones with study ▶ "
            "(Shift+N).")
