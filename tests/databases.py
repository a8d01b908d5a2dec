"""Run a test on SQLite and on PostgreSQL: ``settings_on_both`` yields settings whose database
is a fresh SQLite file, then a fresh, migrated database on the test PostgreSQL server (dropped
after); ``db_on_both`` is that database, built as an entry point builds it.

Import the fixtures into a test module: ``from tests.databases import db_on_both, settings_on_both``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.services import service_env

# read before the ``data_dir`` fixture clears every BRANDLOOP_* variable
_POSTGRES = os.environ.get("BRANDLOOP_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def settings_on_both(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    if request.param == "sqlite":
        yield get_settings()
        return
    base = _POSTGRES or service_env("BRANDLOOP_TEST_POSTGRES_URL")
    name = f"bl_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    migrator = Database(url)
    migrator.upgrade()  # as `brandloop db upgrade` does before a deployment starts
    migrator.dispose()
    monkeypatch.setenv("BRANDLOOP_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        get_settings.cache_clear()


@pytest.fixture
def db_on_both(settings_on_both: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings_on_both)
    yield database
    database.dispose()
