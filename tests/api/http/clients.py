"""A real app on a given database with one provider behind it, for tests that build several
replicas or need a provider they can watch."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.providers import ImageProvider
from brandloop.registry.db import Database
from brandloop.settings import Settings


def client_with(
    settings: Settings, db: Database, provider: ImageProvider, **api: Any
) -> TestClient:
    """An app (not yet started: use it in ``with``) whose runs call ``provider``."""
    options: dict[str, Any] = {
        "workers": 0,
        "rate_limit_per_minute": 100_000,
        "rate_limit_burst": 10_000,
        "auth_failures_per_minute": 100_000,  # tests of throttling set their own
        "auth_failures_burst": 10_000,
        **api,
    }

    def providers(_: Settings) -> dict[str, ImageProvider]:
        return {provider.name: provider}

    app = create_app(
        settings, ApiSettings(**options), providers_factory=providers, use_memory=False, database=db
    )
    return TestClient(app, raise_server_exceptions=False)


def post_at_once(
    clients: Sequence[TestClient], n: int, url: str, body: Any, headers: dict[str, str]
) -> list[Any]:
    """``n`` identical POSTs released together (a barrier), spread over ``clients``."""
    barrier = threading.Barrier(n)

    def post(index: int) -> Any:
        barrier.wait()
        return clients[index % len(clients)].post(url, json=body, headers=headers)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(post, range(n)))
