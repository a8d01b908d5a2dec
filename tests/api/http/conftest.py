"""Fixtures for the HTTP API: a real app on a fresh data dir, keys per tenant and role, a
client that goes through the whole stack (middleware, routing, workers)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.auth import create_key
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings

ROOT = Path(__file__).resolve().parents[3]
BRANDS = ROOT / "examples" / "brands"


def brand_kit(name: str = "acme-coffee") -> dict[str, Any]:
    return yaml.safe_load((BRANDS / f"{name}.yaml").read_text())


class Keys:
    """``keys["A", "creator"]`` is a bearer header for tenant A with that role (each such key
    its own principal); ``keys.of("A", "ana", "admin")`` a new key of principal ``ana``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._made: dict[tuple[str, str], dict[str, str]] = {}

    def __getitem__(self, item: tuple[str, str]) -> dict[str, str]:
        if item not in self._made:
            tenant, role = item
            with self.db.session() as session:
                _, key = create_key(session, tenant=tenant, role=role)
            self._made[item] = {"Authorization": f"Bearer {key}"}
        return self._made[item]

    def of(self, tenant: str, principal: str, role: str) -> dict[str, str]:
        with self.db.session() as session:
            _, key = create_key(session, tenant=tenant, role=role, principal=principal)
        return {"Authorization": f"Bearer {key}"}


def both_databases(database: str, data_dir: Path) -> Settings:
    """``settings = pytest.fixture(both_databases)``: the settings of the database this test
    runs on (every test using the data dir runs on both; see tests/conftest.py)."""
    settings = get_settings()
    assert settings.resolved_database_url.startswith(database)
    return settings


@pytest.fixture
def keys(db: Database) -> Keys:
    return Keys(db)


@pytest.fixture
def make_client(settings: Settings) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**api: Any) -> TestClient:
        options: dict[str, Any] = {
            "workers": 2,
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 10_000,
            "auth_failures_per_minute": 100_000,  # tests of throttling set their own
            "auth_failures_burst": 10_000,
        }
        use_memory = bool(api.pop("use_memory", False))
        options.update(api)
        app = create_app(settings, ApiSettings(**options), use_memory=use_memory)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()


@pytest.fixture
def acme(client: TestClient, keys: Keys) -> dict[str, Any]:
    """Tenant A has the Acme Coffee brand."""
    response = client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"])
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def wait_job(
    client: TestClient, job_id: str, headers: dict[str, str], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body["state"] in ("succeeded", "failed", "cancelled"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish in {timeout}s")


def assert_problem(response: Any, status: int, kind: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["type"] == f"urn:brandloop:problem:{kind}", body
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body
