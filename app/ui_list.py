"""The study list: id, vertebrae graded, worst grade, review status; filter and sort."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from healthivert.review.overview import REVIEW_STATUSES, SORT_KEYS, filter_studies, list_studies, sort_studies
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore

COLUMNS = {"study_id": "study", "graded": "graded", "vertebrae": "vertebrae", "worst_grade": "worst grade (algorithm)",
           "worst_final_grade": "worst grade (after review)", "reviewed": "reviewed", "review_status": "review status"}


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
    st.write(f"{len(shown)} of {len(rows)} studies")
    frame = pd.DataFrame(shown, columns=list(COLUMNS)).rename(columns=COLUMNS)
    for col in ("worst grade (algorithm)", "worst grade (after review)"):
        frame[col] = frame[col].astype("Int64")
    st.dataframe(frame, hide_index=True, key="study_table")
    for line in folders.problems:
        st.warning(line)
    st.info("Choose a study in the sidebar to open it.")
