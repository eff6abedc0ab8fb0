"""The review database: append-only audit, algorithm grade untouched, concurrent saves kept."""

from __future__ import annotations

import hashlib
import multiprocessing
import threading
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from healthivert.review import ResultsFolder, ReviewRequest, ReviewStore, Study
from healthivert.review.db import AppendOnlyError, AuditEntry, Review
from tests.review.results_fixture import CT_STUDY


def _req(action="override", grade=2, reviewer="Dr A", comment="why", algorithm=3, label=20, study="sub-x"):
    return ReviewRequest(study, label, "L1", algorithm, action, reviewer, comment, grade)


@pytest.fixture
def store(tmp_path: Path) -> ReviewStore:
    s = ReviewStore(f"sqlite:///{tmp_path / 'r.sqlite'}")
    yield s
    s.dispose()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"action": "delete"}, "action must be one of"),
    ({"reviewer": "  "}, "reviewer's name"),
    ({"grade": 4}, "grade 0-3"),
    ({"grade": None}, "grade 0-3"),
    ({"grade": 3}, "accept it instead"),
    ({"comment": ""}, "needs a comment"),
    ({"action": "accept", "algorithm": None}, "no algorithm grade"),
    ({"reviewer": "x" * 201}, "too long"),
])
def test_bad_requests(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _req(**kwargs)


def test_override_then_accept_keeps_both_in_the_audit(store: ReviewStore) -> None:
    store.save(_req(grade=2, comment="anterior wall intact"))
    r = store.save(_req(action="accept", reviewer="Dr B", comment="", grade=None))
    assert (r.reviewed_grade, r.action, r.reviewer, r.algorithm_grade, r.revision) == (3, "accept", "Dr B", 3, 2)
    audit = store.audit("sub-x", 20)
    assert [(a.reviewer, a.action, a.old_grade, a.new_grade) for a in audit] == [
        ("Dr A", "override", 3, 2), ("Dr B", "accept", 2, 3)]
    assert audit[0].comment == "anterior wall intact"
    assert all(a.at.tzinfo == UTC for a in audit) and r.reviewed_at.tzinfo == UTC
    assert audit[0].at <= audit[1].at


def test_ungraded_vertebra_can_be_graded_by_override(store: ReviewStore) -> None:
    r = store.save(_req(algorithm=None, grade=0, comment="cut by FOV but readable"))
    assert (r.algorithm_grade, r.reviewed_grade) == (None, 0)
    assert store.audit()[0].old_grade is None


def test_audit_is_append_only(store: ReviewStore) -> None:
    store.save(_req())
    with store.sessions() as session:
        entry = session.get(AuditEntry, 1)
        entry.new_grade = 0
        with pytest.raises(AppendOnlyError):
            session.commit()
    with store.sessions() as session:
        session.delete(session.get(AuditEntry, 1))
        with pytest.raises(AppendOnlyError):
            session.commit()
    for sql in ("UPDATE review_audit SET new_grade = 0", "DELETE FROM review_audit"):
        with pytest.raises(DatabaseError, match="append-only"), store.sessions.begin() as session:
            session.execute(text(sql))
    assert [a.new_grade for a in store.audit()] == [2]


def test_algorithm_grade_is_never_written(results) -> None:
    folders = ResultsFolder.open(results.root)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in results.root.rglob("*") if p.is_file()}
    study = Study.load(folders, CT_STUDY)
    v = study.vertebra(20)
    store = ReviewStore(results.db_url)
    store.save(ReviewRequest(CT_STUDY, 20, "L1", v["genant_grade"], "override", "Dr A", "c",
                             (v["genant_grade"] + 1) % 4))
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in results.root.rglob("*") if p.is_file()}
    assert before == after  # result.json, csv, maps: untouched (the database lives elsewhere here)
    assert Study.load(folders, CT_STUDY).vertebra(20)["genant_grade"] == v["genant_grade"]
    assert store.review(CT_STUDY, 20).algorithm_grade == v["genant_grade"]
    store.dispose()


def _save_many(url: str, who: str, n: int, label: int = 20) -> None:
    store = ReviewStore(url)
    for i in range(n):
        store.save(_req(grade=i % 3, reviewer=who, comment=f"{who} {i}", label=label))
    store.dispose()


def _check_nothing_lost(url: str, writers: list[str], n: int) -> None:
    store = ReviewStore(url)
    audit = store.audit("sub-x", 20)
    assert len(audit) == len(writers) * n
    assert sorted(a.comment for a in audit) == sorted(f"{w} {i}" for w in writers for i in range(n))
    review = store.review("sub-x", 20)
    assert review.revision == len(writers) * n
    last = audit[-1]  # the current review is the last save, and the audit chain is unbroken
    assert (review.reviewer, review.comment, review.reviewed_grade) == (last.reviewer, last.comment, last.new_grade)
    assert all(b.old_grade == a.new_grade for a, b in zip(audit, audit[1:]))
    with store.sessions() as session:
        assert session.query(Review).count() == 1
    store.dispose()


def test_concurrent_saves_from_threads_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    ReviewStore(url).dispose()  # tables first
    writers = [f"thread{i}" for i in range(6)]
    threads = [threading.Thread(target=_save_many, args=(url, w, 15)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _check_nothing_lost(url, writers, 15)


def test_concurrent_saves_from_processes_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    ReviewStore(url).dispose()
    ctx = multiprocessing.get_context("fork")
    writers = [f"proc{i}" for i in range(4)]
    procs = [ctx.Process(target=_save_many, args=(url, w, 15)) for w in writers]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * len(procs)
    _check_nothing_lost(url, writers, 15)


def test_bad_database_url() -> None:
    with pytest.raises(ValueError, match="cannot use review database"):
        ReviewStore("not a url")
