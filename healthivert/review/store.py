"""Saving and reading reviews: each save appends an audit entry and upserts the current review,
in one transaction, so concurrent reviewers never lose a save.

Optimistic concurrency: a request may name the revision of the review its reviewer was shown
(``base_revision``, 0 for none). A save whose base is no longer current is refused in the same
transaction (:class:`ReviewConflictError`, carrying the current review) and audited as refused,
so one reviewer never silently overwrites another and no decision is lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from healthivert.review.db import ACTIONS, AuditEntry, LabelShift, Review, open_database, utcnow
from healthivert.review.relabel import check_shift

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
        base_revision: the revision of the vertebra's review the reviewer was shown (0: none);
            the save is refused when the database holds another. None saves whatever is there.
    """

    study_id: str
    label: int
    name: str
    algorithm_grade: int | None
    action: str
    reviewer: str
    comment: str = ""
    grade: int | None = None
    base_revision: int | None = None

    def __post_init__(self) -> None:
        reviewer, comment = (self.reviewer or "").strip(), (self.comment or "").strip()
        object.__setattr__(self, "reviewer", reviewer)
        object.__setattr__(self, "comment", comment)
        if self.base_revision is not None and (not isinstance(self.base_revision, int) or self.base_revision < 0):
            raise ValueError(f"base revision must be a count of saves (0 or more); got {self.base_revision!r}")
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


class ReviewConflictError(RuntimeError):
    """A save based on a stale view: the vertebra's review changed since the reviewer's page showed it.

    Attributes:
        request: the refused decision (kept in the audit trail as ``refused``).
        current: the review the database holds now (None when there is none).
    """

    def __init__(self, request: ReviewRequest, current: Review | None) -> None:
        self.request, self.current = request, current
        super().__init__(_conflict_text(request, current))


def _conflict_text(request: ReviewRequest, current: Review | None) -> str:
    if current is None:
        now = f"{request.name} is not reviewed (your page showed revision {request.base_revision})"
    else:
        now = (f"{request.name} was reviewed meanwhile: it is now grade {current.reviewed_grade} ({current.action}) "
               f"by {current.reviewer}, {current.reviewed_at:%Y-%m-%d %H:%M:%S} UTC (revision {current.revision}; "
               f"your page showed revision {request.base_revision})")
    return (f"not saved: {now}. Your decision (grade {request.new_grade}, {request.action}) is kept in the audit "
            "trail as refused; look at the current review and save again if you still disagree.")


@dataclass(frozen=True)
class RelabelRequest:
    """A reviewer's shift of a study's level names, checked on construction.

    Attributes:
        study_id: the study.
        labels: the algorithm's VerSe labels of its vertebrae (to check the shift is possible).
        shift: levels to move every name by, relative to the algorithm's labels (+1: L1 becomes L2).
        reviewer: who (required); comment: why (required unless the shift is 0).
        base_shift: the shift the reviewer's page showed; the save is refused when it changed.
    """

    study_id: str
    labels: tuple[int, ...]
    shift: int
    reviewer: str
    comment: str = ""
    base_shift: int | None = None

    def __post_init__(self) -> None:
        reviewer, comment = (self.reviewer or "").strip(), (self.comment or "").strip()
        object.__setattr__(self, "reviewer", reviewer)
        object.__setattr__(self, "comment", comment)
        check_shift(list(self.labels), self.shift)
        if not reviewer:
            raise ValueError("a relabelling needs the reviewer's name")
        if len(reviewer) > MAX_REVIEWER_CHARS or len(comment) > MAX_COMMENT_CHARS:
            raise ValueError(f"reviewer name (max {MAX_REVIEWER_CHARS}) or comment (max {MAX_COMMENT_CHARS}) "
                             "too long")
        if self.shift and not comment:
            raise ValueError("a shift of the level names needs a comment saying why (e.g. which anchor you used)")


