"""The factory database: engine creation, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, select
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from synth_pipelines.core.errors import StorageError

T = TypeVar("T")
# Ids bound in one IN (...) by `ids_among`: below SQLite's oldest limit of 999 parameters.
IDS_PER_QUERY = 900

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Not `alembic_version`: Dagster's own storage keeps its revision there, and production may put
# the factory tables and the Dagster instance in one PostgreSQL database.
VERSION_TABLE = "synth_alembic_version"
# SQLite's busy_timeout, in seconds: how long a writer waits for another one.
SQLITE_BUSY_SECONDS = 30
# One per SQLite file in this process: its writers queue here, in turn (see `_writer_turn`).
_SQLITE_WRITERS: dict[str, threading.RLock] = {}
_SQLITE_WRITERS_GUARD = threading.Lock()


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def create_factory_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:/// or postgresql+psycopg://), tuned for concurrent runs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_SECONDS})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the sensor read while a run writes; busy_timeout waits out writer locks.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
            cursor.execute("PRAGMA foreign_keys=ON")
            # Deleted rows are overwritten, not left in free pages: revocation means gone.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
            # pysqlite's implicit transactions are off (above): SQLAlchemy's BEGIN is the real one.
            # Every transaction is IMMEDIATE: it takes the write lock up front, SQLite's stand-in
            # for row locks, so read-then-write transactions (reservations, status updates)
            # serialise. A deferred one that read first fails at once with "database is locked"
            # when it tries to write after another writer (SQLite cannot wait there without
            # deadlocking); measured under 20 concurrent packaging runs.
            # A read-only session (`session(read_only=True)`) never writes, so it starts a
            # deferred transaction: under WAL it reads a snapshot and waits for no writer.
            read_only = conn.get_execution_options().get("synth_read_only", False)
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": 10} if "psycopg" in url else {}
    )


def _sqlite_file(engine: Engine) -> str | None:
    """The SQLite file behind `engine`, as the key of its writers' queue; None for PostgreSQL
    and in-memory databases."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return str(Path(database).resolve())


@contextmanager
def _writer_turn(sqlite_file: str | None) -> Iterator[None]:
    """The block run in this process's turn to write `sqlite_file`.

    SQLite has one writer at a time. Without a queue, concurrent writers in one process (the
    API's threadpool, 20 clients at once) find the file locked and sleep in SQLite's busy
    handler, which backs off to 100 ms naps: a burst of POSTs had a p99 of 0.5 s for 1 ms of
    work. Here they queue, and each starts the moment the one before commits. Writers in other
    processes (Dagster runs) still meet at SQLite's own lock, with its busy_timeout; after that
    long without a turn this one goes on anyway, and SQLite's lock decides, as before the queue.
    """
    if sqlite_file is None:
        yield
        return
    with _SQLITE_WRITERS_GUARD:
        lock = _SQLITE_WRITERS.setdefault(sqlite_file, threading.RLock())
    acquired = lock.acquire(timeout=SQLITE_BUSY_SECONDS)
    try:
        yield
    finally:
        if acquired:
            lock.release()


def _forget_writer_queues() -> None:
    # A forked child starts with no turn taken: a lock held by a parent's thread would never
    # be released in the child.
    global _SQLITE_WRITERS_GUARD
    _SQLITE_WRITERS.clear()
    _SQLITE_WRITERS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_writer_queues)


