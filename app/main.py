"""HealthiVert review viewer (Streamlit).

Start it with ``healthivert view RESULTS_DIR [--port P] [--db URL]``, or
``streamlit run app/main.py -- --results RESULTS_DIR [--db URL]``. It reads only the results
folder it was started on (and each study's own recorded CT / mask), and writes only the review
database (``RESULTS_DIR/reviews.sqlite`` unless ``--db`` names another).
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the ui_* modules beside this file

from ui_config import open_store, read_config, results_folder  # noqa: E402
from ui_list import show_study_list  # noqa: E402
from ui_review import show_downloads, show_review  # noqa: E402
from ui_study import show_planes, show_table, show_vertebra, study_images  # noqa: E402

from healthivert.errors import InputError  # noqa: E402
from healthivert.models import models_summary  # noqa: E402
from healthivert.review.paths import UnknownStudyError  # noqa: E402
from healthivert.review.studies import Study  # noqa: E402
from healthivert.review.tables import study_summary, vertebra_rows  # noqa: E402

LIST = "(study list)"


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
    if st.sidebar.button("rescan results folder", key="rescan"):
        folders.refresh()
    ids = sorted(folders.studies)

    # The query string may name a study (a shareable link); it is only ever matched against the list.
    if "study" not in st.session_state:
        wanted = st.query_params.get("study")
        if wanted is not None and wanted not in folders.studies:
            st.session_state["bad_link"] = True
        st.session_state["study"] = wanted if wanted in folders.studies else LIST
    choice = st.sidebar.selectbox("study", [LIST, *ids], key="study")
    if st.session_state.pop("bad_link", False):
        st.warning("The link names a study that is not in this results folder; showing the study list.")

    if choice == LIST:
        st.query_params.clear()
        show_study_list(folders, store)
        st.stop()

    st.query_params["study"] = choice
    if st.session_state.get("shown_study") != choice:  # per-study widgets start afresh
        for key in ("vertebra", "slice_sagittal", "slice_coronal", "slice_axial"):
            st.session_state.pop(key, None)
        st.session_state["shown_study"] = choice
    try:
        study = Study.load(folders, choice)
    except (UnknownStudyError, OSError, ValueError) as exc:
        st.error(f"cannot open the study: {exc}")
        st.stop()

    reviews = store.reviews(study.study_id)
    rows = vertebra_rows(study, reviews)
    summary = study_summary(study, reviews)
    st.title(f"Study {study.study_id}")
    m = st.columns(4)
    m[0].metric("vertebrae graded", f"{summary['graded']} of {summary['vertebrae']}")
    m[1].metric("worst grade (algorithm)", "-" if summary["worst_grade"] is None else summary["worst_grade"])
    worst_final = summary["worst_final_grade"]
    m[2].metric("worst grade (after review)", "-" if worst_final is None else worst_final)
    m[3].metric("review status", summary["review_status"])

    images = study_images(study)
    show_planes(study, images, {int(r["label"]): r["final_grade"] for r in rows})
    st.subheader("Vertebrae")
    show_table(rows)
    if "models" in study.result:  # results written before models were recorded have none
        st.caption(models_summary(study.result["models"]))

    names = {int(v["label"]): v["name"] for v in study.vertebrae}
    if not names:
        st.info("This study has no vertebrae.")
        st.stop()
    worst = max(rows, key=lambda r: -1 if r["final_grade"] is None else r["final_grade"])
    labels = list(names)
    label = st.selectbox("vertebra", labels, index=labels.index(int(worst["label"])), key="vertebra",
                         format_func=lambda lab: names[lab])
    show_vertebra(study, names[label])
    show_review(store, study, label)
    show_downloads(store, study, rows)


# Streamlit runs this file as __main__; a spawned process (a Dask worker started while
# Streamlit had made this file the main module) imports it as __mp_main__ and must not run it.
if __name__ == "__main__":
    main()
