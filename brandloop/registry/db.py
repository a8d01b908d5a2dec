"""Engines and sessions for the registry; the schema is migrated on first use.

SQLite (the embedded default) gets WAL and foreign keys; PostgreSQL gets a connection pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def get_engine(url: str) -> Engine:
    """One engine per URL per process, with its schema at the newest migration."""
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                path = url.split("///", 1)[-1]
                if path and path != ":memory:":
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                engine = create_engine(url, connect_args={"check_same_thread": False})
                event.listen(engine, "connect", _sqlite_pragmas)
            else:
                engine = create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
            _engines[url] = engine
        if url not in _migrated:
            migrate(engine, url)
            _migrated.add(url)
        return engine


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return set(script.get_heads())


def migrate(engine: Engine, url: str) -> None:
    """Upgrade the database to every head unless it is there already (cheap check first)."""
    with engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    if current == head_revisions():
        return
    cfg = alembic_config(url)
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":  # processes starting together migrate one at a time
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7351208451)")
            if set(MigrationContext.configure(conn).get_current_heads()) == head_revisions():
                return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
