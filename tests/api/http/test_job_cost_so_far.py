"""A job not finished shows what its run has cost so far, on SQLite and PostgreSQL: ``GET
/v1/jobs/{id}``, ``GET /v1/jobs``, a thread's messages (``GET /v1/threads/{id}``) and a
campaign (``GET /v1/campaigns/{id}``: each asset's job and ``spent_usd``) say what the run's own
view (``GET /v1/runs/{id}``) and the spend ledger count - its billed calls, and a call in flight
at its whole reservation - not the $0 the job's row holds until it ends. Once it ends, its
settled cost. A job that failed mid-run (its run left ``running``, to be resumed) keeps what the
run cost, not the $0 of the run's row.

The provider is scripted per call (the outside world): it refuses a call (billed), waits until
the test lets it go, or crashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from brandloop.registry.db import Database
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, brand_kit, wait_job
from tests.api.http.test_cancel_and_resume import BODY, PRICE, ScriptedProvider, _wait
from tests.api.http.test_costs_while_running import _committed
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _job_costs(client: TestClient, headers: dict[str, str], job_id: str) -> list[float]:
    """The job's cost as ``GET /v1/jobs/{id}`` and ``GET /v1/jobs`` show it."""
    one = client.get(f"/v1/jobs/{job_id}", headers=headers)
    assert one.status_code == 200, one.text
    (listed,) = [j for j in client.get("/v1/jobs", headers=headers).json() if j["id"] == job_id]
    return [one.json()["cost_usd"], listed["cost_usd"]]


@contextmanager
def _cost_reads(db: Database) -> Iterator[list[str]]:
    """The statements that read what a run has cost so far (``spend.run_cost``: the run's
    attempts and its calls) while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "spend_reservations" in statement and "attempt_ids" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", note)


def _run_cost(client: TestClient, headers: dict[str, str], run_id: str) -> float:
    cost: float = client.get(f"/v1/runs/{run_id}", headers=headers).json()["cost_usd"]
    return cost


def test_a_running_jobs_views_show_its_cost_so_far_then_its_settled_cost(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        job_id, run_id = job.json()["id"], job.json()["run_id"]
        _wait(provider.hanging.is_set, "the second call")  # one call billed, one in flight

        spent = _committed(db, "A", run_id)  # the billed refusal, and the call at its hold
        assert spent > PRICE
        assert client.get(f"/v1/jobs/{job_id}", headers=viewer).json()["state"] == "running"
        with _cost_reads(db) as reads:
            assert _job_costs(client, viewer, job_id) == pytest.approx([spent, spent])
        assert reads, "a running job's cost is read from its run"
        assert _run_cost(client, viewer, run_id) == pytest.approx(spent)

        provider.release.set()
        final = wait_job(client, job_id, admin)
        assert final["state"] == "succeeded", final
        settled = _committed(db, "A", run_id)
        assert settled == pytest.approx(_run_cost(client, viewer, run_id))
        with _cost_reads(db) as reads:  # a finished job reads nothing more for its cost
            assert _job_costs(client, viewer, job_id) == pytest.approx([settled, settled])
        assert reads == []
        assert final["result"]["cost_usd"] == pytest.approx(settled)


def test_a_job_that_failed_mid_run_keeps_what_its_run_cost(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    """The backend's client breaks mid-call: the job fails, its run is left ``running`` (to be
    resumed) with one billed call and one that may have been billed; the job says so."""
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "crash")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        job = client.post("/v1/generations", json={**BODY, "budget_usd": 0.5}, headers=admin)
        assert job.status_code == 202, job.text
        final = wait_job(client, job.json()["id"], admin)
        assert final["state"] == "failed", final
        run = client.get(f"/v1/runs/{final['run_id']}", headers=viewer).json()
        assert run["status"] == "running" and run["finished_at"] is None, run
        spent = _committed(db, "A", final["run_id"])
        assert spent > PRICE and run["cost_usd"] == pytest.approx(spent)
        assert final["cost_usd"] == pytest.approx(spent)
        assert _job_costs(client, viewer, final["id"]) == pytest.approx([spent, spent])


def _thread_job(client: TestClient, headers: dict[str, str], thread_id: str) -> dict[str, Any]:
    thread = client.get(f"/v1/threads/{thread_id}", headers=headers)
    assert thread.status_code == 200, thread.text
    (job,) = [m["job"] for m in thread.json()["messages"] if m["job"] is not None]
    return dict(job)


def test_a_running_threads_message_shows_its_jobs_cost_so_far(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        body = {"brand": "Acme Coffee", "title": "t", "message": BODY["brief"]}
        thread = client.post("/v1/threads", json=body, headers=admin)
        assert thread.status_code == 201, thread.text
        thread_id = thread.json()["id"]
        _wait(provider.hanging.is_set, "the second call")

        job = _thread_job(client, viewer, thread_id)
        spent = _committed(db, "A", job["run_id"])
        assert spent > PRICE
        assert job["state"] == "running" and job["cost_usd"] == pytest.approx(spent), job

        provider.release.set()
        assert wait_job(client, job["id"], admin)["state"] == "succeeded"
        settled = _committed(db, "A", job["run_id"])
        assert _thread_job(client, viewer, thread_id)["cost_usd"] == pytest.approx(settled)


def test_a_running_campaign_shows_what_its_assets_have_cost_so_far(
    settings_on_both: Settings, db_on_both: Database
) -> None:
    settings, db = settings_on_both, db_on_both
    keys = Keys(db)
    provider = ScriptedProvider("refuse", "hang")
    with client_with(settings, db, provider, workers=1) as client:
        admin, viewer = keys["A", "admin"], keys["A", "viewer"]
        assert client.post("/v1/brands", json=brand_kit(), headers=admin).is_success
        body = {
            "name": "so far",
            "brand": "Acme Coffee",
            "budget_usd": 0.5,
            "assets": [{"brief": BODY["brief"], "formats": ["256x256"], "count": 1}],
        }
        created = client.post("/v1/campaigns", json=body, headers=admin)
        assert created.status_code == 202, created.text
        campaign_id = created.json()["id"]
        _wait(provider.hanging.is_set, "the second call")

        board = client.get(f"/v1/campaigns/{campaign_id}", headers=viewer).json()
        (asset,) = board["assets"]
        spent = _committed(db, "A", asset["job"]["run_id"])
        assert spent > PRICE
        assert board["state"] == "running", board
        assert asset["job"]["cost_usd"] == pytest.approx(spent), board
        assert board["spent_usd"] == pytest.approx(spent), board

        provider.release.set()
        assert wait_job(client, asset["job"]["id"], admin)["state"] == "succeeded"
        settled = _committed(db, "A", asset["job"]["run_id"])
        board = client.get(f"/v1/campaigns/{campaign_id}", headers=viewer).json()
        assert board["state"] == "done"
        assert board["spent_usd"] == pytest.approx(settled)
        assert board["assets"][0]["job"]["cost_usd"] == pytest.approx(settled)
