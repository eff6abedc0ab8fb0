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
from healthivert.review.store import ReviewConflictError
from tests.review.results_fixture import CT_STUDY


def _req(action="override", grade=2, reviewer="Dr A", comment="why", algorithm=3, label=20, study="sub-x",
         base=None):
    return ReviewRequest(study, label, "L1", algorithm, action, reviewer, comment, grade, base)


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
    ({"base": -1}, "revision"),
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
    store.save(ReviewRequest(CT_STUDY, 20, "L1", v.genant_grade, "override", "Dr A", "c",
                             (v.genant_grade + 1) % 4))
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in results.root.rglob("*") if p.is_file()}
    assert before == after  # result.json, csv, maps: untouched (the database lives elsewhere here)
    assert Study.load(folders, CT_STUDY).vertebra(20).genant_grade == v.genant_grade
    assert store.review(CT_STUDY, 20).algorithm_grade == v.genant_grade
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


def test_save_based_on_a_stale_view_is_refused_and_kept(store: ReviewStore) -> None:
    """A accepts; B, whose page showed no review (revision 0), overrides: refused, A's review stays,
    B's attempt is in the audit trail as refused; B, now shown A's review, can save."""
    a = store.save(_req(action="accept", grade=None, comment="", base=0))
    assert a.revision == 1
    with pytest.raises(ReviewConflictError, match="reviewed meanwhile") as refused:
        store.save(_req(grade=1, reviewer="Dr B", comment="wedge anteriorly", base=0))
    current = refused.value.current
    assert (current.reviewer, current.action, current.reviewed_grade, current.revision) == ("Dr A", "accept", 3, 1)
    assert "Dr A" in str(refused.value) and "grade 3 (accept)" in str(refused.value)
    review = store.review("sub-x", 20)
    assert (review.reviewer, review.reviewed_grade, review.revision) == ("Dr A", 3, 1)
    audit = store.audit("sub-x", 20)
    assert [(e.reviewer, e.outcome, e.base_revision, e.old_grade, e.new_grade, e.comment) for e in audit] == [
        ("Dr A", "saved", 0, 3, 3, ""), ("Dr B", "refused", 0, 3, 1, "wedge anteriorly")]
    b = store.save(_req(grade=1, reviewer="Dr B", comment="wedge anteriorly", base=1))
    assert (b.reviewer, b.reviewed_grade, b.revision) == ("Dr B", 1, 2)
    assert [e.outcome for e in store.audit("sub-x", 20)] == ["saved", "refused", "saved"]


def test_stale_base_beyond_the_current_revision_is_refused(store: ReviewStore) -> None:
    with pytest.raises(ReviewConflictError, match="not reviewed"):
        store.save(_req(base=2))
    assert store.review("sub-x", 20) is None
    assert [e.outcome for e in store.audit()] == ["refused"]


def _save_from(url: str, who: str, base: int, outcomes: list[str]) -> None:
    store = ReviewStore(url)
    try:
        store.save(_req(grade=1, reviewer=who, comment=who, base=base))
        outcomes.append("saved")
    except ReviewConflictError:
        outcomes.append("refused")
    store.dispose()


def test_concurrent_saves_from_the_same_view_one_wins(tmp_path: Path) -> None:
    """Six reviewers save at once, all from a page with no review: exactly one is kept, every
    attempt is in the audit trail."""
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    ReviewStore(url).dispose()
    outcomes: list[str] = []
    threads = [threading.Thread(target=_save_from, args=(url, f"Dr {i}", 0, outcomes)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused"] * 5 + ["saved"]
    store = ReviewStore(url)
    audit = store.audit("sub-x", 20)
    assert sorted(e.outcome for e in audit) == sorted(outcomes)
    winner = next(e for e in audit if e.outcome == "saved")
    review = store.review("sub-x", 20)
    assert (review.reviewer, review.revision) == (winner.reviewer, 1)
    store.dispose()


def test_audit_of_an_older_database_gains_outcome_columns(tmp_path: Path) -> None:
    """A review database written before saves were checked against a revision: its audit entries
    read as saved, and new saves work."""
    path = tmp_path / "old.sqlite"
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE review_audit (id INTEGER PRIMARY KEY, at DATETIME, reviewer VARCHAR(200),
                study_id VARCHAR(128), label INTEGER, name VARCHAR(8), algorithm_grade INTEGER, old_grade INTEGER,
                new_grade INTEGER, action VARCHAR(16), comment TEXT);
            INSERT INTO review_audit VALUES (1, '2025-01-01 10:00:00', 'Dr Old', 'sub-x', 20, 'L1', 3, 3, 2,
                'override', 'old');
        """)
    store = ReviewStore(f"sqlite:///{path}")
    store.save(_req(action="accept", grade=None, comment="", base=0))
    assert [(e.reviewer, e.outcome, e.base_revision) for e in store.audit()] == [
        ("Dr Old", "saved", None), ("Dr A", "saved", 0)]
    store.dispose()