class FactoryDatabase:
    """The factory database at `url`: sessions, schema migration and a health check."""

    # Every database this process opened and has not dropped: `dispose_all` closes their pooled
    # connections (a PostgreSQL server allows ~100 at once; an engine keeps up to 5 idle).
    _open: weakref.WeakSet[FactoryDatabase] = weakref.WeakSet()

    def __init__(self, url: str):
        self.url = url
        self.engine = create_factory_engine(url)
        FactoryDatabase._open.add(self)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._locking_sessions = sessionmaker(
            self.engine.execution_options(synth_immediate=True), expire_on_commit=False
        )
        self._read_only_sessions = sessionmaker(
            self.engine.execution_options(synth_read_only=True), expire_on_commit=False
        )
        self._sqlite_file = _sqlite_file(self.engine)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def describe(self) -> str:
        return _redact(self.url)

    @contextmanager
    def session(self, *, locking: bool = False, read_only: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        `locking=True` marks read-then-write transactions: on PostgreSQL use row locks (FOR UPDATE
        SKIP LOCKED) inside it; on SQLite every transaction takes the write lock at BEGIN.
        `read_only=True` marks transactions that only read (a status, an API key): on SQLite
        they take no write lock and wait for no writer. Nothing may be written in one.
        """
        if read_only:
            maker, writer = self._read_only_sessions, None
        else:
            maker = self._locking_sessions if locking else self._sessions
            writer = self._sqlite_file
        try:
            with _writer_turn(writer), maker() as session:
                try:
                    yield session
                    session.commit()
                except BaseException:
                    with contextlib.suppress(SQLAlchemyError):  # the connection may be gone
                        session.rollback()
                    raise
        except (OperationalError, InterfaceError) as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: SQLAlchemyError) -> StorageError:
        """The database's failure as a StorageError naming it (the API answers 503)."""
        reason = str(exc.orig if isinstance(exc, DBAPIError) else exc).strip().splitlines()
        return StorageError(
            f"factory database {self.describe()} is not reachable or not answering: "
            f"{exc.__class__.__name__}: {reason[0] if reason else ''}"
        )

    def in_status(
        self, model: type[T], statuses: tuple[str, ...], limit: int | None = None
    ) -> list[T]:
        """Rows of `model` (a table with status, created_at, id) in any of `statuses`, oldest
        first, at most `limit` of them: what a sensor polls for."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(model)
                    .where(model.status.in_(statuses))  # type: ignore[attr-defined]
                    .order_by(model.created_at, model.id)  # type: ignore[attr-defined]
                    .limit(limit)
                )
            )

    def ids_among(self, model: type, ids: Iterable[str], *where: Any) -> set[str]:
        """Those of `ids` whose row of `model` (a table with an `id`) meets every condition in
        `where`. Asked in chunks of IDS_PER_QUERY ids, so the cost follows `ids`, not the table:
        retention asks about the partitions Dagster still has, not every row ever stored."""
        ids = sorted(set(ids))
        found: set[str] = set()
        with self.session(read_only=True) as session:
            for start in range(0, len(ids), IDS_PER_QUERY):
                chunk = ids[start : start + IDS_PER_QUERY]
                found.update(session.scalars(select(model.id).where(model.id.in_(chunk), *where)))
        return found

    def check(self) -> None:
        """Connect and run a trivial query; raise StorageError naming the database if not."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise self._unreachable(exc) from exc

    def _alembic_config(self) -> Config:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.attributes["engine"] = self.engine
        return config

    def current_revision(self) -> str | None:
        with self.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
            return context.get_current_revision()

    def head_revision(self) -> str | None:
        return ScriptDirectory.from_config(self._alembic_config()).get_current_head()

    def upgrade(self, revision: str = "head") -> None:
        """Migrate to the latest schema (or to `revision`, to test a migration on the data of
        the one before); a no-op when already there. Safe to call concurrently."""
        self.check()
        target = self.head_revision() if revision == "head" else revision
        if self.current_revision() == target:
            return
        with self._migration_lock():
            command.upgrade(self._alembic_config(), revision)

    @contextmanager
    def _migration_lock(self) -> Iterator[None]:
        # Several runs may start on a fresh database at once: only one migrates, others wait.
        if self.is_sqlite:
            database = self.engine.url.database
            if not database or database == ":memory:":
                yield
                return
            with open(f"{database}.migrate.lock", "w") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
        else:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT pg_advisory_lock(804211)")
                conn.commit()
                try:
                    yield
                finally:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(804211)")
                    conn.commit()

    def scrub(self, tables: tuple[str, ...] = ()) -> None:
        """Make deleted rows unrecoverable from the files: on SQLite (secure_delete is on) move
        the WAL's old page images into the zeroed main file; on PostgreSQL vacuum `tables`."""
        if self.is_sqlite:
            # On the DBAPI connection: SQLAlchemy's own would wrap it in BEGIN IMMEDIATE.
            raw = self.engine.raw_connection()
            try:
                raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                raw.close()
            return
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:
                conn.exec_driver_sql(f'VACUUM "{table}"')

    def dispose(self) -> None:
        """Close the pooled connections (the engine reconnects if used again)."""
        self.engine.dispose()

    @classmethod
    def dispose_all(cls) -> None:
        """`dispose` every database this process still holds: at shutdown, or between tests."""
        for database in list(cls._open):
            database.dispose()
