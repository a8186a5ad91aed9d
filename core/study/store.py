"""The study database: SQLAlchemy 2 models, engine set-up and durable transactions.

One schema serves a local SQLite file (the default, in the user's data directory) and a
PostgreSQL server (multi-site studies), chosen by the URL. Durability is the point:

* SQLite runs in WAL mode with ``synchronous=FULL``, so each commit is fsync'ed to the WAL
  before it returns, and a killed process leaves a database that opens and holds every
  committed vote. Write transactions start with ``BEGIN IMMEDIATE`` so two writers never
  deadlock on a lock upgrade; they queue behind ``busy_timeout`` instead.
* PostgreSQL commits synchronously by default; migrations take an advisory lock so that
  several sites opening a fresh database at once do not race.

The variant identity of every pane (``Assignment.pane_order`` and ``Vote.candidate``) lives
here and only here; nothing a reader is shown carries it.

A database is checked, not trusted: opening runs SQLite's ``quick_check`` (a server gets a
round trip), every SQLAlchemy error leaving ``read()``/``write()`` becomes a
:class:`StudyStateError` naming the database (constraint violations stay
``IntegrityError`` for the caller to explain), and once damage is seen nothing more is
written. ``backup_database`` copies a SQLite study with SQLite's online backup API, which
is consistent while readers vote (WAL) and is how a damaged study is recovered (README).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from core.errors import StudyStateError

APP_NAME = "r2c-review"
RECOVERY_HINT = ("restore it from a backup ('r2c-review study backup'; see README, "
                 "'Recovering a damaged study database')")
_DAMAGE_WORDS = ("malformed", "corrupt", "disk image", "integrity")  # not "not a database": a wrong file
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_PG_MIGRATION_LOCK = 0x52324352  # arbitrary advisory-lock id ("R2CR")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would drop the zone)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20))  # restoration | segmentation
    show_label: Mapped[bool] = mapped_column(Boolean)
    design: Mapped[str] = mapped_column(String(20))  # split | all | anchor
    anchor_cases: Mapped[int] = mapped_column(Integer, default=0)
    qc_repeats: Mapped[int] = mapped_column(Integer, default=0)
    seed: Mapped[int] = mapped_column(BigInteger)
    presentation_size: Mapped[int] = mapped_column(Integer)  # pane size in px (long side)
    pane_labels: Mapped[str] = mapped_column(String(10))  # letters | numbers
    # Readers rate their confidence (1-5) with every vote (migration 0002; older studies: no).
    ask_confidence: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Diagnosis (MRMC) studies (migration 0003): "5-point" or "0-100", and the least days between a
    # reader's modality sessions. NULL for the preference kinds.
    rating_scale: Mapped[str | None] = mapped_column(String(10))
    washout_days: Mapped[float | None] = mapped_column(Float)
    # core.study.presentation: "paper" or "native" (migration 0003; NULL in older rows means "paper").
    presentation: Mapped[str | None] = mapped_column(String(10))
    # The administrator's password as a scrypt hash (core.study.credentials, migration 0004); NULL: an open study.
    admin_hash: Mapped[str | None] = mapped_column(String(200))
    segmenter_sha256: Mapped[str | None] = mapped_column(String(64))
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    candidates: Mapped[list[Candidate]] = relationship(back_populates="study", order_by="Candidate.position")
    cases: Mapped[list[Case]] = relationship(back_populates="study", order_by="Case.position")
    readers: Mapped[list[Reader]] = relationship(back_populates="study", order_by="Reader.position")


class Candidate(Base):
    """One column of the study: the original, a generator run N times, or a classic enhancement."""

    __tablename__ = "candidates"
    __table_args__ = (UniqueConstraint("study_id", "spec"), UniqueConstraint("study_id", "position"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)  # column order; 0 is the original
    spec: Mapped[str] = mapped_column(String(100))  # canonical, e.g. "r2c-q3:3", "clahe:2.0"
    kind: Mapped[str] = mapped_column(String(20))  # original | generator | enhancement
    variant_id: Mapped[str | None] = mapped_column(String(50))
    iterations: Mapped[int | None] = mapped_column(Integer)
    display_name: Mapped[str] = mapped_column(String(100))
    model_sha256: Mapped[str | None] = mapped_column(String(64))  # pinned at creation

    study: Mapped[Study] = relationship(back_populates="candidates")


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(300))  # the case's name, unique within the study
    path: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(20))  # COVID-19 | control

    study: Mapped[Study] = relationship(back_populates="cases")


class Reader(Base):
    __tablename__ = "readers"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    seed: Mapped[int] = mapped_column(BigInteger)  # drew this reader's case order and pane orders
    # Where the reader last was (0-based query, or the list's length: past the end), kept in the database
    # so that reading resumes there on any workstation (migration 0002). None: never navigated.
    last_seq: Mapped[int | None] = mapped_column(Integer)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    pin_hash: Mapped[str | None] = mapped_column(String(200))  # scrypt hash of the reader's PIN (0004)

    study: Mapped[Study] = relationship(back_populates="readers")


class Assignment(Base):
    """One query a reader will answer: a case at a place in their order, with its pane permutation."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("reader_id", "seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # 0-based place in the reader's order
    pane_order: Mapped[str] = mapped_column(String(200))  # candidate positions in pane order, "2,0,3,1"
    shared: Mapped[bool] = mapped_column(Boolean)  # the design gives this case to several readers
    repeat_of_id: Mapped[int | None] = mapped_column(ForeignKey("assignments.id"))  # hidden QC repeat
    session: Mapped[int | None] = mapped_column(Integer)  # diagnosis: modality session, 0-based (0003)

    reader: Mapped[Reader] = relationship()
    case: Mapped[Case] = relationship()
    repeat_of: Mapped[Assignment | None] = relationship(remote_side=[id])


