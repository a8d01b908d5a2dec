"""A cancelled turn in a thread is not carried on, on SQLite and PostgreSQL (docs/http-api.md,
Threads): like a refused one it stays in the thread's history, and the next follow-up edits
the brief of the latest turn before it - also a follow-up posted (and revised) while the
cancelled turn was still running, which is revised again before it runs. An outside tester
cancelled "add steam" and found the steam in every later turn's brief."""

from __future__ import annotations

import asyncio
import threading

from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import _wait
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

FIRST = "a croissant beside a coffee cup on a marble counter"


class HoldsSteam:
    """The procedural renderer, except that a prompt naming steam waits until ``release``."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def generate(self, request: ImageRequest) -> ImageResult:
        if "steam" in request.prompt.split("Avoid:")[0]:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await self.inner.generate(request)


def test_a_cancelled_turn_is_kept_and_not_carried_on(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    keys = Keys(db_on_both)
    provider = HoldsSteam()
    with client_with(settings_on_both, db_on_both, provider, workers=2) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        made = client.post(
            "/v1/threads",
            json={"brand": "Acme Coffee", "title": "t", "message": FIRST, "size": "64x64"},
            headers=creator,
        )
        assert made.status_code == 201, made.text
        thread = made.json()["id"]
        wait_job(client, made.json()["messages"][0]["job"]["id"], creator)

        def post(content: str) -> str:
            sent = client.post(
                f"/v1/threads/{thread}/messages", json={"content": content}, headers=creator
            )
            assert sent.status_code == 202, sent.text
            return str(sent.json()["job"]["id"])

        steam = post("add steam")
        _wait(provider.holding.is_set, "the steam turn's call")
        warmer = post("make it warmer")  # revised on the steam turn's brief as it is posted
        cancelled = client.post(f"/v1/jobs/{steam}/cancel", headers=creator)
        assert cancelled.status_code == 200, cancelled.text
        provider.release.set()
        assert wait_job(client, steam, creator)["state"] == "cancelled"
        assert wait_job(client, warmer, creator)["state"] in ("succeeded", "failed")
        saucer = post("add a saucer")
        wait_job(client, saucer, creator)

        messages = client.get(f"/v1/threads/{thread}", headers=creator).json()["messages"]
        users = [m for m in messages if m["role"] == "user"]
        assert [m["content"] for m in users] == [FIRST, "add steam", "make it warmer",
                                                 "add a saucer"]  # fmt: skip
        # the cancelled turn stays, with its text, brief and job
        assert users[1]["brief"] == f"{FIRST}, steam" and users[1]["job"]["id"] == steam
        # the follow-up made on it while it ran was revised again on the turn before it
        assert users[2]["edit"]["before"] == FIRST, users[2]["edit"]
        assert "steam" not in users[2]["brief"]
        # and later turns edit that one
        assert users[3]["edit"]["before"] == users[2]["brief"]
        assert "steam" not in users[3]["brief"] and "saucer" in users[3]["brief"]
