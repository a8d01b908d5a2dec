"""Idempotency-Key is atomic: insert first, one job per key however many requests race, 409
for a duplicate while the first is in flight and its answer afterwards, 422 for another body,
the role checked before any replay, answers kept for a configurable time - on SQLite and
PostgreSQL, across two API replicas."""

from __future__ import annotations

import asyncio
import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.api.idempotency import _canonical
from brandloop.domain import utcnow
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.registry.models_service import IdempotencyRow, JobRow
from brandloop.settings import Settings
from tests.api.http.clients import client_with, post_at_once
from tests.api.http.conftest import Keys, assert_problem, brand_kit
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

GEN = {"brief": "a steaming cup", "brand": "Acme Coffee", "size": "64x64"}


class SlowProvider:
    name = "procedural"

    def __init__(self, latency_s: float) -> None:
        self.inner = steady_procedural()
        self.latency_s = latency_s

    async def generate(self, request: ImageRequest) -> ImageResult:
        await asyncio.sleep(self.latency_s)
        return await self.inner.generate(request)


def _client(settings: Settings, db: Database, *, latency_s: float = 0.0, **api: Any) -> TestClient:
    return client_with(settings, db, SlowProvider(latency_s), **api)


def _jobs(db: Database) -> int:
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(JobRow)) or 0)


def test_ten_concurrent_posts_with_one_key_create_one_job(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db) as first, _client(settings, db) as second:
        assert first.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        headers = {**keys["A", "creator"], "Idempotency-Key": "order-42"}
        answers = post_at_once([first, second], 10, "/v1/generations", GEN, headers)
    assert [a.status_code for a in answers] == [202] * 10, [a.text for a in answers]
    named = {a.json()["id"] for a in answers}
    assert len(named) == 1 and _jobs(db) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 9
    assert {a.headers["location"] for a in answers} == {f"/v1/jobs/{named.pop()}"}


def test_a_duplicate_in_flight_gets_409_then_the_first_answer(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db, workers=1, latency_s=1.5, idempotency_wait_seconds=0.2) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        headers = {**keys["A", "creator"], "Idempotency-Key": "slow-1"}
        url = "/v1/generations?wait=30"  # the first answers when its job is done
        with ThreadPoolExecutor(max_workers=1) as pool:
            slow = pool.submit(client.post, url, json=GEN, headers=headers)
            deadline = time.monotonic() + 10
            while _jobs(db) == 0:  # the first is in flight once its job exists
                assert time.monotonic() < deadline
                time.sleep(0.02)
            duplicate = client.post(url, json=GEN, headers=headers)
            first = slow.result(timeout=60)
        problem = assert_problem(duplicate, 409, "idempotency-in-flight")
        assert duplicate.headers["retry-after"] == "1" and "in flight" in problem["detail"]
        assert first.status_code == 200 and first.json()["state"] == "succeeded"
        after = client.post(url, json=GEN, headers=headers)
        assert after.status_code == 200 and after.headers["idempotent-replayed"] == "true"
        assert after.json() == first.json()
        assert _jobs(db) == 1


