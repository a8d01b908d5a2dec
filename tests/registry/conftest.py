"""A fresh PostgreSQL database per test (server-marked tests only)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.services import fresh_postgres_database


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server for each test, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url
