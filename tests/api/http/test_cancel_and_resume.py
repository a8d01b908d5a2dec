"""Cancelling and resuming jobs through the HTTP API, on SQLite and PostgreSQL: what a job paid
is kept in every figure, a cancelled job's run ends, a resumed run holds its budget against the
daily quota like any job, and a job waiting for review is not "cancelled" by a no-op.

The provider is scripted per call (the outside world): it refuses a call (billed, so the agent
plans again), crashes, or waits until the test lets it go.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from brandloop.agent.budgets import set_budget
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]

PRICE = 0.01  # what the scripted refusal bills, per image


class ScriptedProvider:
    """The procedural renderer behind a script: each call takes the next step ("refuse": a
    billed content-filter refusal, "crash": a bug in the backend's client, "hang": wait until
    ``release``), then renders normally once the script is spent."""

    name = "procedural"

    def __init__(self, *script: str) -> None:
        self.inner = steady_procedural()
        self.script = list(script)
        self.calls = 0
        self.hanging = threading.Event()
        self.release = threading.Event()

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.calls += 1
        step = self.script.pop(0) if self.script else "render"
        if step == "refuse":
            return ImageResult(finish_reason="content_filtered", cost_usd=PRICE * request.count)
        if step == "crash":
            raise RuntimeError("the backend's client broke")
        if step == "hang":
            self.hanging.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await self.inner.generate(request)


BODY = {
    "brief": "a steaming cup on a wooden table",
    "brand": "Acme Coffee",
    "size": "256x256",
}


def _wait(predicate: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def test_a_job_stopped_by_the_tenant_budget_says_budget_exhausted(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider()
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        with db.session() as session:  # what `brandloop campaign budget 0.005 --tenant` sets
            set_budget(session, tenant="A", scope="tenant", scope_id="A", limit_usd=0.005)
        creator = keys["A", "creator"]
        job = client.post("/v1/generations?wait=60", json=BODY, headers=creator).json()
        assert job["state"] == "failed", job
        assert job["error"]["type"] == "budget-exhausted" and job["error"]["status"] == 402
        assert "budget" in job["error"]["detail"]
