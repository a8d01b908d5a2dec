"""A follow-up queued twice - by its POST, while every worker is busy, and again by the turn
before it once that is decided - runs once, after that turn, on SQLite and PostgreSQL.

An outside tester's turn 2 was driven by both copies: the second found its run busy (the
first copy's, in the same process), failed the job with a 409 naming the server's own pid and
ended its event stream there, so turn 3 started before turn 2 had finished; then the first
copy finished and the job turned `succeeded`. The provider (the outside world) holds the
first call of each brief below until the test lets them go."""

from __future__ import annotations

import asyncio
import threading
import time

from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import _wait
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

FINAL = ("succeeded", "failed", "cancelled")


class Held:
    """The procedural renderer; a prompt naming a held word waits until that word is let go."""

    name = "procedural"

    def __init__(self, *words: str) -> None:
        self.inner = steady_procedural()
        self.waiting: set[str] = set()
        self.go = {word: threading.Event() for word in words}

    async def generate(self, request: ImageRequest) -> ImageResult:
        wanted = request.prompt.split("Avoid:")[0]
        for word, go in self.go.items():
            if word in wanted and not go.is_set():
                self.waiting.add(word)
                while not go.is_set():
                    await asyncio.sleep(0.01)
                self.waiting.discard(word)
        return await self.inner.generate(request)


def test_a_turn_queued_twice_runs_once_and_in_order(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    keys = Keys(db_on_both)
    provider = Held("saucer", "lighthouse", "steam")
    with client_with(settings_on_both, db_on_both, provider, workers=2) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        made = client.post(
            "/v1/threads",
            json={"brand": "Acme Coffee", "title": "t", "message": "a cup on a saucer",
                  "size": "64x64"},
            headers=creator,
        )  # fmt: skip
        assert made.status_code == 201, made.text
        thread, first = made.json()["id"], made.json()["messages"][0]["job"]["id"]
        other = client.post(
            "/v1/generations",
            json={"brief": "a lighthouse", "brand": "Acme Coffee", "size": "64x64"},
            headers=creator,
        ).json()["id"]
        _wait(lambda: provider.waiting == {"saucer", "lighthouse"}, "both workers busy")
        jobs = []
        for content in ("add steam", "add a spoon"):  # queued: no worker is free
            sent = client.post(
                f"/v1/threads/{thread}/messages", json={"content": content}, headers=creator
            )
            assert sent.status_code == 202, sent.text
            jobs.append(sent.json()["job"]["id"])
        second, third = jobs
        # the first turn ends and sends the second again: the freed worker runs one copy
        provider.go["saucer"].set()
        _wait(lambda: "steam" in provider.waiting, "the second turn running")
        # the other worker, freed, takes the third turn (parked) and the second's other copy
        provider.go["lighthouse"].set()
        wait_job(client, other, creator)
        time.sleep(1.0)
        running = client.get(f"/v1/jobs/{second}", headers=creator).json()
        assert running["state"] == "running", (running["state"], running.get("error"))
        provider.go["steam"].set()
        finals = {j: wait_job(client, j, creator) for j in (first, other, second, third)}
        assert all(finals[j]["state"] in FINAL for j in finals), finals
        assert (finals[second].get("error") or {}).get("status") != 409, finals[second]
        # the third turn started only once the second had finished
        assert finals[third]["started_at"] >= finals[second]["finished_at"], (
            finals[second], finals[third])  # fmt: skip


def test_a_replica_starting_leaves_another_replicas_running_job_alone(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """A pool's start resumes the jobs left ``running``; one another live replica on the same
    database is driving is not such a job (its run's lease is live): the starting replica
    used to resume it, find its run busy and fail it with a 409."""
    keys = Keys(db_on_both)
    provider = Held("lighthouse")
    with client_with(settings_on_both, db_on_both, provider, workers=1) as first:
        assert first.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        job = first.post(
            "/v1/generations",
            json={"brief": "a lighthouse", "brand": "Acme Coffee", "size": "64x64"},
            headers=creator,
        ).json()["id"]
        _wait(lambda: provider.waiting == {"lighthouse"}, "the job running")
        with client_with(settings_on_both, db_on_both, Held(), workers=1) as second:
            time.sleep(1.0)  # the second replica's start has recovered what it found
            seen = second.get(f"/v1/jobs/{job}", headers=creator).json()
            assert seen["state"] == "running", (seen["state"], seen.get("error"))
        provider.go["lighthouse"].set()
        done = wait_job(first, job, creator)
        assert done["state"] in FINAL and (done.get("error") or {}).get("status") != 409, done
