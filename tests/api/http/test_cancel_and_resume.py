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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from brandloop.agent.budgets import set_budget
from brandloop.providers import ImageRequest, ImageResult
from brandloop.registry import spend
from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, brand_kit, wait_job
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


def test_a_cancelled_running_job_and_its_run_end_with_what_they_paid(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator, viewer = keys["A", "creator"], keys["A", "viewer"]
        before = client.get("/v1/costs?period=day", headers=viewer).json()
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=creator)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")  # one call billed, one in flight

        cancelled = client.post(f"/v1/jobs/{job_id}/cancel", headers=creator)
        assert cancelled.status_code == 200, cancelled.text
        final = wait_job(client, job_id, creator)
        provider.release.set()

        run = client.get(f"/v1/runs/{run_id}", headers=viewer).json()
        trace = client.get(f"/v1/runs/{run_id}/trace", headers=viewer).json()
        after = client.get("/v1/costs?period=day", headers=viewer).json()
        paid = round(sum(a["cost_usd"] for a in trace["attempts"]), 6)
        billings = sorted(a["billing"] for a in trace["attempts"])
        assert final["state"] == "cancelled" and final["result"] is None
        # the refusal was billed; the call in flight may have been: held at its reservation
        assert billings == ["billed", "unknown"], trace["attempts"]
        assert paid > PRICE
        assert final["cost_usd"] == pytest.approx(paid)
        assert run["status"] == "cancelled" and run["finished_at"] is not None
        assert run["cost_usd"] == pytest.approx(paid) and run["attempts"] == 2
        assert after["total_usd"] - before["total_usd"] == pytest.approx(paid)
        assert sum(after["by_model"].values()) - sum(before["by_model"].values()) == (
            pytest.approx(paid)
        )
        with db.session() as session:
            assert spend.committed(session, tenant="A", run_id=run_id) == pytest.approx(paid)
            assert spend.quota_used(session, tenant="A") == pytest.approx(paid)
        running = client.get("/v1/runs?status=running", headers=viewer).json()
        assert run_id not in [r["run_id"] for r in running]
        listed = client.get("/v1/runs?status=cancelled", headers=viewer).json()
        assert [r["run_id"] for r in listed] == [run_id]
        # cancelling is final: the run is not resumed, the job not cancelled twice
        assert (
            "cancelled"
            in assert_problem(
                client.post(f"/v1/runs/{run_id}/resume", headers=creator), 409, "conflict"
            )["detail"]
        )
        assert_problem(client.post(f"/v1/jobs/{job_id}/cancel", headers=creator), 409, "conflict")
    assert provider.calls == 2


