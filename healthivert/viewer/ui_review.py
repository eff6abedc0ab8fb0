"""Reviewing one vertebra (accept or override, with a comment; the reviewer is the one the viewer
was started for), its audit trail, relabelling the study's levels, and the study's downloads.
Each vertebra has its own form (widget keys per study and label), started from its stored
review, so a decision made on one vertebra never carries over to the next.

Keyboard: Streamlit's own button shortcuts (``st.button(shortcut=...)``): A accept, O override,
Ctrl+Enter save, N / P next / previous unreviewed vertebra, Shift+N / Shift+P next / previous
unreviewed study. Single keys do nothing while the cursor is in a text field.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from healthivert.review.db import Review
from healthivert.review.export import rows_csv, rows_json, study_images_or_none
from healthivert.review.relabel import MAX_SHIFT, shift_text, shifted_names
from healthivert.review.report_html import study_report_html
from healthivert.review.store import (
    RelabelConflictError,
    RelabelRequest,
    ReviewConflictError,
    ReviewRequest,
    ReviewStore,
)
from healthivert.review.studies import GRADE_NAMES, Study

FORM_FIELDS: tuple[str, ...] = ("action", "grade", "comment")
SHORTCUTS: dict[str, str] = {"accept": "A", "override": "O", "save": "Ctrl+Enter"}


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


def _save(store: ReviewStore, study: Study, label: int, name: str, shown_revision: int,
          action: str | None = None) -> None:
    """Button callback: runs before the page is redrawn, so every table shows the new review.

    ``shown_revision`` is the revision of the review the page showed when it was drawn (0: none);
    the store refuses the save when another reviewer has saved since. ``name`` is the name shown
    (after any relabelling). ``action`` overrides the form's decision (the one-click accept).
    """
    v = study.vertebra(label)  # the algorithm grade comes from result.json, not from the browser
    state = st.session_state
    form = {f: state.get(form_key(f, study.study_id, label)) for f in FORM_FIELDS}
    try:
        review = store.save(ReviewRequest(
            study.study_id, v.label, v.name, v.genant_grade, action or form["action"],
            state.get("reviewer") or "", form["comment"] or "", form["grade"], shown_revision,
        ))
    except (ValueError, ReviewConflictError) as exc:
        state["review_message"] = ("error", str(exc))
        return
    state["review_message"] = ("success", f"saved: {name} grade {review.reviewed_grade} "
                                          f"({review.action}) by {review.reviewer}")
    state[form_key("comment", study.study_id, label)] = ""
    state[form_key("action", study.study_id, label)] = review.action


def _choose_override(study_id: str, label: int) -> None:
    st.session_state[form_key("action", study_id, label)] = "override"


def show_review(store: ReviewStore, study: Study, label: int, name: str) -> None:
    v = study.vertebra(label)
    algorithm = v.genant_grade
    current = store.review(study.study_id, label)
    st.subheader(f"Review {name}")
    if algorithm is None:
        st.write(f"The algorithm did not grade {name}: {v.status}")
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
    shown = current.revision if current is not None else 0
    b1, b2, _ = st.columns([2, 2, 3])
    if algorithm is not None:
        b1.button(f"Accept grade {algorithm}", key="accept", shortcut=SHORTCUTS["accept"], on_click=_save,
                  args=(store, study, label, name, shown, "accept"), help="saves at once (with the comment, if any)")
    b2.button("Override ...", key="override", shortcut=SHORTCUTS["override"], on_click=_choose_override,
              args=(study.study_id, label), help="choose a grade and say why, then Save")
    c1, c2 = st.columns(2)
    action = c1.radio("decision", actions, horizontal=True, key=key["action"],
                      format_func=lambda a: f"accept grade {algorithm}" if a == "accept" else "override")
    c2.selectbox("reviewed grade", [0, 1, 2, 3], key=key["grade"], disabled=action != "override",
                 format_func=lambda g: f"{g} {GRADE_NAMES[g]}")
    st.text_area("comment" + (" (required for an override)" if action == "override" else ""), key=key["comment"],
                 max_chars=4000)
    st.button("Save review", key="save", type="primary", shortcut=SHORTCUTS["save"], on_click=_save,
              args=(store, study, label, name, shown))
    kind, text = st.session_state.pop("review_message", (None, None))
    if kind == "error":
        st.error(text)
    elif kind == "success":
        st.success(text)
    _show_audit(store, study, label)


def _show_audit(store: ReviewStore, study: Study, label: int) -> None:
    audit = store.audit(study.study_id, label)
    if audit:
        st.caption("audit trail (append-only). Outcome *refused*: saved from a page that showed an older "
                   "review than the current one; not applied.")
        st.dataframe(pd.DataFrame([{
            "when (UTC)": a.at.strftime("%Y-%m-%d %H:%M:%S"), "reviewer": a.reviewer, "action": a.action,
            "outcome": a.outcome, "old grade": a.old_grade, "new grade": a.new_grade, "comment": a.comment,
        } for a in audit]), hide_index=True)


def _relabel(store: ReviewStore, study: Study, base_shift: int) -> None:
    """Button callback: record the study's shift of level names."""
    state = st.session_state
    request_args = (study.study_id, tuple(v.label for v in study.vertebrae),
                    int(state.get(f"relabel_shift|{study.study_id}", 0)), state.get("reviewer") or "",
                    state.get(f"relabel_comment|{study.study_id}", ""), base_shift)
    try:
        entry = store.relabel(RelabelRequest(*request_args))
    except (ValueError, RelabelConflictError) as exc:
        state["relabel_message"] = ("error", str(exc))
        return
    state["relabel_message"] = ("success", f"level names: shift {shift_text(entry.shift)} by {entry.reviewer}")
    state[f"relabel_comment|{study.study_id}"] = ""


