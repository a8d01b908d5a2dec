"""Shared fixtures: every test gets its own data dir, database, Chroma and artifact store.

A test that uses the data dir (and so the registry) runs once per database: ``[sqlite]`` on the
embedded default and ``[postgres]`` on a fresh database of the test server (a copy of one migrated
template, so a copy costs a ``CREATE DATABASE``, not a migration). ``@pytest.mark.databases("sqlite")``
restricts a test whose subject exists on one database only, with the reason in its docstring.
Seeds come from the ``seed`` fixture: random across the providers' whole range, reproducible with
``BRANDLOOP_TEST_SEED`` (printed in the header).

The procedural renderer misses a palette on about a third of seeds, as a real model does, and on
about one random seed in a hundred a run meets enough misses that the agent stops it as
unpromising. A test about something else (retention, review, the API) that needs a run to
finish cannot hold on a random seed in that world, so the test world renders no accent:
``BRANDLOOP_PROCEDURAL_ACCENT_CHANCE=0`` here, and
``tests/backends.py`` for a provider a test builds.
Tests of palette misses and of stopping build their misses themselves.
"""

from __future__ import annotations

import gc
import os
import random
import socket
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

import brandloop.agent.writer
from brandloop.domain import MAX_SEED
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.backends import STEADY
from tests.databases import DATABASES, PostgresTemplate

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that would reach a host other than this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if (
            isinstance(host, str)
            and host not in {"127.0.0.1", "localhost", "::1"}
            and not host.startswith("/")
        ):
            raise RuntimeError(f"test tried to reach {host}: tests must stay on this machine")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _no_real_chat_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building a real chat model fails the test: tests use langchain-core's fake chat models.

    The stand-in sits at the writer's seam to the outside world (``langchain_chat_model``),
    not behind a flag in product code."""

    def refuse(_settings: brandloop.agent.writer.WriterSettings) -> NoReturn:
        raise RuntimeError("a test tried to build a real chat model; use a fake chat model")

    monkeypatch.setattr(brandloop.agent.writer, "langchain_chat_model", refuse)


#: Base of every test's seed; set BRANDLOOP_TEST_SEED to replay a run's seeds.
BASE_SEED = int(os.environ.get("BRANDLOOP_TEST_SEED") or random.SystemRandom().randrange(2**32))


def pytest_report_header() -> str:
    return f"brandloop: BRANDLOOP_TEST_SEED={BASE_SEED}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that reaches the registry runs on each database it is not restricted from."""
    if "database" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("databases")
    names = [name for name in DATABASES if marker is None or name in marker.args]
    metafunc.parametrize("database", names, indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``scripts/test.sh`` runs ``-n 2 --dist loadgroup``) each test file
    runs whole on one worker, its module fixtures built once; the files of ``tests/scale``,
    each starting a stack of API replicas and workers, run one after another on one worker,
    so two stacks never share the machine's two cores."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        path = item.path.relative_to(ROOT)
        group = "scale-stacks" if path.parts[:2] == ("tests", "scale") else path.as_posix()
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.fixture
def database(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[PostgresTemplate]:
    """One migrated database (checkpoint tables included) that each test's database copies."""
    template = PostgresTemplate.create()
    yield template
    template.drop()


@pytest.fixture
def database_url(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[str | None]:
    """The registry this test runs on: None for the embedded SQLite file in the data dir."""
    if database == "sqlite":
        yield None
        return
    template: PostgresTemplate = request.getfixturevalue("postgres_template")
    with template.copy() as url:
        yield url
        _no_connection_left_open(request.node.nodeid)


def _no_connection_left_open(test: str) -> None:
    """Fail the test that left a PostgreSQL connection open (an engine never disposed), here,
    rather than whichever later test the garbage collector happens to find it in."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    leaked = [str(w.message) for w in caught if "deleted while still open" in str(w.message)]
    if leaked:
        pytest.fail(f"{test} left {len(leaked)} PostgreSQL connection(s) open: {leaked[0]}")


@pytest.fixture
def another_database_url(database: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A second, empty registry on the same database kind (None: a SQLite file of another data
    dir), for tests that move data from one deployment to another."""
    if database == "sqlite":
        yield None
        return
    template: PostgresTemplate = request.getfixturevalue("postgres_template")
    with template.copy() as url:
        yield url


@pytest.fixture
def data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None
) -> Iterator[Path]:
    directory = tmp_path / "data"
    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(directory))
    for key in list(os.environ):
        if key.startswith("BRANDLOOP_") and key != "BRANDLOOP_DATA_DIR":
            monkeypatch.delenv(key)
    monkeypatch.setenv("BRANDLOOP_PROCEDURAL_ACCENT_CHANCE", str(STEADY))
    if database_url is not None:
        monkeypatch.setenv("BRANDLOOP_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """A seed anywhere in the providers' range, its ends included, fixed per test and run."""
    rng = random.Random(BASE_SEED ^ zlib.crc32(request.node.nodeid.encode()))
    return rng.choice([MAX_SEED, 2**31, rng.randrange(2**31, MAX_SEED), rng.randrange(MAX_SEED)])


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return get_settings()


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    """The test's registry, built once as an entry point builds it, disposed of afterwards."""
    database = Database.from_settings(settings)
    yield database
    database.dispose()


@pytest.fixture
def acme_kit_path() -> Path:
    return EXAMPLES / "brands" / "acme-coffee.yaml"


@pytest.fixture(autouse=True, scope="session")
def _one_import_name() -> Iterator[None]:
    """Nothing imports a layer folder under its bare name (``api``, ``agent``, ...): one package."""
    yield
    import sys

    stray = sorted(
        name
        for name in sys.modules
        if name.split(".")[0] in {"agent", "api", "evals", "memory", "policies", "tools"}
    )
    assert not stray, f"imported outside the brandloop package: {stray[:5]}"
