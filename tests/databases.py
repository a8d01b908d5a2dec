"""Run a test on SQLite and on PostgreSQL: ``settings_on_both`` yields settings whose database
is a fresh SQLite file, then a fresh, migrated database on the test PostgreSQL server
(``tests/services.py``); ``db_on_both`` is that database, built as an entry point builds it.

Import the fixtures into a test module: ``from tests.databases import db_on_both, settings_on_both``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.services import DATABASES, database_url_for


@pytest.fixture(params=DATABASES)
def settings_on_both(
    request: pytest.FixtureRequest, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    with database_url_for(str(request.param), data_dir) as url:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", url)
        get_settings.cache_clear()
        yield get_settings()
        get_settings.cache_clear()


@pytest.fixture
def db_on_both(settings_on_both: Settings) -> Iterator[Database]:
    database = Database.from_settings(settings_on_both)
    yield database
    database.dispose()
