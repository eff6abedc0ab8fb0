"""The review database (SQLAlchemy 2 ORM): current reviews and their append-only audit trail,
and the reviewers' relabellings of studies by a shift of levels (append-only too).

Every save attempt is audited: saved ones, and those refused because the reviewer's page showed
an older revision of the vertebra's review than the database holds (optimistic concurrency).

SQLite (one file, the default, ``DIR/reviews.sqlite``) or any SQLAlchemy URL (PostgreSQL for
several reviewers). The algorithm's own grade is never stored over: it stays in result.json,
and each row here carries a copy of it as it was when the reviewer saw it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    Engine,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.types import TypeDecorator

ACTIONS: tuple[str, str] = ("accept", "override")
OUTCOMES: tuple[str, str] = ("saved", "refused")
DEFAULT_DB_NAME = "reviews.sqlite"
SQLITE_BUSY_TIMEOUT_S = 30.0


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone: stored as naive UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: give a timezone-aware (UTC) one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


_GRADE_CHECK = "BETWEEN 0 AND 3"


class Review(Base):
    """The current review of one vertebra of one study (one row, updated in place)."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("study_id", "label", name="uq_review_study_label"),
        CheckConstraint(f"reviewed_grade {_GRADE_CHECK}", name="ck_review_grade"),
        CheckConstraint("action IN ('accept', 'override')", name="ck_review_action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(8))
    algorithm_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reviewed_grade: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    reviewer: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revision: Mapped[int] = mapped_column(Integer, default=1)  # number of saves so far

    def as_dict(self) -> dict:
        return {"study_id": self.study_id, "label": self.label, "name": self.name,
                "algorithm_grade": self.algorithm_grade, "reviewed_grade": self.reviewed_grade,
                "action": self.action, "reviewer": self.reviewer, "comment": self.comment,
                "reviewed_at": self.reviewed_at.isoformat(), "revision": self.revision}


class AuditEntry(Base):
    """One save attempt: who, when (UTC), which vertebra, grade before and after, and why. Append-only.

    ``outcome`` is ``saved``, or ``refused`` when the attempt was based on an older revision of the
    review than the current one (``base_revision``: the revision the reviewer's page showed, None
    when the caller did not say); a refused entry's ``old_grade`` is the grade it was refused
    against and ``new_grade`` the grade the reviewer chose.
    """

    __tablename__ = "review_audit"
    __table_args__ = (
        CheckConstraint(f"new_grade {_GRADE_CHECK}", name="ck_audit_grade"),
        CheckConstraint("outcome IN ('saved', 'refused')", name="ck_audit_outcome"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    reviewer: Mapped[str] = mapped_column(String(200))
    study_id: Mapped[str] = mapped_column(String(128), index=True)
    label: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(8))
    algorithm_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    old_grade: Mapped[int | None] = mapped_column(Integer, nullable=True)
    new_grade: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[str] = mapped_column(String(16), default="saved", server_default="saved")
    base_revision: Mapped[int | None] = mapped_column(Integer, nullable=True)

    def as_dict(self) -> dict:
        return {"id": self.id, "at": self.at.isoformat(), "reviewer": self.reviewer, "study_id": self.study_id,
                "label": self.label, "name": self.name, "algorithm_grade": self.algorithm_grade,
                "old_grade": self.old_grade, "new_grade": self.new_grade, "action": self.action,
                "comment": self.comment, "outcome": self.outcome, "base_revision": self.base_revision}


class LabelShift(Base):
    """A reviewer's relabelling of a study by a shift of levels (append-only; the latest counts).

    ``shift`` is relative to the algorithm's labels in result.json (which are never changed);
    ``previous_shift`` is the shift it replaced (0 for the algorithm's own labels). A shift
    equal to the previous one records that a reviewer checked the names.
    """

    __tablename__ = "label_shifts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    study_id: Mapped[str] = mapped_column(String(128), index=True)
    shift: Mapped[int] = mapped_column(Integer)
    previous_shift: Mapped[int] = mapped_column(Integer, default=0)
    reviewer: Mapped[str] = mapped_column(String(200))
    comment: Mapped[str] = mapped_column(Text, default="")

    def as_dict(self) -> dict:
        return {"id": self.id, "at": self.at.isoformat(), "study_id": self.study_id, "shift": self.shift,
                "previous_shift": self.previous_shift, "reviewer": self.reviewer, "comment": self.comment}


class AppendOnlyError(RuntimeError):
    """An attempt to change or delete an audit entry."""


@event.listens_for(Session, "before_flush")
def _audit_is_append_only(session: Session, flush_context, instances) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEntry | LabelShift) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError("the review audit trail is append-only: entries are never changed or deleted")


# The database refuses it too, for writers that bypass the ORM.
_SQLITE_TRIGGERS = tuple(
    f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    for table in ("review_audit", "label_shifts") for op in ("UPDATE", "DELETE")
)


#: Audit columns a database written by an earlier version lacks, added when it is opened.
_ADDED_AUDIT_COLUMNS: dict[str, str] = {"outcome": "VARCHAR(16) NOT NULL DEFAULT 'saved'", "base_revision": "INTEGER"}


def _add_missing_columns(engine: Engine) -> None:
    """Bring an older review database's audit table up to date (its entries read as saved)."""
    with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so two viewers opening it do not both add
        present = {c["name"] for c in inspect(conn).get_columns(AuditEntry.__tablename__)}
        for name, ddl in _ADDED_AUDIT_COLUMNS.items():
            if name not in present:
                conn.exec_driver_sql(f"ALTER TABLE {AuditEntry.__tablename__} ADD COLUMN {name} {ddl}")


def default_url(results_root: str | Path) -> str:
    """``sqlite:///DIR/reviews.sqlite`` for a results folder."""
    return f"sqlite:///{Path(results_root).resolve() / DEFAULT_DB_NAME}"


def _sqlite_setup(engine: Engine) -> None:
    """WAL (readers never block the writer), a busy timeout, and BEGIN IMMEDIATE: a save takes
    the write lock before it reads the current review, so two saves serialise instead of failing."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def open_database(url: str) -> sessionmaker[Session]:
    """Connect, create the tables when missing, and return a session factory.

    Raises:
        ValueError: ``url`` is not a valid SQLAlchemy URL.
    """
    try:
        is_sqlite = url.startswith("sqlite")
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S} if is_sqlite else {},
                               pool_pre_ping=not is_sqlite)
    except Exception as exc:  # sqlalchemy.exc.ArgumentError, missing driver (ImportError)
        raise ValueError(f"cannot use review database {_redact(url)!r}: {exc}") from None
    if is_sqlite:
        _sqlite_setup(engine)
    Base.metadata.create_all(engine)
    _add_missing_columns(engine)
    if is_sqlite:
        with engine.begin() as conn:
            for sql in _SQLITE_TRIGGERS:
                conn.exec_driver_sql(sql)
    return sessionmaker(engine, expire_on_commit=False)


def _redact(url: str) -> str:
    """A URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid URL>"
