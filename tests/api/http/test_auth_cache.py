"""The auth cache holds only valid keys, least recently used out first: a flood of bogus keys
neither fills it nor pushes good keys out, and every miss reads the key table again."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from brandloop.api.auth import KeyCache, Principal, hash_key
from brandloop.api.deps import Service
from brandloop.domain import utcnow
from brandloop.registry.db import Database
from brandloop.registry.models_service import ApiKeyRow
from tests.api.http.conftest import Keys, assert_problem, both_databases

settings = pytest.fixture(name="settings")(both_databases)


def _revoke_behind_the_cache(db: Database, headers: dict[str, str]) -> None:
    """Revoke a key in the database only, as another replica would: this process's cache is
    not told, so the key keeps working exactly as long as it stays cached."""
    digest = hash_key(headers["Authorization"].removeprefix("Bearer "))
    with db.session() as session:
        session.execute(
            update(ApiKeyRow).where(ApiKeyRow.secret_sha256 == digest).values(revoked_at=utcnow())
        )


def test_a_flood_of_bogus_keys_does_not_evict_a_good_one(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    client = make_client(key_cache_seconds=3600, key_cache_entries=50)
    good = keys.of("acme_co", "ana", "viewer")
    assert client.get("/v1/keys/me", headers=good).status_code == 200
    _revoke_behind_the_cache(db, good)

    def bogus(_: int) -> int:
        header = {"Authorization": f"Bearer bl_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"}
        return client.get("/v1/keys/me", headers=header).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(bogus, range(400))) == {401}
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    assert len(service.keys) == 1, "misses are never cached"
    # still served from the cache: the flood did not push it out (nor wipe the cache)
    assert client.get("/v1/keys/me", headers=good).json()["principal"] == "ana"


def test_the_cache_is_bounded_and_a_miss_always_reads_the_table(
    make_client: Callable[..., TestClient], keys: Keys, db: Database
) -> None:
    client = make_client(key_cache_seconds=3600, key_cache_entries=2)
    first, second, third = (keys.of("acme-co", f"user{i}", "viewer") for i in range(3))
    for headers in (first, second, third):
        assert client.get("/v1/keys/me", headers=headers).status_code == 200
    service: Service = client.app.state.service  # type: ignore[attr-defined]
    assert len(service.keys) == 2
    _revoke_behind_the_cache(db, first)  # the least recently used: evicted already
    _revoke_behind_the_cache(db, third)  # still cached
    assert_problem(client.get("/v1/keys/me", headers=first), 401, "unauthorized")
    assert client.get("/v1/keys/me", headers=third).status_code == 200
    # the 401 was not cached: the key table is asked again, and still says no
    assert_problem(client.get("/v1/keys/me", headers=first), 401, "unauthorized")
    assert len(service.keys) == 2


def test_key_cache_expires_and_refuses_a_zero_bound() -> None:
    cache = KeyCache(ttl=0.0, max_entries=3)
    cache.put("d", Principal(key_id="key_1", tenant="t", role="viewer", name="ana"))
    assert cache.get("d") is None and len(cache) == 0
    with pytest.raises(ValueError, match="at least 1"):
        KeyCache(ttl=1.0, max_entries=0)