class Vote(Base):
    """An immutable vote. A later vote on the same assignment amends it; the latest counts."""

    __tablename__ = "votes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(40), unique=True)  # stable across export/import
    assignment_id: Mapped[int] = mapped_column(ForeignKey("assignments.id", ondelete="CASCADE"), index=True)
    candidate_id: Mapped[int] = mapped_column(ForeignKey("candidates.id", ondelete="CASCADE"))
    pane_index: Mapped[int] = mapped_column(Integer)  # 0-based pane position chosen
    pane_order: Mapped[str] = mapped_column(String(200))  # permutation shown, stored with the vote
    confidence: Mapped[int | None] = mapped_column(Integer)
    rating: Mapped[int | None] = mapped_column(Integer)  # diagnosis: disease rating on the study's scale (0003)
    displayed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    voted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decision_ms: Mapped[int | None] = mapped_column(Integer)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("votes.id"))
    origin: Mapped[str] = mapped_column(String(200), default="local")
    # Who was authenticated when this vote was cast, and how ("pin" or "open": a study without passwords);
    # NULL for votes cast before 0004, imported, or through the engine API without a ReaderAuth (0004).
    # No foreign key: a plain ADD COLUMN (see the migration); the reader is the assignment's.
    reader_id: Mapped[int | None] = mapped_column(Integer)
    auth: Mapped[str | None] = mapped_column(String(10))

    assignment: Mapped[Assignment] = relationship()
    candidate: Mapped[Candidate] = relationship()
    amends: Mapped[Vote | None] = relationship(remote_side=[id])


# --------------------------------------------------------------------------- engine and store


def default_database_path() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / "studies.db"