def show_relabel(store: ReviewStore, study: Study, shift: int, unanchored: bool) -> None:
    """Correct the level names by a shift (the algorithm's labels in result.json stay as they are)."""
    history = store.label_shifts(study.study_id)
    with st.expander("Level names: relabel by a shift", expanded=unanchored and not history):
        st.caption("A shift moves every name the same number of levels (+1: L1 becomes L2, for labels one level "
                   "low). It is audited in the review database; result.json keeps the algorithm's labels, reviews "
                   "stay with their vertebra, and exports give both names. Save shift 0 to record that you "
                   "checked the names.")
        key = f"relabel_shift|{study.study_id}"
        if key not in st.session_state:
            st.session_state[key] = shift
        new = st.number_input("shift (levels)", -MAX_SHIFT, MAX_SHIFT, step=1, key=key)
        labels = [v.label for v in study.vertebrae]
        try:
            preview = shifted_names(labels, int(new))
            st.write(", ".join(f"{v.name} → {preview[v.label]}" for v in study.vertebrae))
        except ValueError as exc:
            st.error(str(exc))
        st.text_input("why (which anchor you counted from)", key=f"relabel_comment|{study.study_id}", max_chars=4000)
        st.button("Save level names", key="relabel", on_click=_relabel, args=(store, study, shift))
        kind, text = st.session_state.pop("relabel_message", (None, None))
        if kind:
            (st.error if kind == "error" else st.success)(text)
        if history:
            st.dataframe(pd.DataFrame([{
                "when (UTC)": h.at.strftime("%Y-%m-%d %H:%M:%S"), "reviewer": h.reviewer,
                "shift": shift_text(h.shift), "was": shift_text(h.previous_shift), "comment": h.comment,
            } for h in history]), hide_index=True)


def show_downloads(store: ReviewStore, study: Study, rows: list[dict]) -> None:
    st.subheader("Export")
    audit = [a.as_dict() for a in store.audit(study.study_id)]
    relabels = [r.as_dict() for r in store.label_shifts(study.study_id)]
    c1, c2, c3 = st.columns(3)
    c1.download_button("CSV", rows_csv(rows), f"{study.study_id}_reviewed.csv", "text/csv", key="dl_csv")
    c2.download_button("JSON", rows_json(rows, audit, study.study_id, relabels), f"{study.study_id}_reviewed.json",
                       "application/json", key="dl_json")
    if c3.checkbox("prepare HTML report", key="want_report"):
        html = study_report_html(study, rows, study_images_or_none(study), audit=audit, relabels=relabels)
        c3.download_button("HTML report", html, f"{study.study_id}_report.html", "text/html", key="dl_html")
