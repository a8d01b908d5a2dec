"""Failed authentications are throttled per client address (429 with Retry-After), and rate
limits live in Redis when it is configured, so every API replica shares them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.config import ApiSettings
from brandloop.api.ratelimit import Rate, RedisBuckets
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.http.conftest import Keys, assert_problem
from tests.services import redis_test_url

# read before the ``data_dir`` fixture clears every BRANDLOOP_* variable
_REDIS = os.environ.get("BRANDLOOP_TEST_REDIS_URL")
BAD = {"Authorization": "Bearer bl_000000000000_not-a-key"}


def _app(settings: Settings, db: Database, address: str = "203.0.113.7", **api: Any) -> TestClient:
    options: dict[str, Any] = {"workers": 0, **api}
    app = create_app(settings, ApiSettings(**options), use_memory=False, database=db)
    return TestClient(app, raise_server_exceptions=False, client=(address, 40000))


def test_failed_authentications_are_throttled_per_address(settings: Settings, db: Database) -> None:
    keys = Keys(db)
    limits = {"auth_failures_per_minute": 1, "auth_failures_burst": 3}
    with _app(settings, db, **limits) as client, _app(settings, db, "198.51.100.9") as other:
        assert [client.get("/v1/runs", headers=BAD).status_code for _ in range(3)] == [401] * 3
        throttled = client.get("/v1/runs", headers=BAD)
        problem = assert_problem(throttled, 429, "rate-limited")
        assert "failed authentications" in problem["detail"]
        assert int(throttled.headers["retry-after"]) >= 1
        # the address is throttled whatever key it sends next, until the bucket refills
        assert_problem(client.get("/v1/runs", headers=keys["A", "viewer"]), 429, "rate-limited")
        # another address is not
        assert other.get("/v1/runs", headers=keys["A", "viewer"]).status_code == 200


@pytest.fixture
def redis_url() -> Iterator[str]:
    import redis

    url = redis_test_url(11, _REDIS)
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.mark.server
async def test_redis_buckets_are_one_bucket_for_every_replica(redis_url: str) -> None:
    rates = {
        "key": Rate(per_minute=1, burst=3),
        "tenant": Rate(per_minute=1, burst=4),
        "ip": Rate(per_minute=1, burst=3),
        "authfail": Rate(per_minute=1, burst=2),
    }
    first, second = RedisBuckets(redis_url, rates), RedisBuckets(redis_url, rates)
    try:
        waits = [
            await (first, second)[i % 2].take([("key", "k1"), ("tenant", "t")]) for i in range(4)
        ]
        assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0  # 3 across both replicas
        # all or nothing: the tenant still has a token, but k1 has none, so neither is taken
        assert await second.take([("key", "k2"), ("tenant", "t")]) == 0.0  # the tenant's 4th
        assert await first.take([("key", "k3"), ("tenant", "t")]) > 0
        assert await first.peek("authfail", "1.2.3.4") == 0.0
        assert await second.peek("authfail", "1.2.3.4") == 0.0  # peeking takes nothing
        assert await first.take([("authfail", "1.2.3.4")]) == 0.0
        assert await second.take([("authfail", "1.2.3.4")]) == 0.0
        assert await first.peek("authfail", "1.2.3.4") > 55  # about a minute to refill
    finally:
        await first.aclose()
        await second.aclose()
    unreachable = RedisBuckets("redis://127.0.0.1:9/0", rates)
    try:  # the limiter being down does not take the API down
        assert await unreachable.take([("key", "k1")]) == 0.0
        assert await unreachable.reserve("authfail", "1.2.3.4", "t1") == ("reserved", 0.0)
    finally:
        await unreachable.aclose()


@pytest.mark.server
@pytest.mark.parametrize("replicas", [1, 2])
def test_replicas_share_the_rate_limit_through_redis(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, data_dir: Any, replicas: int
) -> None:
    monkeypatch.setenv("BRANDLOOP_REDIS_URL", redis_url)
    get_settings.cache_clear()
    settings = get_settings()
    db = Database.from_settings(settings)
    keys = Keys(db)
    limits = {"rate_limit_per_minute": 1, "rate_limit_burst": 5}
    apps = [_app(settings, db, **limits) for _ in range(replicas)]
    try:
        for app in apps:
            app.__enter__()
        viewer = keys["A", "viewer"]
        statuses = [
            apps[i % replicas].get("/v1/runs", headers=viewer).status_code for i in range(8)
        ]
    finally:
        for app in apps:
            app.__exit__(None, None, None)
        db.dispose()
    assert statuses == [200] * 5 + [429] * 3  # the same count with one replica as with two
