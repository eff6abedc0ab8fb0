"""Where the viewer reads from and who reviews: the results folder, the review database and the
reviewer, given once at launch (``healthivert view DIR [--db URL] [--reviewer NAME]``: environment
variables; or ``streamlit run app/main.py -- --results DIR [--db URL] [--reviewer NAME]``). The
reviewer defaults to the login user. Nothing a browser sends can change them."""

from __future__ import annotations

import argparse
import getpass
import os
from dataclasses import dataclass

import streamlit as st

from healthivert.review.db import default_url
from healthivert.review.launch import ENV_DB, ENV_RESULTS, ENV_REVIEWER
from healthivert.review.paths import ResultsFolder
from healthivert.review.store import ReviewStore


@dataclass(frozen=True)
class ViewerConfig:
    results: str
    db_url: str | None
    reviewer: str | None  # None: nobody named and no login user to fall back on


def login_user() -> str | None:
    """The operating system's login name, or None where there is none (a container without one)."""
    try:
        return getpass.getuser() or None
    except (OSError, KeyError):
        return None


def read_config(argv: list[str]) -> ViewerConfig | None:
    """The results folder, database URL and reviewer: script arguments first, then the environment
    (the reviewer last from the login user)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--results")
    parser.add_argument("--db")
    parser.add_argument("--reviewer")
    args, _ = parser.parse_known_args(argv)
    results = args.results or os.environ.get(ENV_RESULTS)
    if not results:
        return None
    reviewer = (args.reviewer or os.environ.get(ENV_REVIEWER) or login_user() or "").strip() or None
    return ViewerConfig(results, args.db or os.environ.get(ENV_DB) or None, reviewer)


@st.cache_resource(show_spinner=False)
def results_folder(path: str) -> ResultsFolder:
    return ResultsFolder.open(path)


@st.cache_resource(show_spinner=False)
def review_store(url: str) -> ReviewStore:
    return ReviewStore(url)


def open_store(folders: ResultsFolder, db_url: str | None) -> ReviewStore:
    return review_store(db_url or default_url(folders.root))
