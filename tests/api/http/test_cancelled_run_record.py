"""A job cancelled while its calls are in flight leaves a complete run record, on SQLite and
PostgreSQL: the run names the template version its attempts name (it was recorded when intake
resolved it, before any call), so ``GET /v1/runs?template=`` finds it; and every attempt the
cancel ended has its ``attempt_finished`` (unknown billing, at its reservation) in the job's
event stream and the run's trace, as each started attempt does (docs/http-api.md, Events).

An outside tester found the run listed with ``template ''`` and four paid attempts started but
never finished. The provider is the outside world: it hangs until the test lets it go."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.backends import steady_procedural
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


class HangingProvider:
    """The procedural renderer, whose calls wait until ``release`` is set."""

    name = "procedural"

    def __init__(self) -> None:
        self.inner = steady_procedural()
        self.hanging = threading.Event()
        self.release = threading.Event()

    async def generate(self, request: ImageRequest) -> ImageResult:
        self.hanging.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return await self.inner.generate(request)


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in text.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_run_cancelled_mid_call_keeps_its_template_and_finishes_its_attempts(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    keys = Keys(db_on_both)
    provider = HangingProvider()
    with client_with(settings_on_both, db_on_both, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator, viewer = keys["A", "creator"], keys["A", "viewer"]
        body = {"brief": "a big coffee shop interior", "brand": "Acme Coffee", "size": "256x256"}
        job = client.post("/v1/generations", json={**body, "count": 2}, headers=creator)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        deadline = time.monotonic() + 30
        while not provider.hanging.is_set():
            assert time.monotonic() < deadline, "the call never started"
            time.sleep(0.02)

        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=creator).status_code == 200
        assert wait_job(client, job_id, creator)["state"] == "cancelled"
        provider.release.set()

        trace = client.get(f"/v1/runs/{run_id}/trace", headers=viewer).json()
        attempts = trace["attempts"]
        assert attempts and {a["billing"] for a in attempts} == {"unknown"}
        templates = {a["template"] for a in attempts}
        assert len(templates) == 1 and "@" in next(iter(templates))
        template = templates.pop()
        # the run names the version its paid attempts name; it was '' once
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        assert run["status"] == "cancelled" and run["template"] == template
        for ref in (template, template.split("@")[0]):
            listed = client.get("/v1/runs", params={"template": ref}, headers=viewer).json()
            assert [r["run_id"] for r in listed] == [run_id], ref

        # every started attempt finished, in the trace and in the event stream alike
        started = {
            e["payload"]["attempt"] for e in trace["events"] if e["kind"] == "attempt_started"
        }
        ended = [e["payload"] for e in trace["events"] if e["kind"] == "attempt_finished"]
        assert started == {a["id"] for a in attempts}
        assert sorted(p["attempt"] for p in ended) == sorted(started)
        costs = {a["id"]: a["cost_usd"] for a in attempts}
        for payload in ended:
            assert payload["billing"] == "unknown" and payload["outcome"] == "error"
            assert payload["cost_usd"] == costs[payload["attempt"]] > 0
        with client.stream("GET", f"/v1/jobs/{job_id}/events", headers=viewer) as stream:
            names = [name for name, _ in _events("".join(stream.iter_text()))]
        assert names.count("attempt_finished") == names.count("attempt_started") == len(started)
        assert names[-1] == "end"
