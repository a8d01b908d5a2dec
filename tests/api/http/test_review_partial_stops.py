"""A brand whose review mode is ``always`` gets a human's verdict before anything is delivered
over HTTP too, also when its run stops short at plan with one of two images accepted (the
stopping rule: the next round is not worth its price): the job waits (``awaiting_review``),
its run lists no image and no receipt, and only an approver's verdict delivers the one image (run ``partial``, job ``succeeded``,
the image served at its artifact URL). On SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit
from tests.fakes.one_accepted import OneAcceptedProvider

REVIEW_ALWAYS = "brand_review: {acme-coffee: {mode: always}}\n"
BODY = {"brief": "a steaming coffee cup", "brand": "Acme Coffee", "count": 2, "size": "256x256"}

#: review always for Acme Coffee; a stopping rule so strict that round two is never worth it
POLICY = REVIEW_ALWAYS + "stop_cost_multiple: 0.0001\n"


def test_a_partial_run_stopped_at_plan_is_delivered_only_after_approval(
    settings: Settings,
    db: Database,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    seed: int,
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text(POLICY)
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    keys = Keys(db)
    creator, viewer = keys["A", "creator"], keys["A", "viewer"]
    body: dict[str, Any] = {**BODY, "seed": seed}
    with client_with(settings, db, OneAcceptedProvider(), workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        job = client.post("/v1/generations?wait=60", json=body, headers=creator).json()
        actions = [f"{d['node']}:{d['action']}" for d in job["result"]["decisions"]]
        why = [(d["node"], d["action"], d["reason"][:160]) for d in job["result"]["decisions"]]
        assert "plan:stop_unpromising" in actions, why  # the stop was decided at plan
        assert job["state"] == "awaiting_review", (job["state"], actions)
        assert job["result"]["status"] == "awaiting_review" and job["result"]["images"] == []
        run_id = job["run_id"]
        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        assert run["status"] == "awaiting_review" and run["accepted"] == 1, run
        assert run["images"] == [], run
        assert client.get(f"/v1/runs/{run_id}/receipts", headers=viewer).json() == []
        queue = client.get("/v1/review", headers=keys["A", "approver"]).json()
        assert run_id in str(queue), queue

        verdict = client.post(
            f"/v1/review/runs/{run_id}",
            json={"decision": "approve", "note": "fine"},
            headers=keys["A", "approver"],
        )
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["status"] == "partial", verdict.json()
        job = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
        assert job["state"] == "succeeded" and job["result"]["status"] == "partial", job
        [image] = job["result"]["images"]
        served = client.get(f"/v1/artifacts/{image['sha256']}", headers=viewer)
        assert served.status_code == 200, served.text
        receipts = client.get(f"/v1/runs/{run_id}/receipts", headers=viewer).json()
        assert len(receipts) == 1, receipts
