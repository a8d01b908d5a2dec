"""A fresh PostgreSQL database per test (server-marked tests only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from tests.services import service_env


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database on the test server for each test, dropped afterwards."""
    base = service_env("BRANDLOOP_TEST_POSTGRES_URL")
    name = f"bl_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()
