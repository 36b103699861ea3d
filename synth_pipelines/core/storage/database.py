"""The factory database: engine creation, sessions and migrations for SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, make_url, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from synth_pipelines.core.errors import StorageError

T = TypeVar("T")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Not `alembic_version`: Dagster's own storage keeps its revision there, and production may put
# the factory tables and the Dagster instance in one PostgreSQL database.
VERSION_TABLE = "synth_alembic_version"


def _redact(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def create_factory_engine(url: str) -> Engine:
    """An engine for `url` (sqlite:/// or postgresql+psycopg://), tuned for concurrent runs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            # WAL lets the sensor read while a run writes; busy_timeout waits out writer locks.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, pool_pre_ping=True, connect_args={"connect_timeout": 10} if "psycopg" in url else {}
    )


class FactoryDatabase:
    """The factory database at `url`: sessions, schema migration and a health check."""

    def __init__(self, url: str):
        self.url = url
        self.engine = create_factory_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._locking_sessions = sessionmaker(
            self.engine.execution_options(synth_immediate=True), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def describe(self) -> str:
        return _redact(self.url)

    @contextmanager
    def session(self, *, locking: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error.

        `locking=True` marks read-then-write transactions: on PostgreSQL use row locks (FOR UPDATE
        SKIP LOCKED) inside it; on SQLite every transaction takes the write lock at BEGIN.
        """
        with (self._locking_sessions if locking else self._sessions)() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def in_status(self, model: type[T], statuses: tuple[str, ...]) -> list[T]:
        """Rows of `model` (a table with status, created_at, id) in any of `statuses`, oldest
        first: what a sensor polls for."""
        with self.session() as session:
            return list(
                session.scalars(
                    select(model)
                    .where(model.status.in_(statuses))  # type: ignore[attr-defined]
                    .order_by(model.created_at, model.id)  # type: ignore[attr-defined]
                )
            )

    def check(self) -> None:
        """Connect and run a trivial query; raise StorageError naming the database if not."""
        try:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except SQLAlchemyError as exc:
            raise StorageError(
                f"factory database {self.describe()} is not reachable: {exc.__class__.__name__}: "
                f"{str(exc.orig if isinstance(exc, OperationalError) else exc).strip()}"
            ) from exc

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
        self.engine.dispose()
