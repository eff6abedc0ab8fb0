"""Reviewing one vertebra (accept or override, with name and comment), its audit trail, and the
study's downloads. Each vertebra has its own form (widget keys per study and label), started from
its stored review, so a decision made on one vertebra never carries over to the next."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from healthivert.review.db import Review
from healthivert.review.export import rows_csv, rows_json, study_images_or_none
from healthivert.review.report_html import study_report_html
from healthivert.review.store import ReviewConflictError, ReviewRequest, ReviewStore
from healthivert.review.studies import GRADE_NAMES, Study

FORM_FIELDS: tuple[str, ...] = ("action", "grade", "comment")


def form_key(field: str, study_id: str, label: int) -> str:
    """A review widget's key: one form per study and vertebra, so no decision carries over to another."""
    return f"review_{field}|{study_id}|{int(label)}"


def _form_start(algorithm: int | None, current: Review | None, actions: list[str]) -> dict[str, object]:
    """The form as a vertebra's stored state gives it: its current review, else the algorithm's grade."""
    if current is not None:
        action, grade = current.action, current.reviewed_grade
    else:
        action, grade = "accept", 0 if algorithm is None else algorithm
    return {"action": action if action in actions else actions[0], "grade": grade, "comment": ""}


def _save(store: ReviewStore, study: Study, label: int, shown_revision: int) -> None:
    """Button callback: runs before the page is redrawn, so every table shows the new review.

    ``shown_revision`` is the revision of the review the page showed when it was drawn (0: none);
    the store refuses the save when another reviewer has saved since.
    """
    v = study.vertebra(label)  # the algorithm grade comes from result.json, not from the browser
    state = st.session_state
    form = {f: state.get(form_key(f, study.study_id, label)) for f in FORM_FIELDS}
    try:
        review = store.save(ReviewRequest(
            study.study_id, int(v["label"]), v["name"], v.get("genant_grade"), form["action"],
            state.get("reviewer", ""), form["comment"] or "", form["grade"], shown_revision,
        ))
    except (ValueError, ReviewConflictError) as exc:
        state["review_message"] = ("error", str(exc))
        return
    state["review_message"] = ("success", f"saved: {review.name} grade {review.reviewed_grade} "
                                          f"({review.action}) by {review.reviewer}")
    state[form_key("comment", study.study_id, label)] = ""


def show_review(store: ReviewStore, study: Study, label: int) -> None:
    v = study.vertebra(label)
    algorithm = v.get("genant_grade")
    current = store.review(study.study_id, label)
    st.subheader(f"Review {v['name']}")
    if algorithm is None:
        st.write(f"The algorithm did not grade {v['name']}: {v.get('status', '')}")
    else:
        st.write(f"Algorithm grade: **{algorithm}** ({GRADE_NAMES[algorithm]})")
    if current is not None:
        st.write(f"Current review: **{current.reviewed_grade}** ({current.action}) by {current.reviewer}, "
                 f"{current.reviewed_at:%Y-%m-%d %H:%M} UTC (revision {current.revision})")
    actions = ["accept", "override"] if algorithm is not None else ["override"]
    key = {f: form_key(f, study.study_id, label) for f in FORM_FIELDS}
    for field, value in _form_start(algorithm, current, actions).items():
        if key[field] not in st.session_state:
            st.session_state[key[field]] = value
    c1, c2 = st.columns(2)
    action = c1.radio("decision", actions, horizontal=True, key=key["action"],
                      format_func=lambda a: f"accept grade {algorithm}" if a == "accept" else "override")
    c2.selectbox("reviewed grade", [0, 1, 2, 3], key=key["grade"], disabled=action != "override",
                 format_func=lambda g: f"{g} {GRADE_NAMES[g]}")
    st.text_input("reviewer", key="reviewer", max_chars=200)
    st.text_area("comment" + (" (required for an override)" if action == "override" else ""), key=key["comment"],
                 max_chars=4000)
    shown = current.revision if current is not None else 0
    st.button("Save review", key="save", type="primary", on_click=_save, args=(store, study, label, shown))
    kind, text = st.session_state.pop("review_message", (None, None))
    if kind == "error":
        st.error(text)
    elif kind == "success":
        st.success(text)
    audit = store.audit(study.study_id, label)
    if audit:
        st.caption("audit trail (append-only). Outcome *refused*: saved from a page that showed an older "
                   "review than the current one; not applied.")
        st.dataframe(pd.DataFrame([{
            "when (UTC)": a.at.strftime("%Y-%m-%d %H:%M:%S"), "reviewer": a.reviewer, "action": a.action,
            "outcome": a.outcome, "old grade": a.old_grade, "new grade": a.new_grade, "comment": a.comment,
        } for a in audit]), hide_index=True)


def show_downloads(store: ReviewStore, study: Study, rows: list[dict]) -> None:
    st.subheader("Export")
    audit = [a.as_dict() for a in store.audit(study.study_id)]
    c1, c2, c3 = st.columns(3)
    c1.download_button("CSV", rows_csv(rows), f"{study.study_id}_reviewed.csv", "text/csv", key="dl_csv")
    c2.download_button("JSON", rows_json(rows, audit, study.study_id), f"{study.study_id}_reviewed.json",
                       "application/json", key="dl_json")
    if c3.checkbox("prepare HTML report", key="want_report"):
        html = study_report_html(study, rows, study_images_or_none(study))
        c3.download_button("HTML report", html, f"{study.study_id}_report.html", "text/html", key="dl_html")
