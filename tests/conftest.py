"""Shared fixtures: every test gets its own data dir, database, Chroma and artifact store."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

import brandloop.agent.writer
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings

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


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    directory = tmp_path / "data"
    monkeypatch.setenv("BRANDLOOP_DATA_DIR", str(directory))
    for key in list(os.environ):
        if key.startswith("BRANDLOOP_") and key != "BRANDLOOP_DATA_DIR":
            monkeypatch.delenv(key)
    get_settings.cache_clear()
    yield directory
    get_settings.cache_clear()


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
