"""The registry's database: one engine and its sessionmaker, built once by each entry point.

Whoever starts a process (a CLI command, the API app, a Celery worker, the eval runner) builds
one :class:`Database` and passes it down (run context, FastAPI dependency, function arguments);
nothing looks an engine up by URL. The embedded SQLite default migrates itself on first use.
Any other database (PostgreSQL) is migrated only by ``brandloop db upgrade``: a process that
finds its schema outdated refuses to go on, so replicas starting together never race on it.
Migrations are serialised across processes: an advisory lock on PostgreSQL, a lock file beside
the database file on SQLite (two commands started at once on a fresh data dir: one migrates,
the other waits and finds the schema current).

SQLite gets WAL and foreign keys; PostgreSQL gets a connection pool.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from brandloop.errors import BadInputError, SchemaOutdatedError
from brandloop.registry import fencing  # noqa: F401  (registers the fencing checks on Session)
from brandloop.registry.write_lock import install_process_write_lock
from brandloop.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
UPGRADE_COMMAND = "brandloop db upgrade"
#: threads that may hold a session at once: the API's threadpool (anyio's default limit, which
#: runs every registry-touching route; see docs/architecture.md)
THREADS = 40
_MIGRATION_LOCK = 7351208451  # pg_advisory_xact_lock key: processes migrate one at a time


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


@functools.cache
def head_revisions() -> frozenset[str]:
    """The revisions this release's migrations end at (read once: they do not change)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=10000")  # first: switching to WAL may wait for a lock
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _create_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False},
            pool_size=THREADS,  # one kept connection per thread: no connect + pragmas per query
            max_overflow=THREADS // 2,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        install_process_write_lock(engine)
        return engine
    # PostgreSQL: enough kept connections for a replica's usual concurrent requests (a new one
    # costs a backend process), bursts up to the threadpool's size
    return create_engine(url, pool_size=16, max_overflow=THREADS - 16, pool_pre_ping=True)


def migration_lock_path(url: str) -> Path | None:
    """The lock file that serialises migrations of a SQLite database file (beside it); None
    for a database in memory or a server (PostgreSQL takes an advisory lock instead)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(f"{parsed.database}.migrate.lock")


@contextmanager
def _migrating(url: str) -> Iterator[None]:
    """Hold the SQLite file's migration lock (blocking) for the duration; a no-op otherwise.
    The file is left in place: removing it would let a late process lock a different file."""
    path = migration_lock_path(url)
    if path is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _current(conn: Connection) -> set[str]:
    return set(MigrationContext.configure(conn).get_current_heads())


@functools.cache
def known_revisions() -> frozenset[str]:
    """Every revision this release's migrations know."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(revision.revision for revision in script.walk_revisions())


def _outdated(current: set[str], heads: set[str]) -> str:
    needs = ", ".join(sorted(heads))
    newer = sorted(current - known_revisions())
    if newer:  # a newer release migrated it (a rollback, an old host): upgrading cannot help
        return (
            f"the database schema is at {', '.join(newer)}, newer than this release knows (it "
            f"needs {needs}): run the release that migrated it; `{UPGRADE_COMMAND}` cannot "
            "take a schema back"
        )
    if not current:
        return f"the database has no brandloop schema yet (this release needs {needs}): run `{UPGRADE_COMMAND}`"
    found = ", ".join(sorted(current))
    return f"the database schema is at {found}, this release needs {needs}: run `{UPGRADE_COMMAND}`"


class Database:
    """One engine and its sessionmaker for one database URL.

    ``migrate_on_first_use`` defaults to True for SQLite (the embedded default needs no setup)
    and False otherwise; without it the first session refuses an outdated schema with
    :class:`~brandloop.errors.SchemaOutdatedError` naming ``brandloop db upgrade``.
    """

    def __init__(self, url: str, *, migrate_on_first_use: bool | None = None) -> None:
        self.url = url
        self.migrate_on_first_use = (
            url.startswith("sqlite") if migrate_on_first_use is None else migrate_on_first_use
        )
        self.engine = _create_engine(url)
        self.sessions: sessionmaker[Session] = sessionmaker(self.engine, expire_on_commit=False)
        self._schema_checked = False
        self._lock = threading.Lock()  # one schema check per process, not one per thread

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        """The configured database; a data dir (or SQLite file's folder) that cannot be made is
        one :class:`BadInputError` naming its variable, never the URL (it may hold a password)."""
        try:
            return cls(settings.resolved_database_url)
        except OSError as exc:
            if settings.database_url:
                where = "BRANDLOOP_DATABASE_URL: the SQLite file's folder cannot be made"
            else:
                where = f"BRANDLOOP_DATA_DIR: {str(settings.data_dir)!r} cannot be made or used"
            raise BadInputError(f"{where}: {exc.strerror or type(exc).__name__}") from None

    def __repr__(self) -> str:
        return f"Database({self.engine.url.render_as_string(hide_password=True)!r})"

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def current_revisions(self) -> set[str]:
        with self.engine.connect() as conn:
            return _current(conn)

    def upgrade(self) -> tuple[set[str], set[str]]:
        """Migrate to this release's heads; the revisions before and after this process's
        migration. One process at a time: another one's migration is waited for, then found
        done (before and after both the heads: this one migrated nothing)."""
        with self.engine.connect() as conn:
            before = _current(conn)
        if before == head_revisions():
            return before, before
        if before - known_revisions():
            raise SchemaOutdatedError(_outdated(before, set(head_revisions())))
        cfg = alembic_config(self.url)
        with _migrating(self.url), self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
            # read again under the lock: another process may have migrated it meanwhile, and
            # then this one did nothing (it once reported the other's migration as its own)
            before = _current(conn)
            if before == head_revisions():
                return before, before
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "heads")
        after = sorted(head_revisions())
        log.info("schema upgraded", extra={"before": sorted(before), "after": after})
        self._schema_checked = True
        return before, set(head_revisions())

    def ensure_schema(self) -> Database:
        """Make sure the schema is this release's: migrate it (SQLite) or refuse (otherwise).

        Entry points that serve (the API, a worker) call this at start so they refuse to
        start; everyone else gets it on the first :meth:`session`.
        """
        if self._schema_checked:
            return self
        with self._lock:
            if self._schema_checked:
                return self
            current = self.current_revisions()
            heads = set(head_revisions())
            if current != heads:
                if not self.migrate_on_first_use:  # the one-line error says it all
                    raise SchemaOutdatedError(_outdated(current, heads))
                self.upgrade()
            self._schema_checked = True
        return self

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that commits on success and rolls back on error."""
        self.ensure_schema()
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no connection is checked out of the pool (work in other threads has
        finished), at most ``timeout_s`` seconds; True when idle. Call before :meth:`dispose`
        when threads may still be using the database."""
        checked_out = getattr(self.engine.pool, "checkedout", None)
        if checked_out is None:  # pools that do not count (SQLite in memory)
            return True
        deadline = time.monotonic() + timeout_s
        while checked_out() > 0:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def dispose(self) -> None:
        """Close the pool's connections (the process is done with this database)."""
        self.engine.dispose()
