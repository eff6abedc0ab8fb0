"""Where the viewer reads from: the results folder and the review database, given once at launch
(``healthivert view DIR [--db URL]``: environment variables; or ``streamlit run app/main.py --
--results DIR [--db URL]``). Nothing a browser sends can change them."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

import streamlit as st

from healthivert.review.db import default_url
from healthivert.review.launch import ENV_DB, ENV_RESULTS
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore


@dataclass(frozen=True)
class ViewerConfig:
    results: str
    db_url: str | None


def read_config(argv: list[str]) -> ViewerConfig | None:
    """The results folder and database URL: script arguments first, then the environment."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results")
    parser.add_argument("--db")
    args, _ = parser.parse_known_args(argv)
    results = args.results or os.environ.get(ENV_RESULTS)
    if not results:
        return None
    return ViewerConfig(results, args.db or os.environ.get(ENV_DB) or None)


@st.cache_resource(show_spinner=False)
def results_folder(path: str) -> ResultsFolder:
    return ResultsFolder.open(path)


@st.cache_resource(show_spinner=False)
def review_store(url: str) -> ReviewStore:
    return ReviewStore(url)


def open_store(folders: ResultsFolder, db_url: str | None) -> ReviewStore:
    return review_store(db_url or default_url(folders.root))