def test_another_body_is_422_and_a_failed_request_frees_its_key(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db) as client:
        headers = {**keys["A", "creator"], "Idempotency-Key": "k-1"}
        # no brand yet: 404, not stored, so the same key works once the brand exists
        assert_problem(client.post("/v1/generations", json=GEN, headers=headers), 404, "not-found")
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        ok = client.post("/v1/generations", json=GEN, headers=headers)
        assert ok.status_code == 202 and "idempotent-replayed" not in ok.headers
        assert_problem(
            client.post("/v1/generations", json={**GEN, "count": 2}, headers=headers),
            422,
            "idempotency-key-reused",
        )
        assert_problem(
            client.post("/v1/generations?wait=1", json=GEN, headers=headers),
            422,
            "idempotency-key-reused",
        )
        # the same members in another order and spacing are the same request: its replay
        # (outside tester: a client that serialised its dict again got a 422)
        reordered = json.dumps(dict(reversed(GEN.items())), indent=2).encode()
        again = client.post(
            "/v1/generations",
            content=reordered,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert again.status_code == 202 and again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == ok.json()["id"]
        assert _jobs(db) == 1


def test_the_role_is_checked_before_a_replay(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        key = {"Idempotency-Key": "k-roles"}
        first = client.post("/v1/generations", json=GEN, headers={**keys["A", "creator"], **key})
        assert first.status_code == 202
        replay = client.post("/v1/generations", json=GEN, headers={**keys["A", "viewer"], **key})
        assert_problem(replay, 403, "forbidden")
        assert "idempotent-replayed" not in replay.headers and first.json()["id"] not in replay.text
        # another tenant's same key is its own
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["B", "admin"]).is_success
        other = client.post("/v1/generations", json=GEN, headers={**keys["B", "creator"], **key})
        assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


def test_answers_are_kept_for_the_configured_time(settings: Settings, db: Database) -> None:
    keys = Keys(db)
    with _client(settings, db, idempotency_ttl_seconds=2.0) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        headers = {**keys["A", "creator"], "Idempotency-Key": "k-ttl"}
        first = client.post("/v1/generations", json=GEN, headers=headers)
        again = client.post("/v1/generations", json=GEN, headers=headers)
        assert again.json()["id"] == first.json()["id"]
        time.sleep(2.1)  # the TTL counts from the claim: room for a slow first request
        later = client.post("/v1/generations", json={**GEN, "count": 2}, headers=headers)
        assert later.status_code == 202 and later.json()["id"] != first.json()["id"]
        assert _jobs(db) == 2


def test_a_key_left_pending_by_a_dead_request_is_taken_over(
    settings: Settings, db: Database
) -> None:
    keys = Keys(db)
    with _client(settings, db, idempotency_pending_seconds=60) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        headers = {**keys["A", "creator"], "Idempotency-Key": "k-dead"}
        first = client.post("/v1/generations", json=GEN, headers=headers)
        with db.session() as session:  # as if its process had died before it answered
            row = session.get(IdempotencyRow, ("A", "k-dead"))
            assert row is not None and row.state == "done"
            row.state, row.body, row.status_code = "pending", None, None
            row.created_at = utcnow() - timedelta(seconds=61)
        retried = client.post("/v1/generations", json=GEN, headers=headers)
        assert retried.status_code == 202 and "idempotent-replayed" not in retried.headers
        assert retried.json()["id"] != first.json()["id"]
        with db.session() as session:
            row = session.get(IdempotencyRow, ("A", "k-dead"))
            assert row is not None and row.state == "done"


def test_rate_limits_are_per_tenant_as_well_as_per_key(settings: Settings, db: Database) -> None:
    keys = Keys(db)
    with _client(
        settings,
        db,
        rate_limit_per_minute=60,
        rate_limit_burst=3,
        tenant_rate_limit_per_minute=60,
        tenant_rate_limit_burst=4,
    ) as client:
        viewer, creator = keys["A", "viewer"], keys["A", "creator"]
        statuses = [client.get("/v1/runs", headers=viewer).status_code for _ in range(3)]
        statuses.append(client.get("/v1/runs", headers=creator).status_code)
        assert statuses == [200, 200, 200, 200]
        # a fresh key of the same tenant does not get fresh room: the tenant's bucket is empty
        limited = client.get("/v1/runs", headers=keys["A", "approver"])
        assert_problem(limited, 429, "rate-limited")
        assert int(limited.headers["retry-after"]) >= 1
        assert client.get("/v1/runs", headers=keys["B", "viewer"]).status_code == 200


def test_the_schema_declares_the_key_on_every_post_and_its_bounds_hold(
    settings: Settings, db: Database
) -> None:
    """A client generated from the OpenAPI document can send the key: it is declared on every
    POST (optional, 1-255 characters), and a key outside those bounds is a 400 problem that
    creates nothing."""
    keys = Keys(db)
    with _client(settings, db) as client:
        document = client.get("/openapi.json").json()
        posts = {
            path: operation
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if method == "post"
        }
        assert len(posts) >= 10
        for path, operation in posts.items():
            declared = [p for p in operation["parameters"] if p["name"] == "Idempotency-Key"]
            assert declared == [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": False,
                    "description": declared[0]["description"],
                    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                }
            ], path
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        too_long = {**keys["A", "creator"], "Idempotency-Key": "k" * 256}
        answer = client.post("/v1/generations", json=GEN, headers=too_long)
        assert_problem(answer, 400, "bad-input")
        longest = {**keys["A", "creator"], "Idempotency-Key": "k" * 255}
        first = client.post("/v1/generations", json=GEN, headers=longest)
        again = client.post("/v1/generations", json=GEN, headers=longest)
        assert (first.status_code, again.status_code) == (202, 202), first.text
        assert again.json() == first.json()
    assert _jobs(db) == 1  # the 400 created nothing; the repeat of the longest key replayed


