"""A fresh PostgreSQL database per test (server-marked tests only)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from brandloop.registry.db import Database
from tests.services import DATABASES, database_url_for, fresh_postgres_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server for each test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=DATABASES)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema) on SQLite and on PostgreSQL, for migration tests."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=DATABASES)
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated registry on SQLite and on PostgreSQL."""
    with database_url_for(str(request.param), tmp_path) as url:
        database = Database(url)
        yield database
        database.dispose()
