"""Concurrent ``POST /v1/runs/{id}/resume`` of one interrupted run: one is a 202 with one job
and one hold on the daily quota; the others are 409 (the run is already being resumed). They
once all answered 202, each with a job and a hold of its own: the quota counted the run's
budget four times, three jobs failed "still running in pid …" and every job listed the run's
cost (outside tester). On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from brandloop.api.jobs import store
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.registry.models_money import SpendReservationRow
from brandloop.registry.models_service import JobRow
from brandloop.settings import Settings
from tests.api.http.clients import client_with
from tests.api.http.conftest import Keys, assert_problem, brand_kit
from tests.backends import steady_procedural

RESUMES = 4
BUDGET = 0.2


def _left_running(db: Database, run_id: str, *, job: bool) -> None:
    """A run a kill -9 stopped: ``running``, no live lease, one call it paid for; started by
    ``brandloop generate`` (no job) or by an API job the next pool start marked ``failed``."""
    with db.session() as session:
        if job:
            store.create_job(
                session, tenant="A", kind="generate", request={}, run_id=run_id
            ).state = "failed"
        crud.create_run(
            session,
            run_id=run_id,
            tenant="A",
            brand_id=None,
            brand_name="Acme Coffee",
            brief="a steaming cup on a wooden table",
            request={"brief": "a steaming cup", "brand": "Acme Coffee", "budget_usd": BUDGET},
        )
        spend.lock_tenant(session, "A")
        row = spend.reserve_call(
            session,
            tenant="A",
            run_id=run_id,
            campaign_id=None,
            call_key=f"{run_id}-paid",
            amount_usd=0.04,
            provider="procedural",
            model="procedural/draft",
            attempt_ids=[],
        )
        spend.settle(session, call_key=row.call_key or "", billing="billed", charged_usd=0.04)


def _resume_at_once(client: TestClient, run_id: str, creator: dict[str, str]) -> list[Any]:
    start = threading.Barrier(RESUMES)

    def resume(_: int) -> Any:
        start.wait()
        return client.post(f"/v1/runs/{run_id}/resume", headers=creator)

    with ThreadPoolExecutor(RESUMES) as pool:
        return list(pool.map(resume, range(RESUMES)))


def _holds(db: Database, run_id: str) -> tuple[int, int]:
    """The run's jobs, and its admissions held on the quota."""
    with db.session() as session:
        jobs = session.scalar(select(func.count()).where(JobRow.run_id == run_id))
        holds = session.scalar(
            select(func.count()).where(
                SpendReservationRow.kind == "admission",
                SpendReservationRow.run_id == run_id,
                SpendReservationRow.state == "held",
            )
        )
    return int(jobs or 0), int(holds or 0)


@pytest.mark.parametrize("attempt", range(3))
@pytest.mark.parametrize("job", [False, True], ids=["cli-run", "api-job"])
def test_concurrent_resumes_of_one_run_queue_it_once(
    settings: Settings, db: Database, attempt: int, job: bool
) -> None:
    keys = Keys(db)
    creator = keys["A", "creator"]
    run_id = f"run_killed{attempt}"
    _left_running(db, run_id, job=job)
    # no worker: the job stays queued, as the resumes race for it
    with client_with(settings, db, steady_procedural(), workers=0) as client:
        assert client.post("/v1/brands", json=brand_kit(), headers=keys["A", "admin"]).is_success
        answers = _resume_at_once(client, run_id, creator)
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] + [409] * (RESUMES - 1), [a.text for a in answers]
    for refused in (a for a in answers if a.status_code == 409):
        assert "already queued" in assert_problem(refused, 409, "conflict")["detail"]
    assert _holds(db, run_id) == (1, 1)
    with db.session() as session:  # its budget less what the run paid, once
        assert spend.quota_used(session, tenant="A") == pytest.approx(BUDGET)
