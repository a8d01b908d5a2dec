"""The job lease: one holder at a time, taken over only after it lapses, swept once."""

from __future__ import annotations

import time
from pathlib import Path

from brandloop.api.jobs import store, turns
from brandloop.api.jobs.celery_queue import (
    REQUEUED,
    acquire_lease,
    expired_running_jobs,
    release_lease,
    renew_lease,
    renew_leases,
    stranded_queued_jobs,
)
from brandloop.registry.db import Database
from brandloop.registry.models_scale import JobLeaseRow
from brandloop.registry.models_service import JobRow, ThreadRow


def _running_job(db: Database) -> str:
    with db.session() as session:
        job = store.create_job(session, tenant="t", kind="generation", request={})
        session.flush()
        assert store.claim_job(session, job_id=job.id)
        return job.id


def test_one_holder_until_the_lease_lapses(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    job = _running_job(db)
    assert acquire_lease(db, job_id=job, owner="w1", ttl=0.3)
    assert not acquire_lease(db, job_id=job, owner="w2", ttl=0.3)
    assert acquire_lease(db, job_id=job, owner="w1", ttl=0.3)  # re-entrant for its holder
    assert renew_lease(db, job_id=job, owner="w1", ttl=0.3)
    assert not renew_lease(db, job_id=job, owner="w2", ttl=0.3)
    assert expired_running_jobs(db, ttl=0.3) == []  # live: nothing to sweep
    time.sleep(0.4)
    assert renew_leases(db, owners=["w1"], ttl=0.3) == 1  # a late renewal still counts...
    time.sleep(0.4)
    # ...but once it lapsed unrenewed, one sweep marks it requeued and sends it once
    assert expired_running_jobs(db, ttl=0.3) == [job]
    assert expired_running_jobs(db, ttl=0.3) == []
    assert not renew_lease(db, job_id=job, owner="w1", ttl=0.3)  # the old holder lost it
    assert acquire_lease(db, job_id=job, owner="w2", ttl=0.3)  # the redelivery takes it
    with db.session() as session:
        lease = session.get(JobLeaseRow, job)
        assert lease is not None and lease.owner == "w2" and lease.owner != REQUEUED
        assert lease.takeovers >= 1
    release_lease(db, job_id=job, owner="w1")  # not the holder: no effect
    assert not acquire_lease(db, job_id=job, owner="w3", ttl=0.3)
    release_lease(db, job_id=job, owner="w2")
    assert acquire_lease(db, job_id=job, owner="w3", ttl=0.3)


def test_finished_jobs_are_never_swept(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    job = _running_job(db)
    assert acquire_lease(db, job_id=job, owner="w1", ttl=0.05)
    with db.session() as session:
        row = store.get_job(session, tenant="t", job_id=job)
        assert row is not None
        row.state = "succeeded"
    time.sleep(0.1)
    assert expired_running_jobs(db, ttl=0.05) == []


def test_a_queued_job_nobody_holds_is_sent_again_once(tmp_path: Path) -> None:
    """Queued over a lease period with no live lease and no message waiting: a worker took its
    message and died before starting it (holding its lease, or before taking it)."""
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    with db.session() as session:
        jobs = [
            store.create_job(session, tenant="t", kind="generation", request={}).id for _ in "abcd"
        ]
    dead, waiting, live, bare = jobs
    assert acquire_lease(db, job_id=dead, owner="w1", ttl=0.2)  # took it, died before claiming
    asked: list[bool] = []

    def in_redis() -> set[str]:
        asked.append(True)
        return {waiting}  # still waiting its turn in the queue

    assert stranded_queued_jobs(db, ttl=0.2, waiting=in_redis) == []  # too young to tell
    assert not asked  # the queue is read only when some job may be stranded
    time.sleep(0.3)
    assert acquire_lease(db, job_id=live, owner="w2", ttl=5)  # a live worker is starting it
    assert sorted(stranded_queued_jobs(db, ttl=0.2, waiting=in_redis)) == sorted([dead, bare])
    assert stranded_queued_jobs(db, ttl=0.2, waiting=in_redis) == []  # sent once per sweep
    assert stranded_queued_jobs(db, ttl=0.2, waiting=lambda: None) == []  # broker silent
    assert not renew_lease(db, job_id=dead, owner="w1", ttl=0.2)  # the dead holder is fenced out
    assert acquire_lease(db, job_id=dead, owner="w3", ttl=5)  # the copy sent takes it
    assert acquire_lease(db, job_id=bare, owner="w3", ttl=5)
    with db.session() as session:
        store.claim_job(session, job_id=live)
    assert stranded_queued_jobs(db, ttl=0.2, waiting=in_redis) == []


def test_a_parked_follow_up_is_left_to_the_turn_before_it_until_that_turn_is_decided(
    tmp_path: Path,
) -> None:
    """A thread's follow-up waits, queued, for the turn before it: the sweep does not send it
    (the worker deciding that turn does; before session 26 a waiting turn held a worker slot
    instead). Once that turn is decided and nobody sent the follow-up, the sweep does."""
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    with db.session() as session:
        session.add(ThreadRow(id="thr_1", tenant="t", brand="Acme Coffee", title="patio"))
        first, second, third = (
            store.create_job(
                session, tenant="t", kind="thread_message", request={}, thread_id="thr_1"
            )
            for _ in range(3)
        )
        session.flush()
        for job in (first, second, third):
            store.add_message(session, thread_id="thr_1", role="user", content="c", job_id=job.id)
        assert store.claim_job(session, job_id=first.id)
        ids = first.id, second.id, third.id
    time.sleep(0.3)
    nothing_waiting: set[str] = set()
    assert stranded_queued_jobs(db, ttl=0.2, waiting=lambda: nothing_waiting) == []
    assert turns.ready_turn(db, ids[0]) is None  # the first still runs
    with db.session() as session:
        row = session.get(JobRow, ids[0])
        assert row is not None
        row.state = "succeeded"
    assert turns.ready_turn(db, ids[0]) == ids[1]  # what the deciding worker sends
    assert stranded_queued_jobs(db, ttl=0.2, waiting=lambda: nothing_waiting) == [ids[1]]
    assert turns.ready_turn(db, ids[1]) == ids[1] and turns.earlier_turn_pending(db, ids[2])
