"""Saving and reading reviews: each save appends an audit entry and upserts the current review,
in one transaction, so concurrent reviewers never lose a save."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from healthivert.review.db import ACTIONS, AuditEntry, Review, open_database, utcnow

MAX_REVIEWER_CHARS = 200
MAX_COMMENT_CHARS = 4000


@dataclass(frozen=True)
class ReviewRequest:
    """One reviewer decision on one vertebra, checked on construction.

    Attributes:
        study_id, label, name: the vertebra (VerSe label and name).
        algorithm_grade: the grade in result.json (None when the algorithm did not grade it).
        action: ``"accept"`` the algorithm grade or ``"override"`` it with ``grade``.
        reviewer: who decides (required).
        comment: why (required for an override).
        grade: the new grade 0-3 for an override; ignored for an accept.
    """

    study_id: str
    label: int
    name: str
    algorithm_grade: int | None
    action: str
    reviewer: str
    comment: str = ""
    grade: int | None = None

    def __post_init__(self) -> None:
        reviewer, comment = (self.reviewer or "").strip(), (self.comment or "").strip()
        object.__setattr__(self, "reviewer", reviewer)
        object.__setattr__(self, "comment", comment)
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}; got {self.action!r}")
        if not reviewer:
            raise ValueError("a review needs the reviewer's name")
        if len(reviewer) > MAX_REVIEWER_CHARS or len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"reviewer name (max {MAX_REVIEWER_CHARS}) or comment (max {MAX_COMMENT_CHARS}) "
                             "too long")
        if self.action == "accept":
            if self.algorithm_grade is None:
                raise ValueError(f"{self.name} has no algorithm grade to accept; override it with a grade")
        else:
            if self.grade not in (0, 1, 2, 3):
                raise ValueError(f"an override needs a Genant grade 0-3; got {self.grade!r}")
            if self.grade == self.algorithm_grade:
                raise ValueError(f"grade {self.grade} is the algorithm's own grade: accept it instead")
            if not comment:
                raise ValueError("an override needs a comment saying why")

    @property
    def new_grade(self) -> int:
        return int(self.algorithm_grade if self.action == "accept" else self.grade)  # type: ignore[arg-type]


class ReviewStore:
    """Reviews of the studies in one database.

    Args:
        url: SQLAlchemy URL, e.g. ``sqlite:///results/reviews.sqlite`` or
            ``postgresql+psycopg://user@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.sessions: sessionmaker[Session] = open_database(url)

    def save(self, request: ReviewRequest, at: datetime | None = None) -> Review:
        """Record a decision: append its audit entry and upsert the current review, atomically."""
        at = at or utcnow()
        with self.sessions.begin() as session:
            current = session.scalars(
                select(Review).where(Review.study_id == request.study_id, Review.label == request.label)
                .with_for_update()
            ).one_or_none()
            old = current.reviewed_grade if current is not None else request.algorithm_grade
            session.add(AuditEntry(
                at=at, reviewer=request.reviewer, study_id=request.study_id, label=request.label,
                name=request.name, algorithm_grade=request.algorithm_grade, old_grade=old,
                new_grade=request.new_grade, action=request.action, comment=request.comment,
            ))
            values = {"study_id": request.study_id, "label": request.label, "name": request.name,
                      "algorithm_grade": request.algorithm_grade, "reviewed_grade": request.new_grade,
                      "action": request.action, "reviewer": request.reviewer, "comment": request.comment,
                      "reviewed_at": at}
            session.execute(_upsert(session, values))
        return self.review(request.study_id, request.label)  # type: ignore[return-value]

    def review(self, study_id: str, label: int) -> Review | None:
        with self.sessions() as session:
            return session.scalars(
                select(Review).where(Review.study_id == study_id, Review.label == int(label))
            ).one_or_none()

    def reviews(self, study_id: str | None = None) -> dict[tuple[str, int], Review]:
        """Current reviews, keyed by (study_id, label); all studies when ``study_id`` is None."""
        query = select(Review)
        if study_id is not None:
            query = query.where(Review.study_id == study_id)
        with self.sessions() as session:
            return {(r.study_id, r.label): r for r in session.scalars(query)}

    def audit(self, study_id: str | None = None, label: int | None = None) -> list[AuditEntry]:
        """Audit entries in the order they were saved."""
        query = select(AuditEntry).order_by(AuditEntry.id)
        if study_id is not None:
            query = query.where(AuditEntry.study_id == study_id)
        if label is not None:
            query = query.where(AuditEntry.label == int(label))
        with self.sessions() as session:
            return list(session.scalars(query))

    def dispose(self) -> None:
        self.sessions.kw["bind"].dispose()


def _upsert(session: Session, values: dict):
    """INSERT ... ON CONFLICT (study_id, label) DO UPDATE, counting revisions atomically."""
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"review database backend {dialect!r} is not supported; use SQLite or PostgreSQL")
    insert = (sqlite if dialect == "sqlite" else postgresql).insert
    stmt = insert(Review).values(**values, revision=1)
    updates = {k: stmt.excluded[k] for k in values if k not in ("study_id", "label")}
    return stmt.on_conflict_do_update(index_elements=["study_id", "label"],
                                      set_={**updates, "revision": Review.revision + 1})
