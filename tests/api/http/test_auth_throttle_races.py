"""Requests sent at once cannot slip past the throttle of failed authentications
(docs/http-api.md, "Protection"; docs/studio.md): each key that is not known good is looked up
under a failure reserved ahead of the lookup, and given back when the key is good. Wrong keys
sent at once from one address - at /v1 and at the studio's POST /signin, mixed - get exactly
``burst`` 401s and 429 for the rest; good keys sent at once all pass and cost the bucket
nothing. On both databases, with the buckets in this process and in Redis (shared by
replicas)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.api.app import create_app
from brandloop.api.auth import create_key
from brandloop.api.config import ApiSettings
from brandloop.registry.db import Database
from brandloop.settings import Settings, get_settings
from tests.api.studio.conftest import csrf_of
from tests.services import redis_test_url

# read before the ``data_dir`` fixture clears every BRANDLOOP_* variable
_REDIS = os.environ.get("BRANDLOOP_TEST_REDIS_URL")
BURST = 5
AT_ONCE = 30
ADDRESS = "203.0.113.61"


@pytest.fixture(params=["in-process", pytest.param("redis", marks=pytest.mark.server)])
def limits_settings(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, data_dir: Any
) -> Iterator[Settings]:
    """The settings of the test's database, with the buckets in this process or in Redis."""
    if request.param == "in-process":
        yield get_settings()
        return
    import redis

    url = redis_test_url(12, _REDIS)
    client = redis.Redis.from_url(url)
    client.flushdb()
    monkeypatch.setenv("BRANDLOOP_REDIS_URL", url)
    get_settings.cache_clear()
    try:
        yield get_settings()
    finally:
        client.flushdb()
        client.close()
        get_settings.cache_clear()


@pytest.fixture
def app_client(limits_settings: Settings, db: Database) -> Iterator[TestClient]:
    options = ApiSettings(workers=0, auth_failures_per_minute=1, auth_failures_burst=BURST)
    app = create_app(limits_settings, options, use_memory=False, database=db)
    with TestClient(app, raise_server_exceptions=False, client=(ADDRESS, 40000)) as client:
        yield client


def _client(main: TestClient, port: int) -> TestClient:
    """Another connection from the same address, on the running app's loop."""
    client = TestClient(main.app, raise_server_exceptions=False, client=(ADDRESS, port))
    client.portal = main.portal
    return client


def _at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def _api_call(main: TestClient, port: int, key: str) -> Callable[[], Any]:
    client = _client(main, port)
    return lambda: client.get("/v1/keys/me", headers={"Authorization": f"Bearer {key}"})


def _sign_in(main: TestClient, port: int, key: str) -> Callable[[], Any]:
    browser = _client(main, port)
    token = csrf_of(browser.get("/signin").text)  # the form first, as a browser does
    return lambda: browser.post(
        "/signin", data={"csrf": token, "key": key, "next": "/chat"}, follow_redirects=False
    )


def _good_key(db: Database, tenant: str = "A") -> str:
    with db.session() as session:
        _, key = create_key(session, tenant=tenant, role="viewer")
    return key


def test_wrong_keys_at_once_get_exactly_the_burst_of_401s(app_client: TestClient) -> None:
    calls = [
        (_api_call if i % 2 else _sign_in)(app_client, 41000 + i, f"bl_000000000000_guess{i}")
        for i in range(AT_ONCE)
    ]
    answers = _at_once(calls)
    assert Counter(a.status_code for a in answers) == {401: BURST, 429: AT_ONCE - BURST}
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            if answer.request.url.path.startswith("/v1"):
                assert answer.json()["type"] == "urn:brandloop:problem:rate-limited"
            else:
                assert "too many failed sign-ins" in answer.text
    # the bucket is empty now: the next wrong key is refused before it is looked up
    late = _api_call(app_client, 42000, "bl_000000000000_one_more")()
    assert late.status_code == 429


def test_good_keys_at_once_all_pass_and_cost_the_bucket_nothing(
    app_client: TestClient, db: Database
) -> None:
    keys = [_good_key(db) for _ in range(AT_ONCE)]  # none looked up yet: none cached
    calls = [
        (_api_call if i % 2 else _sign_in)(app_client, 41000 + i, key) for i, key in enumerate(keys)
    ]
    answers = _at_once(calls)
    assert sorted(a.status_code for a in answers) == [200] * (AT_ONCE // 2) + [303] * (
        AT_ONCE // 2
    ), [a.status_code for a in answers]
    # and again at /v1, now that half of them are known good (cached) and half are not
    again = _at_once([_api_call(app_client, 43000 + i, key) for i, key in enumerate(keys)])
    assert [a.status_code for a in again] == [200] * AT_ONCE
    # every token is still there: a whole burst of wrong keys is answered 401, then 429
    wrong = [
        _api_call(app_client, 44000 + i, f"bl_000000000000_guess{i}")().status_code
        for i in range(BURST + 1)
    ]
    assert wrong == [401] * BURST + [429]
