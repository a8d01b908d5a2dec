"""``POST /v1/runs/{id}/resume`` of a run stopped at plan with an image accepted, its process
killed before the run went on, in a checkpoint as a release older than the review gate on every
exit left it (plan's stop routed straight to ``finalize``): the resumed job waits for review
(brand review mode ``always``), its run lists no image and no receipt, and only an approver's
verdict delivers the image. The checkpoint is built as in tests/agent/test_resume_review_gate.py.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from brandloop.domain import GenerationRequest
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.agent.test_resume_review_gate import POLICY, stopped_after_plan
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit
from tests.fakes.one_accepted import OneAcceptedProvider


def _settled(client: Any, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        job: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not settle in 60s")


def test_resuming_an_older_checkpoint_of_a_plan_stop_over_http_waits_for_review(
    settings: Settings, db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, seed: int
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    keys = Keys(db)
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    request = GenerationRequest(
        brief="a steaming coffee cup", brand="Acme Coffee", count=2, size="256x256",
        seed=seed, tenant="A",
    )  # fmt: skip
    with client_with(settings, db, OneAcceptedProvider(), workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        run_id, next_node = asyncio.run(stopped_after_plan(settings, db, request, older=True))
        assert next_node == ("finalize",), next_node
        resumed = client.post(f"/v1/runs/{run_id}/resume", headers=creator)
        assert resumed.status_code == 202, resumed.text
        job = _settled(client, resumed.json()["id"], creator)
        actions = [f"{d['node']}:{d['action']}" for d in (job["result"] or {}).get("decisions", [])]
        assert job["state"] == "awaiting_review", (job["state"], job.get("error"), actions)
        assert job["result"]["images"] == [], job["result"]
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        assert run["status"] == "awaiting_review" and run["images"] == [], run
        assert client.get(f"/v1/runs/{run_id}/receipts", headers=viewer).json() == []

        verdict = client.post(
            f"/v1/review/runs/{run_id}", json={"decision": "approve"}, headers=keys["A", "approver"]
        )
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["status"] == "partial", verdict.json()
        assert len(client.get(f"/v1/runs/{run_id}/receipts", headers=viewer).json()) == 1