def database_url(database: str | Path | None) -> str:
    """A SQLAlchemy URL from a URL, a SQLite file path, or None (the default file)."""
    if database is None:
        database = default_database_path()
    if isinstance(database, str) and "://" in database:
        url = database
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            url = "postgresql+psycopg://" + url.split("://", 1)[1]  # the driver we depend on
        return url
    path = Path(database).expanduser().resolve()
    return f"sqlite:///{path}"


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):]
    return Path(rest) if rest and rest != ":memory:" else None


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (pysqlite's is unreliable)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        write = conn.get_execution_options().get("r2c_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Store:
    """An open study database plus where its renditions are cached.

    Use ``read()`` for queries and ``write()`` for changes; ``write()`` commits on leaving the
    block, so a vote is on disk when the block ends.
    """

    def __init__(self, url: str, engine: Engine, cache_dir: Path) -> None:
        self.url = url
        self.engine = engine
        self.cache_dir = cache_dir
        self._write_engine = engine.execution_options(r2c_write=True)
        self.damaged: str | None = None  # why the database is no longer written to, once damage was seen

    def database_error(self, exc: SQLAlchemyError) -> StudyStateError:
        """The user-facing form of a database error; remembers damage so that nothing more is written."""
        reason = _error_reason(exc)
        if any(word in reason.lower() for word in _DAMAGE_WORDS):
            self.damaged = reason
            return StudyStateError(self.display_url, f"the study database is damaged ({reason}); nothing more is "
                                                     f"written to it: {RECOVERY_HINT}")
        return StudyStateError(self.display_url, f"database error ({reason})")

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, or None for a server."""
        return _sqlite_path(self.url)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def read(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            raise self.database_error(exc) from None

    @contextmanager
    def write(self) -> Iterator[Session]:
        if self.damaged:
            raise StudyStateError(self.display_url, f"the study database is damaged ({self.damaged}); nothing more "
                                                    f"is written to it: {RECOVERY_HINT}")
        try:
            with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
                yield session
        except IntegrityError as exc:
            if "unique" not in str(exc.orig).lower() and "foreign key" not in str(exc.orig).lower():
                raise self.database_error(exc) from None
            raise
        except SQLAlchemyError as exc:
            raise self.database_error(exc) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def default_cache_dir(url: str) -> Path:
    """Renditions live beside a SQLite file; for a server, in the user's cache directory."""
    path = _sqlite_path(url)
    if path is not None:
        return path.parent / f"{path.stem}-renditions"
    return Path(platformdirs.user_cache_dir(APP_NAME)) / "renditions"


def open_store(database: str | Path | None = None, cache_dir: str | Path | None = None,
               migrate: bool = True) -> Store:
    """Open (creating and migrating as needed) a study database; see ``database_url``."""
    url = database_url(database)
    path = _sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path is not None:
            engine = create_engine(url, connect_args={"timeout": 30})
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StudyStateError(database, f"cannot use this database URL ({exc})") from None
    store = Store(url, engine, Path(cache_dir) if cache_dir else default_cache_dir(url))
    try:
        check_database(store)
        if migrate:
            upgrade(store)
        else:
            with engine.connect():
                pass
    except DBAPIError as exc:
        engine.dispose()
        reason = _error_reason(exc)
        if any(word in reason.lower() for word in _DAMAGE_WORDS):
            raise StudyStateError(store.display_url, f"the study database is damaged ({reason}); it was not "
                                                     f"opened: {RECOVERY_HINT}") from None
        raise StudyStateError(store.display_url, f"cannot open the study database ({reason})") from None
    except StudyStateError:
        engine.dispose()
        raise
    return store


def _error_reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_database(store: Store) -> None:
    """Refuse a damaged SQLite file (``PRAGMA quick_check``) or an unreachable server, before any write."""
    with store.engine.connect() as conn:
        if not store.is_sqlite:
            conn.execute(text("SELECT 1"))
            return
        rows = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(5)")]
    if rows != ["ok"]:
        store.damaged = "; ".join(rows)[:300]
        raise StudyStateError(store.display_url, f"the study database is damaged (SQLite quick check: "
                                                 f"{store.damaged}); it was not opened: {RECOVERY_HINT}")


def upgrade(store: Store) -> None:
    """Bring the schema to the newest revision (Alembic), under a lock; fast when already there."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    with store.engine.connect() as conn:
        if MigrationContext.configure(conn).get_current_revision() == head:
            return
    with store._write_engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        if current is not None and current not in {rev.revision for rev in script.walk_revisions()}:
            raise StudyStateError(store.display_url, f"the database schema ({current}) is newer than this "
                                                     "version of R2C Review; update the app")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def integrity_check(store: Store) -> str:
    """SQLite's ``PRAGMA integrity_check`` result ("ok" when sound); "ok" on other backends."""
    if not store.is_sqlite:
        return "ok"
    try:
        with store.engine.connect() as conn:
            return "; ".join(str(r[0]) for r in conn.exec_driver_sql("PRAGMA integrity_check(20)"))
    except DBAPIError as exc:
        return _error_reason(exc)


def backup_database(store: Store, destination: str | Path) -> Path:
    """Copy a SQLite study database with SQLite's online backup API; returns the copy's path.

    The copy is a consistent snapshot even while readers vote (it reads one WAL snapshot),
    is checked with ``integrity_check`` before it replaces anything, and is written beside its
    target first so that a crash never leaves half a backup under the final name.
    """
    source = store.sqlite_file
    if source is None:
        raise StudyStateError(store.display_url, "'study backup' copies SQLite files; back up a PostgreSQL "
                                                 "server with its own tools (pg_dump)")
    target = Path(destination).expanduser()
    if target.is_dir():
        target = target / f"{source.stem}-{datetime.now(UTC):%Y%m%d-%H%M%S}{source.suffix or '.db'}"
    if target.resolve() == source.resolve():
        raise StudyStateError(target, "the backup cannot overwrite the database it copies")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with closing(sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True, timeout=30)) as src, \
                closing(sqlite3.connect(tmp)) as dst:
            src.backup(dst)
        with closing(sqlite3.connect(tmp)) as check:
            result = "; ".join(str(r[0]) for r in check.execute("PRAGMA integrity_check(20)"))
        if result != "ok":
            raise StudyStateError(source, f"the database is damaged ({result}), so a backup of it would be too; "
                                          "keep your earlier backups")
        os.replace(tmp, target)
    except sqlite3.Error as exc:
        raise StudyStateError(source, f"backup failed ({exc})") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target

