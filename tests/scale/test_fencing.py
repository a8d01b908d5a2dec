"""Fencing tokens on job leases: every grant increases the token, and a job's writes under an
outdated token are refused - attempts, reservations, results and checkpoints alike - on SQLite
and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from brandloop.agent.budgets import reserve_call
from brandloop.api.jobs import store
from brandloop.api.jobs.celery_queue import acquire_lease, expired_running_jobs, release_lease
from brandloop.domain import utcnow
from brandloop.errors import LeaseLostError
from brandloop.registry import crud, fencing
from brandloop.registry.db import Database
from brandloop.registry.models import RunEventRow
from brandloop.registry.models_money import SpendReservationRow
from brandloop.registry.models_scale import JobLeaseRow
from tests.databases import db_on_both, settings_on_both

__all__ = ["db_on_both", "settings_on_both"]


def _running_job(db: Database) -> tuple[str, str]:
    with db.session() as session:
        job = store.create_job(session, tenant="t", kind="generation", request={})
        session.flush()
        assert store.claim_job(session, job_id=job.id)
        crud.create_run(
            session,
            run_id=job.run_id,
            tenant="t",
            brand_id=None,
            brand_name="b",
            brief="x",
            request={},
            campaign_id=None,
            thread_id=None,
        )
        return job.id, job.run_id


def _reserve(db: Database, key: str, run_id: str) -> str:
    with db.session() as session:
        return reserve_call(
            session,
            tenant="t",
            run_id=run_id,
            campaign_id=None,
            request_budget_usd=1.0,
            call_key=key,
            amount_usd=0.01,
            provider="procedural",
            model="procedural/draft",
            attempt_ids=[],
            fence=None,
            replay_safe=False,
        ).verdict


def _lapse(db: Database, job_id: str) -> None:
    """Time passes for the lease: it expires (the holder stopped renewing it)."""
    with db.session() as session:
        session.execute(
            update(JobLeaseRow)
            .where(JobLeaseRow.job_id == job_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def test_the_token_grows_on_every_grant(db_on_both: Database) -> None:
    db = db_on_both
    job, _ = _running_job(db)
    assert acquire_lease(db, job_id=job, owner="w1", ttl=30) == 1
    assert acquire_lease(db, job_id=job, owner="w2", ttl=30) is None  # held
    assert acquire_lease(db, job_id=job, owner="w1", ttl=30) == 2  # its holder, again
    _lapse(db, job)
    assert expired_running_jobs(db, ttl=30) == [job]  # swept: a grant to the queue
    assert acquire_lease(db, job_id=job, owner="w2", ttl=30) == 4
    release_lease(db, job_id=job, owner="w2")
    assert acquire_lease(db, job_id=job, owner="w3", ttl=30) == 5  # released, not forgotten


def test_a_worker_whose_lease_moved_on_writes_nothing(db_on_both: Database) -> None:
    db = db_on_both
    job, run_id = _running_job(db)
    old = acquire_lease(db, job_id=job, owner="paused", ttl=30)
    assert old is not None
    with fencing.holding(fencing.Fence(job, old, db)):
        with db.session() as session:  # while it holds the lease its writes count
            crud.add_event(session, run_id=run_id, node="plan", kind="decision", payload={})
        assert _reserve(db, "call-1", run_id) == "reserved"
        fencing.verify_current()
    _lapse(db, job)
    assert expired_running_jobs(db, ttl=30) == [job]
    new = acquire_lease(db, job_id=job, owner="other", ttl=30)
    assert new is not None and new > old

    with fencing.holding(fencing.Fence(job, old, db)):  # the paused worker wakes up
        with pytest.raises(LeaseLostError), db.session() as session:
            crud.add_event(session, run_id=run_id, node="generate", kind="x", payload={})
        with pytest.raises(LeaseLostError):
            _reserve(db, "call-2", run_id)
        with pytest.raises(LeaseLostError), db.session() as session:
            row = store.get_job(session, tenant="t", job_id=job)
            assert row is not None
            row.state = "succeeded"  # publishing a result
        with pytest.raises(LeaseLostError):
            fencing.verify_current()  # what a checkpoint write checks first
        with db.session() as session:  # reading is still allowed
            assert store.get_job(session, tenant="t", job_id=job) is not None
    with db.session() as session:
        events = session.scalar(select(func.count()).where(RunEventRow.run_id == run_id))
        reservations = session.scalar(select(func.count()).select_from(SpendReservationRow))
        row = store.get_job(session, tenant="t", job_id=job)
        assert (events, reservations) == (1, 1)
        assert row is not None and row.state == "running"
    with fencing.holding(fencing.Fence(job, new, db)), db.session() as session:
        crud.add_event(session, run_id=run_id, node="generate", kind="x", payload={})
