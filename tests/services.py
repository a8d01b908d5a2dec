"""Where the real services for server-marked tests are: started by scripts/services.sh.

In CI (``CI`` set) a missing service is a failure, not a skip, so a broken launcher cannot hide.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

#: as set when the tests started: the ``data_dir`` fixture clears every ``BRANDLOOP_*`` variable
_STARTED_WITH = {k: v for k, v in os.environ.items() if k.startswith("BRANDLOOP_TEST_")}


def service_env(name: str) -> str:
    value = os.environ.get(name) or _STARTED_WITH.get(name)
    if value:
        return value
    if os.environ.get("CI"):
        pytest.fail(
            f"{name} is not set: .ci/run must start the services (scripts/services.sh start)"
        )
    pytest.skip(
        f"{name} not set; run `eval $(bash scripts/services.sh start)` to include this test"
    )


#: Redis databases each pytest-xdist worker owns: worker ``gwN`` adds ``N * 16`` to the
#: database a test names, so tests that flush "their" database never flush another worker's
#: (scripts/services.sh starts Redis with 128 databases: eight workers)
REDIS_DBS_PER_WORKER = 16


def xdist_worker_index() -> int:
    """0 without pytest-xdist, else N of this worker's id ``gwN``."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw") or 0)


def redis_test_url(db: int, base: str | None = None) -> str:
    """The test Redis server's database ``db`` (0-15) as this pytest worker's own."""
    if not 0 <= db < REDIS_DBS_PER_WORKER:
        raise ValueError(f"a test's Redis database is 0-{REDIS_DBS_PER_WORKER - 1}, not {db}")
    server = (base or service_env("BRANDLOOP_TEST_REDIS_URL")).rsplit("/", 1)[0]
    return f"{server}/{db + REDIS_DBS_PER_WORKER * xdist_worker_index()}"


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server; dropped afterwards."""
    from tests.databases import fresh_database

    with fresh_database(service_env("BRANDLOOP_TEST_POSTGRES_URL")) as url:
        yield url


#: parametrise a ``database`` fixture with these: every promise is checked on both databases
DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.server)]


@contextmanager
def database_url_for(kind: str, data_dir: Path) -> Iterator[str]:
    """The registry URL of a fresh database of ``kind``: "sqlite" in ``data_dir`` (migrated on
    first use), or "postgresql" on the test server, migrated as ``brandloop db upgrade`` does."""
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'brandloop.db'}"
        return
    from brandloop.registry.db import Database

    with fresh_postgres_database() as url:
        database = Database(url)
        database.upgrade()
        database.dispose()
        yield url
