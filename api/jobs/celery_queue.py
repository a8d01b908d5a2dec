"""Celery on Redis behind the job-queue interface (``BRANDLOOP_QUEUE=celery``), and its worker.

The ``jobs`` table stays the truth; Redis only carries job ids. The API side is
:class:`CeleryQueue` (``put`` sends a ``brandloop.run_job`` task). ``brandloop worker`` runs
:func:`run_worker`: a Celery worker (thread pool) whose tasks hand the job to one long-lived
event loop, where the ordinary :class:`~api.jobs.worker.WorkerPool` runs it.

Delivery is at least once and a job runs on exactly one worker at a time:

* tasks are acknowledged late (``acks_late``) and rejected back to the queue when the worker
  process is lost (``reject_on_worker_lost``); a message a dead worker had taken comes back
  after the broker's visibility timeout (``BRANDLOOP_CELERY_VISIBILITY_TIMEOUT_S``);
* before running, a worker takes the job's lease (``job_leases``) in the database and renews it
  every third of ``BRANDLOOP_JOB_LEASE_SECONDS``; a second delivery of a leased job is dropped;
* each grant of a lease carries a fencing token that grows on every grant; the job runs under
  it, and every write it makes checks it (``brandloop/registry/fencing.py``), so a worker that
  was paused past its lease and wakes up writes nothing and pays for nothing;
* every worker sweeps for ``running`` jobs whose lease expired (their worker died) and sends
  them again, so a lost worker's job is resumed from its checkpoint within about two lease
  periods even before the visibility timeout. Attempts already paid for are reused;
* the same sweep sends again a ``queued`` job that nobody holds: queued for over a lease
  period, its message no longer waiting in Redis and no live lease on it (a worker took the
  message, prefetched or just received, and died before starting the job). The lease stays
  the guard: a copy that arrives while the job runs is dropped;
* a thread's follow-up whose earlier turn is undecided is given back at once, holding no slot
  (``api/jobs/turns.py``): the worker that decides the turn before it sends it, and the sweep
  leaves it alone until then (it sends it, as any stranded job, if that worker died first).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from celery import Celery
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from brandloop import event_loop
from brandloop.agent.checkpoints import checkpointer_for
from brandloop.api.jobs import store, turns
from brandloop.api.jobs.worker import ProvidersFactory, WorkerPool
from brandloop.api.warmup import Warmup
from brandloop.domain import utcnow
from brandloop.registry import fencing
from brandloop.registry.db import Database
from brandloop.registry.models_scale import JobLeaseRow
from brandloop.registry.models_service import JobRow
from brandloop.settings import Settings

log = logging.getLogger("brandloop.jobs.celery")

TASK_NAME = "brandloop.run_job"
QUEUE_NAME = "brandloop"
REQUEUED = "requeued"
RELEASED = "released"
#: a swept job is sent once per this many lease periods while it waits behind a backlog
REQUEUE_FACTOR = 4

T = TypeVar("T")


def make_celery(settings: Settings) -> Celery:
    """The Celery app both sides share: the broker, late acks and the visibility timeout."""
    app = Celery("brandloop", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE_NAME,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout_s},
    )
    return app


class CeleryQueue:
    """The API side: ``put`` sends the job id to Redis; workers of ``brandloop worker`` take it."""

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_celery(settings)

    async def put(self, job_id: str) -> None:
        await asyncio.to_thread(self.send, job_id)

    def send(self, job_id: str) -> None:
        self.app.send_task(TASK_NAME, args=[job_id], queue=QUEUE_NAME)

    async def get(self) -> str:
        """Never returns: Celery workers, not the API process, take jobs off this queue."""
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def qsize(self) -> int:
        """Messages waiting in Redis (0 if the broker does not answer at once)."""
        import redis

        try:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=0.5)
            try:
                return int(client.llen(QUEUE_NAME))  # type: ignore[arg-type,unused-ignore]
            finally:
                client.close()
        except redis.RedisError:
            return 0

    def waiting_job_ids(self) -> set[str] | None:
        """The ids of the jobs whose message waits in Redis, taken by no worker yet (None if
        the broker does not answer: then nothing is known to be missing)."""
        import redis

        try:
            client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=5)
            try:
                raw = client.lrange(QUEUE_NAME, 0, -1)
            finally:
                client.close()
        except redis.RedisError:
            return None
        return {job for message in raw for job in [_job_of(message)] if job is not None}  # type: ignore[union-attr,unused-ignore]


def _job_of(message: bytes | str) -> str | None:
    """The job id a task message in Redis carries (kombu's envelope around Celery's body)."""
    try:
        envelope = json.loads(message)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0]) if args else None
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def queue_from_settings(settings: Settings) -> CeleryQueue | None:
    """The queue ``BRANDLOOP_QUEUE`` names; None for the embedded in-process default."""
    return CeleryQueue(settings) if settings.queue == "celery" else None


# --------------------------------------------------------------------------- leases


def acquire_lease(db: Database, *, job_id: str, owner: str, ttl: float) -> int | None:
    """Take the job's lease if nobody holds a live one: the fencing token of this grant (it
    grows on every grant), or None if another worker holds the lease."""
    now = utcnow()
    expires = now + timedelta(seconds=ttl)
    with db.session() as session:
        token = session.scalar(
            update(JobLeaseRow)
            .where(
                JobLeaseRow.job_id == job_id,
                or_(JobLeaseRow.expires_at < now, JobLeaseRow.owner.in_((owner, REQUEUED))),
            )
            .values(
                owner=owner,
                expires_at=expires,
                acquired_at=now,
                takeovers=JobLeaseRow.takeovers + 1,
                fence=JobLeaseRow.fence + 1,
            )
            .returning(JobLeaseRow.fence)
        )
        if token is not None:
            return int(token)
    try:
        with db.session() as session:
            session.add(
                JobLeaseRow(
                    job_id=job_id,
                    owner=owner,
                    expires_at=expires,
                    acquired_at=now,
                    takeovers=0,
                    fence=1,
                )
            )
    except IntegrityError:  # someone else holds it
        return None
    return 1


def renew_lease(db: Database, *, job_id: str, owner: str, ttl: float) -> bool:
    """Extend the lease; False if it was lost (expired and taken by another worker)."""
    with db.session() as session:
        result = session.execute(
            update(JobLeaseRow)
            .where(JobLeaseRow.job_id == job_id, JobLeaseRow.owner == owner)
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
        return bool(getattr(result, "rowcount", 0))


def renew_leases(db: Database, *, owners: list[str], ttl: float) -> int:
    """Extend every lease in ``owners`` at once; the number still held."""
    if not owners:
        return 0
    with db.session() as session:
        result = session.execute(
            update(JobLeaseRow)
            .where(JobLeaseRow.owner.in_(owners))
            .values(expires_at=utcnow() + timedelta(seconds=ttl))
        )
        return int(getattr(result, "rowcount", 0) or 0)


def release_lease(db: Database, *, job_id: str, owner: str) -> None:
    """Give the lease up (it expires now); the row stays, so its fencing token keeps growing."""
    with db.session() as session:
        session.execute(
            update(JobLeaseRow)
            .where(JobLeaseRow.job_id == job_id, JobLeaseRow.owner == owner)
            .values(owner=RELEASED, expires_at=utcnow() - timedelta(seconds=1))
        )


def expired_running_jobs(db: Database, *, ttl: float) -> list[str]:
    """Running jobs whose holder stopped renewing: each is marked requeued (for ``ttl``
    seconds, so one sweep sends it once) and returned to be sent again."""
    now = utcnow()
    with db.session() as session:
        candidates = list(
            session.scalars(
                select(JobLeaseRow.job_id)
                .join(JobRow, JobRow.id == JobLeaseRow.job_id)
                .where(JobLeaseRow.expires_at < now, JobRow.state == "running")
            )
        )
    taken = []
    for job_id in candidates:
        with db.session() as session:
            result = session.execute(
                update(JobLeaseRow)
                .where(JobLeaseRow.job_id == job_id, JobLeaseRow.expires_at < now)
                .values(
                    owner=REQUEUED,
                    expires_at=now + timedelta(seconds=REQUEUE_FACTOR * ttl),
                    fence=JobLeaseRow.fence + 1,  # the lapsed holder is fenced out from now
                )
            )
            if getattr(result, "rowcount", 0):
                taken.append(job_id)
    return taken


def stranded_queued_jobs(
    db: Database, *, ttl: float, waiting: Callable[[], set[str] | None]
) -> list[str]:
    """Queued jobs no worker holds: queued for over ``ttl`` seconds, with no live lease, and
    (asked only when there are such jobs) not among the ``waiting()`` messages in the queue:
    the worker that took the message died before starting the job. Each is marked requeued
    (as :func:`expired_running_jobs` does, so one sweep sends it once) and returned."""
    now = utcnow()
    with db.session() as session:
        candidates = list(
            session.scalars(
                select(JobRow.id)
                .outerjoin(JobLeaseRow, JobLeaseRow.job_id == JobRow.id)
                .where(
                    JobRow.state == "queued",
                    JobRow.created_at < now - timedelta(seconds=ttl),
                    or_(JobLeaseRow.job_id.is_(None), JobLeaseRow.expires_at < now),
                )
                .order_by(JobRow.created_at, JobRow.id)
            )
        )
    with db.session() as session:  # a parked turn: the turn before it sends it when decided
        candidates = [j for j in candidates if not turns.waits_for_earlier_turn(session, j)]
    if not candidates:
        return []
    queued = waiting()
    if queued is None:  # the broker does not answer: a message may well be waiting
        return []
    taken = []
    marked = {"owner": REQUEUED, "expires_at": now + timedelta(seconds=REQUEUE_FACTOR * ttl)}
    for job_id in candidates:
        if job_id in queued:
            continue
        with db.session() as session:
            result = session.execute(
                update(JobLeaseRow)
                .where(JobLeaseRow.job_id == job_id, JobLeaseRow.expires_at < now)
                .values(**marked, fence=JobLeaseRow.fence + 1)
            )
            if getattr(result, "rowcount", 0):
                taken.append(job_id)
                continue
        try:
            with db.session() as session:
                if session.get(JobLeaseRow, job_id) is not None:
                    continue  # a worker took the lease meanwhile: it runs the job
                session.add(
                    JobLeaseRow(job_id=job_id, acquired_at=now, takeovers=0, fence=1, **marked)
                )
        except IntegrityError:  # a worker took the lease meanwhile
            continue
        taken.append(job_id)
    return taken


# --------------------------------------------------------------------------- worker


class LeasedRunner:
    """Runs jobs under a lease in one background event loop shared by the Celery threads."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        queue: CeleryQueue,
        providers_factory: ProvidersFactory | None = None,
        use_memory: bool = True,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.db = db
        self.ttl = settings.job_lease_seconds
        self.cancel_poll = min(settings.job_cancel_poll_seconds, self.ttl / 3)
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        # the pool runs no workers of its own; its queue sends the turn a finished one releases
        self.pool = WorkerPool(
            settings,
            db,
            concurrency=0,
            queue=queue,
            providers_factory=providers_factory,
            use_memory=use_memory,
        )
        self.loop = event_loop.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._sweeper: concurrent.futures.Future[None] | None = None
        self._held: dict[str, asyncio.Task[None]] = {}  # lease owner -> the job's task
        self._held_lock = threading.Lock()
        self._stopping = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, daemon=True, name="lease-heartbeat")

    def start(self) -> None:
        self.db.ensure_schema()  # an outdated schema stops the worker before any job
        self._thread.start()
        self.call(self._prepare_checkpoints())
        self._sweeper = asyncio.run_coroutine_threadsafe(self._sweep(), self.loop)
        self._heartbeat.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._sweeper is not None:
            self._sweeper.cancel()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    async def _prepare_checkpoints(self) -> None:
        """Create the checkpointer's tables now rather than inside the first job."""
        async with checkpointer_for(self.db.url, self.settings.checkpoints_path):
            pass

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def run_job(self, job_id: str) -> str:
        """The body of the Celery task (called in a worker thread)."""
        return self.call(self.run_leased(job_id))

    async def run_leased(self, job_id: str) -> str:
        with self.db.session() as session:
            state = session.scalar(select(JobRow.state).where(JobRow.id == job_id))
        if state is None or state in store.FINAL_STATES or state == "awaiting_review":
            return "finished"
        if await asyncio.to_thread(turns.earlier_turn_pending, self.db, job_id):
            # parked, without taking its lease (a copy the turn before it sends finds it free)
            log.info("job %s waits for an earlier turn of its thread; given back", job_id)
            return "parked"
        owner = f"{self.name}:{job_id}"
        with self._held_lock:
            running_here = owner in self._held
        if running_here:
            log.info("job %s is running in this worker; delivery dropped", job_id)
            return "leased"
        token = await asyncio.to_thread(
            acquire_lease, self.db, job_id=job_id, owner=owner, ttl=self.ttl
        )
        if token is None:
            log.info("job %s is leased by another worker; delivery dropped", job_id)
            return "leased"
        # every write the job makes checks this token (brandloop/registry/fencing.py)
        with fencing.holding(fencing.Fence(job_id, token, self.db)):
            task = asyncio.create_task(self.pool._run(job_id), name=f"job-{job_id}")
        with self._held_lock:
            self._held[owner] = task
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=self.cancel_poll)
                if done:
                    break
                if await asyncio.to_thread(self._cancel_requested, job_id):
                    log.warning("job %s stopped: cancel requested", job_id)
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return "ran"
        finally:
            with self._held_lock:
                self._held.pop(owner, None)
            await asyncio.to_thread(release_lease, self.db, job_id=job_id, owner=owner)

    def _beat(self) -> None:
        """Renew this process's leases every third of their time, on a thread of its own so a
        busy event loop cannot let them lapse; a job whose lease was lost anyway is stopped."""
        while not self._stopping.wait(self.ttl / 3):
            with self._held_lock:
                owners = list(self._held)
            if not owners:
                continue
            try:
                kept = renew_leases(self.db, owners=owners, ttl=self.ttl)
                if kept == len(owners):
                    continue
                for owner in owners:  # find which were lost, one by one
                    if not renew_lease(
                        self.db, job_id=owner.rsplit(":", 1)[1], owner=owner, ttl=self.ttl
                    ):
                        with self._held_lock:
                            task = self._held.get(owner)
                        if task is not None:
                            log.warning("lease %s lost; stopping its job", owner)
                            self.loop.call_soon_threadsafe(task.cancel)
            except Exception:
                log.exception("lease heartbeat failed")

    def _cancel_requested(self, job_id: str) -> bool:
        with self.db.session() as session:
            return bool(session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id)))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 2)
            try:
                for job_id in await asyncio.to_thread(expired_running_jobs, self.db, ttl=self.ttl):
                    log.warning("job %s lost its worker; sending it again", job_id)
                    await self.queue.put(job_id)
                stranded = await asyncio.to_thread(
                    stranded_queued_jobs, self.db, ttl=self.ttl, waiting=self.queue.waiting_job_ids
                )
                for job_id in stranded:
                    log.warning("queued job %s has no message waiting; sending it again", job_id)
                    await self.queue.put(job_id)
            except Exception:
                log.exception("lease sweep failed")


def run_worker(
    settings: Settings,
    db: Database,
    *,
    concurrency: int,
    providers_factory: ProvidersFactory | None = None,
    loglevel: str = "INFO",
) -> None:
    """Start a Celery worker on ``BRANDLOOP_REDIS_URL`` that runs ``concurrency`` jobs at once.

    SIGTERM is Celery's warm shutdown: running jobs finish, then the worker exits."""
    queue = CeleryQueue(settings)
    runner = LeasedRunner(settings, db, queue=queue, providers_factory=providers_factory)

    @queue.app.task(name=TASK_NAME, acks_late=True, reject_on_worker_lost=True)  # type: ignore[untyped-decorator,unused-ignore]
    def run_job(job_id: str) -> str:
        return runner.run_job(job_id)

    runner.start()
    if settings.warm_up:  # before the first task: a job would wait for them, and the loop too
        Warmup(freeze=True).run()
    try:
        queue.app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--loglevel={loglevel}",
                f"--queues={QUEUE_NAME}",
                f"--hostname=brandloop-{runner.name}@%h",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    finally:
        runner.stop()