def test_a_keys_length_is_counted_in_characters_not_bytes(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The schema says 1-255 characters: 255 two-byte characters are a key (stored whole, on
    PostgreSQL's 255-character column too, and replayed), 256 are a 400 that creates nothing.
    An outside tester found 128 "é" refused: the length was counted in UTF-8 bytes."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        too_long = {**keys["A", "creator"], "Idempotency-Key": ("é" * 256).encode()}
        assert_problem(client.post("/v1/generations", json=GEN, headers=too_long), 400, "bad-input")
        longest = {**keys["A", "creator"], "Idempotency-Key": ("é" * 255).encode()}
        first = client.post("/v1/generations", json=GEN, headers=longest)
        again = client.post("/v1/generations", json=GEN, headers=longest)
        assert (first.status_code, again.status_code) == (202, 202), first.text
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
    assert _jobs(db) == 1
    with db.sessions() as session:
        assert session.scalars(select(IdempotencyRow.key)).all() == ["é" * 255]


def _post_raw(client: TestClient, headers: dict[str, Any], body: dict[str, Any]) -> Any:
    """A POST whose header bytes reach the app as sent (TestClient re-encodes every header
    value as UTF-8, so Latin-1 0xE9 would arrive as UTF-8 "é"), on the running app's loop."""

    async def post() -> Any:
        transport = httpx.ASGITransport(app=client.app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as raw:
            return await raw.post("/v1/generations", json=body, headers=headers)

    return client.portal.call(post)


def test_two_keys_are_one_only_when_their_bytes_are(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The header is read as UTF-8 and a value that is not UTF-8 is a 400 that creates nothing:
    an outside tester's Latin-1 0xE9 x 77 was taken for UTF-8 "é" x 77, one key, so another body
    got 422 and the first body the first answer replayed."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    other = {**GEN, "brief": "a glass of iced tea"}
    with _client(settings, db) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        utf8 = {**creator, "Idempotency-Key": ("é" * 77).encode()}
        first = _post_raw(client, utf8, GEN)
        assert first.status_code == 202, first.text
        for raw in (b"\xe9" * 77, b"\xff" * 77, b"k\xe9y"):
            latin1 = {**creator, "Idempotency-Key": raw}
            for body in (other, GEN):
                answer = _post_raw(client, latin1, body)
                problem = assert_problem(answer, 400, "bad-input")
                assert "UTF-8" in problem["detail"]
                assert "idempotent-replayed" not in answer.headers
        # the UTF-8 key itself still replays its answer
        again = _post_raw(client, utf8, GEN)
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json() == first.json()
    assert _jobs(db) == 1
    with db.sessions() as session:
        assert session.scalars(select(IdempotencyRow.key)).all() == ["é" * 77]


def test_a_request_with_two_keys_is_a_400_that_creates_nothing(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Two ``Idempotency-Key`` headers: neither is taken over the other (an outside tester's
    report: the first was used silently, so a retry with the second made a second job)."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    with _client(settings, db) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        both = httpx.Headers(
            [*creator.items(), ("Idempotency-Key", "k-a"), ("Idempotency-Key", "k-b")]
        )
        answer = _post_raw(client, both, GEN)  # type: ignore[arg-type]
        assert "several" in assert_problem(answer, 400, "bad-input")["detail"]
        for one in ("k-a", "k-b"):  # each alone is a key like any other, unused so far
            sent = _post_raw(client, {**creator, "Idempotency-Key": one}, GEN)
            assert sent.status_code == 202 and "idempotent-replayed" not in sent.headers
    assert _jobs(db) == 2


def test_a_body_compared_by_content_never_breaks_on_odd_json() -> None:
    """The canonical form of a body: members sorted; a lone surrogate escape kept an escape
    (it was about to be encoded as text that cannot be); a body nested past Python's stack, one
    naming a member twice, or one that is not JSON compared as it came - never an error."""
    assert _canonical(b'{"b": "\\ud800", "a": 1}') == b'{"a":1,"b":"\\ud800"}'
    deep = b"[" * 100_000
    assert _canonical(deep) == deep
    assert _canonical(b'{"a": 1, "a": 2}') == b'{"a": 1, "a": 2}'
    assert _canonical(b"\xff not json") == b"\xff not json"
