"""The databases the suite runs on: the embedded SQLite file, and fresh PostgreSQL databases on
the test server (scripts/services.sh), each a copy of one migrated template."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.services import service_env

DATABASES = ("sqlite", "postgres")


def _server(url: str) -> str:
    return url.rsplit("/", 1)[0]


def _admin(base_url: str) -> sa.Engine:
    return sa.create_engine(_server(base_url) + "/postgres", isolation_level="AUTOCOMMIT")


@contextlib.contextmanager
def fresh_database(base_url: str, *, template: str | None = None) -> Iterator[str]:
    """A new database on the server of ``base_url`` (a copy of ``template`` if given), dropped
    afterwards with whatever connections are still open to it."""
    name = f"bl_test_{uuid.uuid4().hex[:12]}"
    admin = _admin(base_url)
    clause = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
    url = f"{_server(base_url)}/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class PostgresTemplate:
    """A database at the newest migration, with LangGraph's checkpoint tables, to copy from."""

    base_url: str
    name: str

    @classmethod
    def create(cls) -> PostgresTemplate:
        base_url = service_env("BRANDLOOP_TEST_POSTGRES_URL")
        name = f"bl_template_{uuid.uuid4().hex[:12]}"
        admin = _admin(base_url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = f"{_server(base_url)}/{name}"
        db = Database(url)
        db.upgrade()  # as `brandloop db upgrade` does
        db.dispose()
        asyncio.run(_setup_checkpoints(url))
        return cls(base_url=base_url, name=name)

    @property
    def url(self) -> str:
        return f"{_server(self.base_url)}/{self.name}"

    def derive(self) -> PostgresTemplate:
        """A lasting copy, to fill and copy from in turn (``drop`` it when done)."""
        name = f"bl_template_{uuid.uuid4().hex[:12]}"
        admin = _admin(self.base_url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"'))
        admin.dispose()
        return PostgresTemplate(base_url=self.base_url, name=name)

    @contextlib.contextmanager
    def copy(self) -> Iterator[str]:
        with fresh_database(self.base_url, template=self.name) as url:
            yield url

    def drop(self) -> None:
        admin = _admin(self.base_url)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{self.name}" WITH (FORCE)'))
        admin.dispose()


async def _setup_checkpoints(url: str) -> None:
    from brandloop.agent.checkpoints import _postgres_ready, postgres_checkpointer

    async with postgres_checkpointer(url):
        pass
    _postgres_ready.discard(url)


# The suite already runs every registry-touching test on each database (tests/conftest.py
# parametrises ``data_dir`` through ``database``); these names say so where a promise is about
# both databases. Import them into a test module: ``from tests.databases import db_on_both``.
@pytest.fixture
def settings_on_both(settings: Settings) -> Settings:
    return settings


@pytest.fixture
def db_on_both(db: Database) -> Database:
    return db


def stored_anywhere(db: Database, needle: str, data_dir: Path | None = None) -> list[str]:
    """Where ``needle`` is kept: ``table.column`` of every row of every table of ``db`` (text,
    JSON or bytes) that holds it and, given ``data_dir`` (a SQLite deployment), every file
    under it whose bytes hold it (checkpoints, write-ahead logs, artifacts). Empty: nowhere."""
    wanted = needle.encode()
    found: set[str] = set()
    with db.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            result = conn.exec_driver_sql(f'SELECT * FROM "{table}"')
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is None:
                        continue
                    if isinstance(value, bytes | memoryview):
                        held = wanted in bytes(value)
                    else:  # text, or JSON as the driver reads it (a dict, a list)
                        held = needle in (
                            value if isinstance(value, str) else json.dumps(value, default=str)
                        )
                    if held:
                        found.add(f"{table}.{column}")
    if data_dir is not None:
        found |= {
            str(path.relative_to(data_dir))
            for path in data_dir.rglob("*")
            if path.is_file() and wanted in path.read_bytes()
        }
    return sorted(found)
