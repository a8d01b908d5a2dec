"""A thread's follow-ups queued behind an undecided turn hold no worker (docs/http-api.md,
Threads), on SQLite and PostgreSQL, through the real app and its in-process pool of two.

Before session 26 a follow-up taken by a worker waited in it, up to 10 minutes, for the turns
before it: a conversation with a few queued follow-ups held every worker, so another tenant's
job waited behind them (on the Celery stack, a lost worker's turn found no free worker to
resume it). Now a waiting turn is parked, and the turn before it sends it once it is decided.
The provider (the outside world) holds the thread's first call until the test lets it go.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

FOLLOW_UPS = ["add a straw", "add a lemon slice", "warmer", "add a striped napkin"]


class HeldFirstCall:
    """The procedural renderer, its first call held until ``release`` is set."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.calls = 0
        self.holding = threading.Event()
        self.release = threading.Event()

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        if self.calls == 1:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await self.inner.generate(request)


def _job(client: TestClient, headers: dict[str, str], job_id: str) -> dict[str, Any]:
    answer = client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_queued_follow_ups_leave_the_workers_to_other_work_and_run_in_order(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = HeldFirstCall()
    with client_with(settings, db, provider, workers=2) as client:
        creator, other = keys["A", "creator"], keys["B", "creator"]
        for tenant in ("A", "B"):
            added = client.post("/v1/brands", json=brand_kit(), headers=keys[tenant, "admin"])
            assert added.status_code == 201, added.text
        made = client.post(
            "/v1/threads",
            json={
                "brand": "Acme Coffee",
                "title": "patio",
                "message": "an iced latte on a patio table",
                "size": "64x64",
                "count": 1,
            },
            headers=creator,
        )
        assert made.status_code == 201, made.text
        thread_id = made.json()["id"]
        jobs = [made.json()["messages"][0]["job"]["id"]]
        assert provider.holding.wait(30), "the first turn's call"
        for content in FOLLOW_UPS:
            sent = client.post(
                f"/v1/threads/{thread_id}/messages", json={"content": content}, headers=creator
            )
            assert sent.status_code == 202, sent.text
            jobs.append(sent.json()["job"]["id"])

        # another tenant's job runs on the worker the follow-ups do not hold
        job = client.post(
            "/v1/generations",
            json={"brief": "a paper cup", "brand": "Acme Coffee", "size": "64x64"},
            headers=other,
        )
        assert job.status_code == 202, job.text
        theirs = wait_job(client, job.json()["id"], other, timeout=45)
        assert theirs["state"] == "succeeded", theirs
        assert _job(client, creator, jobs[0])["state"] == "running"
        for waiting in jobs[1:]:  # parked: queued, never started
            found = _job(client, creator, waiting)
            assert found["state"] == "queued" and found["started_at"] is None, found

        # a parked turn cancelled: the turns after it still run once the first is decided
        cancelled = client.post(f"/v1/jobs/{jobs[2]}/cancel", headers=creator)
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

        # a turn asked for with ?wait= is waited for while it is parked, then answered
        waited: list[Any] = []
        asking = threading.Thread(
            target=lambda: waited.append(
                client.post(
                    "/v1/generations?wait=120",
                    json={"brief": "add a saucer", "brand": "Acme Coffee", "thread_id": thread_id},
                    headers=creator,
                )
            )
        )
        asking.start()
        asking.join(2)
        assert asking.is_alive() and not waited, "answered while its turn was parked"

        provider.release.set()
        asking.join(120)
        assert waited and waited[0].status_code == 200, waited and waited[0].text
        jobs.append(waited[0].json()["id"])
        done = [wait_job(client, j, creator, timeout=90) for j in jobs]
    ran = [j for j in done if j["id"] != jobs[2]]
    # each ran its run (whether the agent accepted an image is not this test's business)
    assert all(j["state"] != "cancelled" and j["result"]["attempts"] > 0 for j in ran), ran
    # one after another, in the thread's order: each starts once the one before has finished
    for before, after in itertools.pairwise(ran):
        assert datetime.fromisoformat(after["started_at"]) >= datetime.fromisoformat(
            before["finished_at"]
        ), (before, after)
    assert "straw" in ran[-1]["result"]["brief"] and "napkin" in ran[-1]["result"]["brief"]