def test_a_job_cancelled_while_queued_has_a_cancelled_run_at_no_cost(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """Its ``links.run`` is a run like any other: ``cancelled``, $0, the job's brand and brief,
    listed under ``?status=cancelled`` (it was a 404 once: the run was never written)."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("hang")
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator, viewer = keys["A", "creator"], keys["A", "viewer"]
        first = client.post("/v1/generations", json=BODY, headers=creator).json()
        _wait(provider.hanging.is_set, "the first job's call")  # the only worker is busy
        queued = client.post(
            "/v1/generations",
            json={**BODY, "brief": "a latte on a marble counter"},
            headers=creator,
        ).json()
        assert queued["state"] == "queued"

        cancelled = client.post(f"/v1/jobs/{queued['id']}/cancel", headers=creator)
        assert cancelled.status_code == 200, cancelled.text
        job = cancelled.json()
        assert job["state"] == "cancelled" and job["cost_usd"] == 0
        run_url = job["links"]["run"]
        assert run_url == f"/v1/runs/{queued['run_id']}"
        run = client.get(run_url, headers=viewer)
        assert run.status_code == 200, run.text
        body = run.json()
        assert body["status"] == "cancelled" and body["cost_usd"] == 0
        assert body["brand"] == "Acme Coffee" and body["brief"] == "a latte on a marble counter"
        assert body["finished_at"] is not None and body["images"] == [] and body["attempts"] == 0
        listed = client.get("/v1/runs?status=cancelled", headers=viewer).json()
        assert [r["run_id"] for r in listed] == [queued["run_id"]]
        trace = client.get(f"{run_url}/trace", headers=viewer)
        assert trace.status_code == 200 and trace.json()["attempts"] == []
        # final, like any cancelled run's: not resumed, not cancelled twice
        assert_problem(client.post(f"{run_url}/resume", headers=creator), 409, "conflict")
        assert_problem(
            client.post(f"/v1/jobs/{queued['id']}/cancel", headers=creator), 409, "conflict"
        )
        provider.release.set()
        assert wait_job(client, first["id"], creator)["state"] == "succeeded"
        assert wait_job(client, queued["id"], creator)["state"] == "cancelled"
        with db.session() as session:
            assert spend.committed(session, tenant="A", run_id=queued["run_id"]) == 0


def test_a_cancelled_campaign_asset_counts_in_what_the_campaign_spent(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        made = client.post(
            "/v1/campaigns",
            json={
                "name": "autumn",
                "brand": "Acme Coffee",
                "budget_usd": 0.4,
                "assets": [{"brief": "a lantern by a cup", "formats": ["64x64"]}],
            },
            headers=creator,
        )
        assert made.status_code == 202, made.text
        campaign_id = made.json()["id"]
        job_id = made.json()["assets"][0]["job"]["id"]
        _wait(provider.hanging.is_set, "the second call")
        assert client.post(f"/v1/jobs/{job_id}/cancel", headers=creator).status_code == 200
        final = wait_job(client, job_id, creator)
        provider.release.set()
        campaign = client.get(f"/v1/campaigns/{campaign_id}", headers=creator).json()
        assert final["state"] == "cancelled" and final["cost_usd"] > 0
        assert campaign["spent_usd"] == pytest.approx(final["cost_usd"])
        with db.session() as session:
            charged = spend.committed(session, tenant="A", campaign_id=campaign_id)
        assert campaign["spent_usd"] == pytest.approx(charged)


def _crashed_job(client: TestClient, creator: dict[str, str], budget: float) -> dict[str, Any]:
    job = client.post("/v1/generations", json={**BODY, "budget_usd": budget}, headers=creator)
    assert job.status_code == 202, job.text
    final = wait_job(client, job.json()["id"], creator)
    assert final["state"] == "failed" and final["error"]["type"] == "internal", final
    return final


def test_a_resumed_run_holds_its_budget_against_the_daily_quota(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """A job crashed after paying for one call; its run is resumed while another job is
    submitted at the same moment. The quota ($1) holds the resumed run's budget less what it
    committed ($0.60 - $0.02) and the other job's $0.60 only one at a time: one is a 402.
    Once the resumed run ends, the quota counts what the whole run cost, once."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "crash")
    with client_with(settings, db, provider, workers=1, daily_quota_usd=1.0) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        crashed = _crashed_job(client, creator, 0.6)
        with db.session() as session:  # the refusal billed, the crashed call held (unknown)
            paid = spend.committed(session, tenant="A", run_id=crashed["run_id"])
            assert paid > PRICE
            assert spend.quota_used(session, tenant="A") == pytest.approx(paid)
        barrier = threading.Barrier(2)

        def resume() -> Any:
            barrier.wait()
            return client.post(f"/v1/runs/{crashed['run_id']}/resume", headers=creator)

        def submit() -> Any:
            barrier.wait()
            return client.post("/v1/generations", json={**BODY, "budget_usd": 0.6}, headers=creator)

        with ThreadPoolExecutor(2) as pool:
            answers = [pool.submit(resume), pool.submit(submit)]
            resumed, other = (a.result() for a in answers)
        assert sorted([resumed.status_code, other.status_code]) == [202, 402], (
            resumed.text,
            other.text,
        )
        refused = resumed if resumed.status_code == 402 else other
        assert_problem(refused, 402, "quota-exceeded")
        accepted = resumed if resumed.status_code == 202 else other
        done = wait_job(client, accepted.json()["id"], creator)
        assert done["state"] == "succeeded", done
        if accepted is resumed:
            assert done["id"] == crashed["id"] and done["cost_usd"] > paid
        with db.session() as session:
            spent = sum(
                spend.committed(session, tenant="A", run_id=run)
                for run in {crashed["run_id"], done["run_id"]}
            )
            assert spend.quota_used(session, tenant="A") == pytest.approx(spent)


def test_a_resume_that_does_not_fit_the_quota_is_a_402_and_queues_nothing(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """$0.02 committed by the crashed run, $0.45 held by a running job: resuming would hold
    $0.58 more, past the $1 quota."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "crash", "hang")
    with client_with(settings, db, provider, workers=1, daily_quota_usd=1.0) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        creator = keys["A", "creator"]
        crashed = _crashed_job(client, creator, 0.6)
        holding = client.post("/v1/generations", json={**BODY, "budget_usd": 0.45},
                              headers=creator)  # fmt: skip
        assert holding.status_code == 202, holding.text
        _wait(provider.hanging.is_set, "the holding job's call")
        refused = client.post(f"/v1/runs/{crashed['run_id']}/resume", headers=creator)
        assert "daily quota" in assert_problem(refused, 402, "quota-exceeded")["detail"]
        job = client.get(f"/v1/jobs/{crashed['id']}", headers=creator).json()
        assert job["state"] == "failed" and job["error"]["type"] == "internal"  # as it was
        with db.session() as session:
            paid = spend.committed(session, tenant="A", run_id=crashed["run_id"])
            assert spend.quota_used(session, tenant="A") == pytest.approx(paid + 0.45)
        provider.release.set()
        wait_job(client, holding.json()["id"], creator)


def test_cancelling_a_job_waiting_for_review_is_a_409_that_says_so(
    make_client: Any, keys: Keys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = tmp_path / "agent.yaml"
    policy.write_text("review:\n  mode: always\n")
    monkeypatch.setenv("BRANDLOOP_AGENT_POLICY", str(policy))
    client = make_client()
    creator = keys["A", "creator"]
    assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
    job = client.post("/v1/generations?wait=60", json=BODY, headers=creator).json()
    assert job["state"] == "awaiting_review", job["error"]
    problem = assert_problem(
        client.post(f"/v1/jobs/{job['id']}/cancel", headers=creator), 409, "conflict"
    )
    assert "waiting for review" in problem["detail"] and job["run_id"] in problem["detail"]
    still = client.get(f"/v1/jobs/{job['id']}", headers=creator).json()
    assert still["state"] == "awaiting_review"
    queue = client.get("/v1/review", headers=keys["A", "approver"]).json()
    assert [r["run_id"] for r in queue["runs"]] == [job["run_id"]]


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