class RelabelConflictError(RuntimeError):
    """The study was relabelled by someone else since the reviewer's page showed it."""

    def __init__(self, request: RelabelRequest, current: LabelShift | None) -> None:
        self.request, self.current = request, current
        now = 0 if current is None else current.shift
        who = "" if current is None else f" by {current.reviewer}, {current.at:%Y-%m-%d %H:%M:%S} UTC"
        super().__init__(f"not relabelled: the study's shift is now {now:+d}{who} (your page showed "
                         f"{request.base_shift:+d}); look at the names again and relabel if still needed")


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
        """Record a decision: upsert the current review and append its audit entry, atomically.

        Raises:
            ReviewConflictError: ``request.base_revision`` is not the current revision; nothing
                but the refused attempt's audit entry was written.
        """
        at = at or utcnow()
        with self.sessions.begin() as session:
            current = _current(session, request.study_id, request.label)
            saved = _base_is_current(request.base_revision, current) and session.execute(
                _upsert(session, _review_values(request, at), request.base_revision)).first() is not None
            if not saved:  # another transaction may have written it since we read (PostgreSQL)
                current = _current(session, request.study_id, request.label, refresh=True)
            session.add(_audit_entry(request, at, current, "saved" if saved else "refused"))
        if not saved:
            raise ReviewConflictError(request, current)
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

    def label_shift(self, study_id: str) -> LabelShift | None:
        """The study's current relabelling (its latest), or None when its labels are the algorithm's."""
        with self.sessions() as session:
            return session.scalars(select(LabelShift).where(LabelShift.study_id == study_id)
                                   .order_by(LabelShift.id.desc()).limit(1)).one_or_none()

    def label_shifts(self, study_id: str | None = None) -> list[LabelShift]:
        """Relabellings in the order they were made (all studies when ``study_id`` is None)."""
        query = select(LabelShift).order_by(LabelShift.id)
        if study_id is not None:
            query = query.where(LabelShift.study_id == study_id)
        with self.sessions() as session:
            return list(session.scalars(query))

    def current_shifts(self) -> dict[str, int]:
        """Study id -> its current shift, for the studies a reviewer relabelled."""
        return {s.study_id: s.shift for s in self.label_shifts()}

    def relabel(self, request: RelabelRequest, at: datetime | None = None) -> LabelShift:
        """Record a study's shift of levels (appended; result.json is not touched).

        Raises:
            RelabelConflictError: the study's shift is no longer ``request.base_shift``.
        """
        with self.sessions.begin() as session:
            current = session.scalars(select(LabelShift).where(LabelShift.study_id == request.study_id)
                                      .order_by(LabelShift.id.desc()).limit(1)).one_or_none()
            now = current.shift if current is not None else 0
            if request.base_shift is not None and request.base_shift != now:
                raise RelabelConflictError(request, current)
            entry = LabelShift(at=at or utcnow(), study_id=request.study_id, shift=request.shift,
                               previous_shift=now, reviewer=request.reviewer, comment=request.comment)
            session.add(entry)
        return entry

    def dispose(self) -> None:
        self.sessions.kw["bind"].dispose()


def _current(session: Session, study_id: str, label: int, refresh: bool = False) -> Review | None:
    """The current review, locked for the transaction (SELECT ... FOR UPDATE where supported)."""
    query = select(Review).where(Review.study_id == study_id, Review.label == label).with_for_update()
    if refresh:
        query = query.execution_options(populate_existing=True)
    return session.scalars(query).one_or_none()


def _base_is_current(base_revision: int | None, current: Review | None) -> bool:
    return base_revision is None or base_revision == (current.revision if current is not None else 0)


def _review_values(request: ReviewRequest, at: datetime) -> dict:
    return {"study_id": request.study_id, "label": request.label, "name": request.name,
            "algorithm_grade": request.algorithm_grade, "reviewed_grade": request.new_grade,
            "action": request.action, "reviewer": request.reviewer, "comment": request.comment, "reviewed_at": at}


def _audit_entry(request: ReviewRequest, at: datetime, current: Review | None, outcome: str) -> AuditEntry:
    """The audit entry of a save attempt; ``old_grade`` is the grade before it (or it was refused against)."""
    old = current.reviewed_grade if current is not None else request.algorithm_grade
    return AuditEntry(at=at, reviewer=request.reviewer, study_id=request.study_id, label=request.label,
                      name=request.name, algorithm_grade=request.algorithm_grade, old_grade=old,
                      new_grade=request.new_grade, action=request.action, comment=request.comment,
                      outcome=outcome, base_revision=request.base_revision)


def _upsert(session: Session, values: dict, base_revision: int | None = None):
    """INSERT ... ON CONFLICT (study_id, label) DO UPDATE, counting revisions atomically.

    With ``base_revision`` the update happens only while the stored revision still equals it,
    so a concurrent save between our read and this statement makes it return no row.
    """
    dialect = session.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise ValueError(f"review database backend {dialect!r} is not supported; use SQLite or PostgreSQL")
    insert = (sqlite if dialect == "sqlite" else postgresql).insert
    stmt = insert(Review).values(**values, revision=1)
    updates = {k: stmt.excluded[k] for k in values if k not in ("study_id", "label")}
    where = None if base_revision is None else Review.revision == base_revision
    return stmt.on_conflict_do_update(index_elements=["study_id", "label"],
                                      set_={**updates, "revision": Review.revision + 1},
                                      where=where).returning(Review.revision)
