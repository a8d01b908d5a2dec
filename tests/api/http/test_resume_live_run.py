"""``POST /v1/runs/{id}/resume`` of a run another live process still drives (the CLI's
``generate``, holding the run's lease: ``agent/run_leases.py``) is a 409 problem naming that
process, and leaves the run as it was; once that process has let the run go, the same request resumes
it (202). On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import socket
from typing import Any

from brandloop.agent import run_leases
from brandloop.domain import GenerationRequest
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.test_resume_review_gate import stopped_after_plan
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
from tests.fakes.one_accepted import OneAcceptedProvider


def test_resuming_a_run_a_live_process_drives_is_a_409_naming_it(
    settings: Settings, db: Database, seed: int
) -> None:
    keys = Keys(db)
    creator = keys["A", "creator"]
    request = GenerationRequest(
        brief="a steaming coffee cup", brand="Acme Coffee", count=2, size="256x256",
        seed=seed, tenant="A",
    )  # fmt: skip
    with client_with(settings, db, OneAcceptedProvider(), workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        run_id, _ = asyncio.run(stopped_after_plan(settings, db, request, older=False))

        async def while_held() -> Any:  # this test's process drives the run, as a CLI would
            async with run_leases.driving(db, tenant="A", run_id=run_id, ttl=30):
                return await asyncio.to_thread(
                    client.post, f"/v1/runs/{run_id}/resume", headers=creator
                )

        refused = asyncio.run(while_held())
        detail = assert_problem(refused, 409, "conflict")["detail"]
        assert run_id in detail, detail
        assert f"still running in pid {os.getpid()} on host {socket.gethostname()}" in detail
        run = client.get(f"/v1/runs/{run_id}", headers=creator).json()
        assert run["status"] == "running", run

        resumed = client.post(f"/v1/runs/{run_id}/resume", headers=creator)
        assert resumed.status_code == 202, resumed.text
        job = wait_job(client, resumed.json()["id"], creator)
        assert job["state"] == "succeeded", job
        run = client.get(f"/v1/runs/{run_id}", headers=creator).json()
        assert run["status"] == "partial" and len(run["images"]) == 1, run
