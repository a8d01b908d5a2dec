"""The job runner: an in-process pool of async workers over the durable ``jobs`` table.

The workers take job ids on the serving loop; each job's agent runs on the agents' own event
loop, in a thread of its own (``AgentLoop``), so its synchronous stretches (registry, Chroma,
the moderation and embedding models, rendering, scoring) never hold the requests being served.

On start it recovers: jobs that were ``running`` when the process died are resumed from their
checkpoint (``brandloop.agent.runner.resume_run``; attempts already paid for are reused, not paid again),
``queued`` ones are queued again. Stopping leaves running jobs ``running`` so the next start
resumes them. Cancelling a job cancels its task; the run keeps what it had paid for. A review
verdict a stopped process left claimed is finished by the pool's sweep once its claim lapses
(``agent/review_claims.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from contextlib import nullcontext
from pathlib import Path
from typing import Any, TypeVar

from anyio import from_thread
from opentelemetry import trace
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop import event_loop
from brandloop.agent import review_claims, run_leases
from brandloop.agent.retention import prune_finished_runs
from brandloop.agent.runner import final_refusal, finish_review, resume_run, run_generation
from brandloop.agent.writer import PromptWriter
from brandloop.api.jobs import store, turns
from brandloop.api.jobs.queue import InProcessQueue, JobQueue
from brandloop.api.jobs.service import cancel_job_run, refuse_job_run, release_hold
from brandloop.api.problems import status_for
from brandloop.domain import GenerationRequest, RunResult, utcnow
from brandloop.errors import (
    BadInputError,
    BrandloopError,
    ConflictError,
    LeaseLostError,
    present,
)
from brandloop.logs import bound
from brandloop.providers import ImageProvider
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.deleted_images import lock_job, marked_result
from brandloop.registry.models import BrandRow, RunRow
from brandloop.registry.models_service import CampaignRow, JobRow, ThreadRow
from brandloop.registry.models_studio import ReviewAssignmentRow
from brandloop.settings import Settings
from brandloop.storage import StorageFailedError, storage_problem
from brandloop.tools.credentials import SigningError
from brandloop.views import cost_so_far

ProvidersFactory = Callable[[Settings], dict[str, ImageProvider]]

log = logging.getLogger("brandloop.jobs")


T = TypeVar("T")
#: how soon, and at most how often, a job's end the registry refused to record is tried again
RECORD_RETRY_FIRST_S = 0.5
RECORD_RETRY_MAX_S = 30.0


async def settled_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` in a thread; cancelled meanwhile, it lets the thread finish before giving
    up, so a registry read or write is never abandoned with its connection checked out (the
    pool stopping at shutdown would otherwise dispose the engine under it)."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await work
        raise


class AgentLoop:
    """The in-process agents' own event loop, run in a thread of its own.

    An agent run is mostly synchronous work between its awaits: registry reads and writes,
    Chroma, the moderation and embedding models, rendering and scoring. On the serving loop
    each such stretch held every request in flight (a request crossing to the threadpool and
    back waited behind it). Here it holds only the other agents: the serving loop waits at most
    the interpreter's switch interval for the lock, and native code that lets the lock go (the
    ONNX models, SQLite, PostgreSQL's socket, Chroma) runs on another core meanwhile.
    """

    def __init__(self, name: str = "brandloop-agents") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._loop is not None

    def start(self) -> None:
        if self._loop is not None:
            return
        loop = event_loop.new_event_loop()
        thread = threading.Thread(target=self._serve, args=(loop,), name=self.name, daemon=True)
        self._loop, self._thread = loop, thread
        thread.start()

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:  # whatever is left (nothing, after a clean stop) is cancelled and awaited
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the loop and wait for its thread (blocking: call it from a thread)."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout_s)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """``coro``'s result, run on the agents' loop and awaited from the caller's loop (with
        the caller's context variables). Cancelled meanwhile, it cancels the agent's task and
        waits for it to settle before giving up, so the agent's registry work is finished, not
        abandoned with its connection checked out."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the agent loop is not running")
        caller = asyncio.get_running_loop()
        outcome: asyncio.Future[T] = caller.create_future()
        started: list[asyncio.Task[T]] = []

        def settle(task: asyncio.Task[T]) -> None:  # on the caller's loop
            if outcome.done():
                return
            if task.cancelled():
                outcome.cancel()
            elif (error := task.exception()) is not None:
                outcome.set_exception(error)
            else:
                outcome.set_result(task.result())

        def report(task: asyncio.Task[T]) -> None:  # on the agents' loop
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed
                caller.call_soon_threadsafe(settle, task)

        def begin() -> None:  # on the agents' loop
            task = loop.create_task(coro)
            started.append(task)
            task.add_done_callback(report)

        loop.call_soon_threadsafe(begin, context=contextvars.copy_context())
        try:
            return await asyncio.shield(outcome)
        except asyncio.CancelledError:
            # ``begin`` ran before this (callbacks keep their order), so the task exists
            loop.call_soon_threadsafe(lambda: [task.cancel() for task in started])
            with contextlib.suppress(BaseException):
                await outcome
            raise

    def call(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``fn()``'s result, run on the agents' loop, from a thread that is on no loop (a
        ``def`` route in the threadpool); blocks that thread until it is done."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("the agent loop is not running")
        return asyncio.run_coroutine_threadsafe(fn(), loop).result()


def finished_state(result: RunResult) -> str:
    """The job state a run's result settles it in (a run waiting for a human waits too)."""
    if result.status in ("succeeded", "partial"):
        return "succeeded"
    return "awaiting_review" if result.status == "awaiting_review" else "failed"


def unrunnable(exc: ValidationError | BadInputError) -> str:
    """Why a job's stored request cannot run: each field and its rule (never the value)."""
    if isinstance(exc, BadInputError):
        return f"the job's request cannot run: {exc}"
    why = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in exc.errors()
    )
    return f"the job's request cannot run: {why}"


def _under_its_brand_now(
    session: Session, job: JobRow, request: GenerationRequest
) -> GenerationRequest:
    """A job about to start, under its brand by id as it is called now: one queued before a
    rename ran under the old name - no brand, or a new brand that took the name. A job with
    no brand to go by (its bound brand removed, an unbound job of no campaign or thread whose
    brand is not known) is left as it was stored: the runner refuses a removed brand."""
    brand = _its_brand(session, job, request)
    if brand is None or (brand.id, brand.name) == (request.brand_id, request.brand):
        return request
    job.request = {**job.request, "brand": brand.name, "brand_id": brand.id}
    return request.model_copy(update={"brand": brand.name, "brand_id": brand.id})


def _its_brand(session: Session, job: JobRow, request: GenerationRequest) -> BrandRow | None:
    """The brand a job's run is for: the id its request was bound to when it was accepted;
    for a job accepted before requests were bound, its campaign's (thread's) brand by id."""
    if request.brand_id is not None:
        return crud.request_brand(session, request)
    owner: CampaignRow | ThreadRow | None = None
    if job.campaign_id is not None:
        owner = session.get(CampaignRow, job.campaign_id)
    elif job.thread_id is not None:
        owner = session.get(ThreadRow, job.thread_id)
    return store.thread_brand(session, thread=owner) if owner is not None else None


def failed_job_error(result: RunResult) -> dict[str, Any] | None:
    """The ``error`` of a job its run's result fails (None unless it does): why, typed -
    providers down, the budget spent, else the run's status (refused, failed: rejected in
    review too) with the result's reason."""
    if finished_state(result) != "failed":
        return None
    if result.stop_cause == "providers_unavailable":
        return {"type": "providers-unavailable", "status": 503, "detail": result.reason}
    if result.stop_cause == "budget":
        return {"type": "budget-exhausted", "status": 402, "detail": result.reason}
    return {"type": result.status, "status": 422, "detail": result.reason}


def settle_reviewed(session: Session, *, tenant: str, run_id: str, result: RunResult) -> None:
    """A run a review verdict finished: its job (if the API made it) ends as the run did, and
    the run leaves the review assignments."""
    found = store.job_for_run(session, tenant=tenant, run_id=run_id)
    job = lock_job(session, found.id) if found is not None else None
    if job is not None:
        stored = marked_result(session, tenant=tenant, result=result.model_dump(mode="json"))
        job.result, job.state = stored, finished_state(result)
        job.error = failed_job_error(result)  # a rejection fails the job, saying by whom and why
        job.cost_usd, job.finished_at = result.cost_usd, utcnow()
    assignment = session.get(ReviewAssignmentRow, run_id)
    if assignment is not None:
        session.delete(assignment)


class WorkerPool:
    """Runs queued jobs, at most ``concurrency`` at once: taken off the queue on the serving
    loop, each job's agent run on the agents' loop (``AgentLoop``)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        concurrency: int,
        queue: JobQueue | None = None,
        providers_factory: ProvidersFactory | None = None,
        use_memory: bool = True,
        tracer: Any | None = None,
        writer: PromptWriter | None = None,
    ) -> None:
        self.settings = settings
        self.writer = writer  # revises a thread's follow-up again when its turn was refused
        self.db = db
        self.tracer = tracer
        self.concurrency = concurrency
        self.queue: JobQueue = queue or InProcessQueue()
        self.providers_factory = providers_factory
        self.use_memory = use_memory
        self._workers: list[asyncio.Task[None]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self.agents = AgentLoop()
        self._serving: asyncio.AbstractEventLoop | None = None
        self._review_sweep: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        self.started = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover unfinished jobs, then start the agents' loop and the workers."""
        self._serving = asyncio.get_running_loop()
        unfinished = await asyncio.to_thread(self._unfinished)
        for job_id, state in unfinished:
            if state == "running":
                log.info("resuming job %s after restart", job_id)
            await self.queue.put(job_id)
        self.agents.start()
        for index in range(self.concurrency):
            self._workers.append(
                asyncio.create_task(self._work(), name=f"brandloop-worker-{index}")
            )
        self._review_sweep = asyncio.create_task(self._sweep_reviews(), name="review-sweep")
        self.started = True

    def _unfinished(self) -> list[tuple[str, str]]:
        with self.db.session() as session:
            return [(job.id, job.state) for job in store.unfinished_jobs(session)]

    async def stop(self) -> None:
        tasks = [*self._workers, *([self._review_sweep] if self._review_sweep else [])]
        tasks += self._settling
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._settling.clear()
        self._workers.clear()
        self._review_sweep = None
        await asyncio.to_thread(self.agents.stop)
        self.started = False

    def alive(self) -> bool:
        if self.concurrency == 0:
            return self.started
        return self.started and any(not t.done() for t in self._workers)

    # ------------------------------------------------------------------ API side

    async def enqueue(self, job_id: str) -> None:
        await self.queue.put(job_id)

    async def wait(self, job_id: str, timeout: float) -> None:
        """Wait until the job is finished (or waits for review) or ``timeout`` seconds pass,
        whichever is first. A worker ending the job's task wakes it at once; a thread's turn
        given back to wait for an earlier one (``api/jobs/turns.py``) is waited for again."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        event = self._finished.setdefault(job_id, asyncio.Event())
        try:
            while loop.time() < deadline:
                state = await asyncio.to_thread(self._job_state, job_id)
                if state is None or state in turns.DECIDED:
                    return
                if event.is_set():  # the task ended with the job undecided: a parked turn
                    event = self._finished.setdefault(job_id, asyncio.Event())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(0.5, deadline - loop.time()))
        finally:
            # an event lives only while someone waits (another waiter of the same job keeps
            # its own reference and polls): a long-running server does not keep one per job
            if self._finished.get(job_id) is event:
                del self._finished[job_id]

    def _job_state(self, job_id: str) -> str | None:
        with self.db.session() as session:
            return session.scalar(select(JobRow.state).where(JobRow.id == job_id))

    def cancel_running(self, job_id: str) -> bool:
        """Cancel the job's run if it runs here (callable from any thread)."""
        task = self._running.get(job_id)
        if task is None:
            return False
        if self._serving is not None:
            self._serving.call_soon_threadsafe(task.cancel)
        else:
            task.cancel()
        return True

    def run_agent(self, fn: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """``fn()`` (an agent's run, such as finishing a review) from a ``def`` route's thread:
        on the agents' loop, or on the serving loop when the pool has not started."""
        if self.agents.running:
            return self.agents.call(fn)
        return from_thread.run(fn)

    # ------------------------------------------------------------------ review verdicts

    async def _sweep_reviews(self) -> None:
        """Every half review lease (and at start), finish the runs whose verdict a stopped
        process left claimed: each with the verdict it recorded (``agent/review_claims.py``).
        Every API process sweeps; a lapsed claim is taken over by one of them."""
        while True:
            try:
                for tenant, run_id in await settled_in_thread(review_claims.lapsed, self.db):
                    await self._finish_left_review(tenant, run_id)
            except Exception:
                log.exception("review sweep failed")
            await asyncio.sleep(self.settings.review_lease_seconds / 2)

    async def _finish_left_review(self, tenant: str, run_id: str) -> None:
        providers = self.providers_factory(self.settings) if self.providers_factory else None
        with bound(run_id=run_id):
            try:
                outcome = await self.agents.run(
                    finish_review(
                        run_id,
                        settings=self.settings,
                        db=self.db,
                        verdict=None,
                        by="review-sweep",
                        tenant=tenant,
                        providers=providers,
                        use_memory=self.use_memory,
                    )
                )
            except (ConflictError, LeaseLostError) as exc:  # someone else has it now
                log.info("review sweep left run %s: %s", run_id, exc)
                return
            except Exception:
                log.exception("finishing the review verdict of run %s failed", run_id)
                return
            await self._recorded(self._settle_reviewed, tenant, run_id, outcome.result)
            log.warning(
                "finished a review verdict a stopped process left",
                extra={"decision": outcome.verdict.decision, "status": outcome.result.status},
            )

    def _settle_reviewed(self, tenant: str, run_id: str, result: RunResult) -> None:
        with self.db.session() as session:
            settle_reviewed(session, tenant=tenant, run_id=run_id, result=result)

    def settle_reviewed_later(self, tenant: str, run_id: str, result: RunResult) -> None:
        """From a route's thread: a verdict has finished the run, but the registry refused to
        settle its job (read-only, full): it is tried again on the serving loop, at growing
        intervals, until the registry takes it (:meth:`_recorded`), so the job does not stay
        ``awaiting_review`` for good. Stopping the pool meanwhile gives it up (logged)."""
        serving = self._serving
        if serving is None:
            raise RuntimeError("the worker pool has not started")

        def start() -> None:
            task = serving.create_task(
                self._recorded(self._settle_reviewed, tenant, run_id, result),
                name=f"settle-review-{run_id}",
            )
            self._settling.add(task)
            task.add_done_callback(_settled_later)

        def _settled_later(task: asyncio.Task[None]) -> None:
            self._settling.discard(task)
            if not task.cancelled() and task.exception() is not None:
                log.error("settling run %s's job failed", run_id, exc_info=task.exception())

        serving.call_soon_threadsafe(start)

    # ------------------------------------------------------------------ worker side

    async def _work(self) -> None:
        while True:
            job_id = await self.queue.get()
            if job_id in self._running:
                # a second copy of a job a worker here drives (a parked turn is queued by its
                # POST and again by the turn before it): it must not drive the run twice
                log.info("job %s is running in this pool; the copy is dropped", job_id)
                continue
            task = asyncio.create_task(self.agents.run(self._run(job_id)), name=f"job-{job_id}")
            self._running[job_id] = task
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:  # the pool is stopping: the job stays "running"
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise
            finally:
                self._running.pop(job_id, None)
                waiting = self._finished.pop(job_id, None)
                if waiting is not None:
                    waiting.set()
            if not task.cancelled() and task.exception() is not None:
                log.error("job %s crashed: %s", job_id, type(task.exception()).__name__)

    def _prepare(self, job_id: str) -> tuple[GenerationRequest, str, bool] | None:
        with self.db.session() as session:
            job = session.get(JobRow, job_id)
            if job is None or job.state in store.FINAL_STATES:
                return None
            if job.cancel_requested:  # cancelled while no worker ran it (a restart between)
                self._end_cancelled(session, job)
                return None
            if job.state == "queued":
                if not store.claim_job(session, job_id=job_id):
                    return None
                session.refresh(job)
            elif run_leases.holder(session, run_id=job.run_id) is not None:
                # running, and its run is driven by a live process (another replica's pool, a
                # CLI): a copy of the job, not one to resume - resuming would fail it as busy
                log.info("job %s's run is driven by a live process; the copy is dropped", job_id)
                return None
            request = GenerationRequest.model_validate(job.request)
            resuming = session.get(RunRow, job.run_id) is not None
            if job.campaign_id is not None:
                request = request.model_copy(
                    update={"budget_usd": self._campaign_share(session, job)}
                )
            if not resuming:
                request = _under_its_brand_now(session, job, request)
            return request, job.run_id, resuming

    def _campaign_share(self, session: Session, job: JobRow) -> float:
        """A campaign's budget is shared: each asset, as it starts, gets what is neither spent
        by finished assets nor held by running ones, divided by the assets not yet started."""
        campaign: CampaignRow = present(
            session.get(CampaignRow, job.campaign_id), f"{job.id}'s campaign"
        )
        siblings = session.scalars(
            select(JobRow).where(JobRow.campaign_id == campaign.id, JobRow.id != job.id)
        )
        committed, waiting = 0.0, 1
        for other in siblings:
            if other.state == "queued":
                waiting += 1
            elif other.state == "running":
                committed += float(other.request.get("budget_usd") or 0.0)
            else:
                committed += other.cost_usd
        remaining = max(0.0, store.campaign_limit(session, campaign) - committed)
        share = max(1e-6, round(remaining / waiting, 6))
        job.request = {**job.request, "budget_usd": share}
        return share

    async def _drive(
        self,
        request: GenerationRequest,
        run_id: str,
        resuming: bool,
        providers: Any,
        on_event: Any,
    ) -> RunResult:
        if resuming:
            return await resume_run(
                run_id,
                settings=self.settings,
                db=self.db,
                tenant=request.tenant,
                providers=providers,
                use_memory=self.use_memory,
                on_event=on_event,
            )
        return await run_generation(
            request,
            settings=self.settings,
            db=self.db,
            run_id=run_id,
            providers=providers,
            use_memory=self.use_memory,
            on_event=on_event,
        )

    async def _run(self, job_id: str) -> None:
        # on the agents' loop (or a Celery worker's); the job's own bookkeeping in a thread,
        # so it holds neither that loop's other agents nor, at shutdown, a connection
        try:
            if await settled_in_thread(turns.earlier_turn_pending, self.db, job_id):
                # parked: it holds no worker while it waits; the turn before it sends it
                log.info("job %s waits for an earlier turn of its thread", job_id)
                return
            try:
                await turns.settle_follow_up(
                    self.db,
                    job_id,
                    self.writer,
                    default_budget_usd=self.settings.default_budget_usd,
                )
                prepared = await settled_in_thread(self._prepare, job_id)
            except (ValidationError, BadInputError) as exc:
                # a stored request that cannot run (the door should let none in): the job
                # fails saying why, and never stays queued holding its quota
                log.error("job %s cannot run its request: %s", job_id, unrunnable(exc))
                error = {"type": "bad-input", "status": 422, "detail": unrunnable(exc)}
                await self._recorded(self._fail, job_id, error)  # no run: it cannot be one
                prepared = None
            if prepared is not None:
                request, run_id, resuming = prepared
                with bound(run_id=run_id, job_id=job_id):  # every log line says which job
                    await self._run_prepared(job_id, request, run_id, resuming)
        except asyncio.CancelledError:
            # also when the cancel lands while the job is being claimed, before its run began
            await settled_in_thread(self._cancelled, job_id)
            await self._retain_cancelled(job_id)
            await self.send_next_turn(job_id)
            raise
        await self.send_next_turn(job_id)

    async def _retain_cancelled(self, job_id: str) -> None:
        """A run a cancel ended keeps only its newest checkpoints, as a run that ends on its
        own does (``BRANDLOOP_CHECKPOINT_KEEP``); a run left unfinished (the pool stopping) is
        not touched. Should that fail, ``brandloop gc`` prunes it later."""
        try:
            run_id = await settled_in_thread(self._run_id_of, job_id)
            if run_id is not None:
                await prune_finished_runs(self.settings, self.db, [run_id])
        except Exception as exc:
            log.warning("job %s's checkpoints are left for gc: %s", job_id, type(exc).__name__)

    def _run_id_of(self, job_id: str) -> str | None:
        with self.db.session() as session:
            job = session.get(JobRow, job_id)
            return job.run_id if job is not None else None

    async def send_next_turn(self, job_id: str) -> None:
        """Once a thread's turn is decided, send the turn after it, parked until now
        (``api/jobs/turns.py``); nothing for a turn still running (the pool stopping, a lease
        lost) or a job of no thread. A copy of one already sent does no harm: claims are
        atomic, and a turn not ready yet is parked again."""
        try:
            ready = await settled_in_thread(turns.ready_turn, self.db, job_id)
            if ready is not None and ready != job_id:
                await self._put(ready)
        except Exception:  # the sweep or the next start sends it (a stranded queued job)
            log.exception("sending the turn after job %s failed", job_id)

    async def _put(self, job_id: str) -> None:
        """Queue ``job_id`` from any loop: the in-process queue belongs to the serving loop,
        and a job's run (which decides its turn) is on the agents' loop."""
        serving = self._serving
        if serving is None or serving is asyncio.get_running_loop():
            await self.queue.put(job_id)
            return
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.queue.put(job_id), serving))

    async def _run_prepared(
        self, job_id: str, request: GenerationRequest, run_id: str, resuming: bool
    ) -> None:
        providers = self.providers_factory(self.settings) if self.providers_factory else None
        log.info("job started", extra={"resuming": resuming})
        span = None
        on_event = None
        if self.tracer is not None:  # one span per job; each trace entry becomes a span event
            span = self.tracer.start_span(f"job {job_id}")
            span.set_attribute("brandloop.run_id", run_id)
            span.set_attribute("brandloop.resuming", resuming)

            def on_event(node: str, kind: str, payload: dict[str, Any]) -> None:
                span.add_event(f"{node}.{kind}", {"node": node, "kind": kind})

        try:
            with trace.use_span(span, end_on_exit=False) if span is not None else nullcontext():
                result = await self._drive(request, run_id, resuming, providers, on_event)
        except LeaseLostError as exc:  # another worker holds the job now: write nothing
            log.warning("job %s stopped: %s", job_id, exc)
        except SigningError as exc:  # the run keeps what it paid for; a resume finishes it
            detail = (
                f"{exc}; run {run_id} is kept: POST /v1/runs/{run_id}/resume finishes it once "
                "the signer is back"
            )
            await self._recorded(
                self._fail, job_id, {"type": exc.problem_type, "status": 503, "detail": detail}
            )
        except BrandloopError as exc:
            status, kind = status_for(exc)
            detail = str(exc) if status < 500 else "the run failed"
            await self._recorded(
                self._fail,
                job_id,
                {"type": kind, "status": status, "detail": detail},
                final_refusal(exc),
            )
        except Exception as exc:
            roots = {
                "<artifacts dir>": self.settings.artifacts_dir,
                "<data dir>": self.settings.data_dir,
            }
            error = self._unexpected(exc, job_id, run_id, roots=roots)
            await self._recorded(self._fail, job_id, error)
        else:
            await self._recorded(self._succeed, job_id, result)
            log.info("job finished", extra={"status": result.status})
        finally:
            if span is not None:
                span.end()

    async def _recorded(self, end: Callable[..., None], *args: Any) -> None:
        """Record how the job ended (``end(*args)``, in a thread). Should the registry refuse
        the write (read-only, full: :func:`storage_problem`), it is tried again, at growing
        intervals up to ``RECORD_RETRY_MAX_S``, until the registry takes it: a job never stays
        ``running`` for good while its service runs on (nothing re-runs such a job before a
        restart). Stopping the pool meanwhile leaves it ``running``, resumed on the next start."""
        delay = RECORD_RETRY_FIRST_S
        while True:
            try:
                await settled_in_thread(end, *args)
                return
            except Exception as exc:
                problem = storage_problem(exc, writer="the service")
                if problem is None:
                    raise
                log.error(
                    "the job's end is not recorded: storage failed: %s; trying again in %.1f s",
                    problem,
                    delay,
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX_S)

    @staticmethod
    def _unexpected(
        exc: Exception, job_id: str, run_id: str, *, roots: dict[str, Path]
    ) -> dict[str, Any]:
        """The error of a job its run stopped with an exception none of ours: its storage
        failing (the run is kept, as the CLI keeps it: a 503 ``storage-failed`` naming what
        failed in plain words and the resume that finishes it), else a bare ``internal``."""
        problem = storage_problem(exc, writer="the service", roots=roots)
        if problem is None:
            log.error("job %s failed", job_id, exc_info=exc)
            return {"type": "internal", "status": 500, "detail": "the run failed"}
        stopped = StorageFailedError(
            f"storage failed: {problem}; run {run_id} is kept: POST /v1/runs/{run_id}/resume "
            "finishes it once that is fixed"
        )
        log.error("job %s stopped: %s", job_id, stopped)  # the words, not the error's text
        status, kind = status_for(stopped)
        return {"type": kind, "status": status, "detail": str(stopped)}

    def _finish(
        self, session: Session, job: JobRow, state: str, *, error: dict[str, Any] | None
    ) -> None:
        job.state, job.error, job.finished_at = state, error, utcnow()
        run = session.get(RunRow, job.run_id)
        # a run left unfinished (the job failed mid-run, to be resumed) holds $0 in its row:
        # the job keeps what its run has cost so far, as the run's own view shows it
        job.cost_usd = cost_so_far(session, run) if run is not None else 0.0
        if state == "failed" and job.result is None and run is not None and run.result is not None:
            job.result = run.result  # a run ended on bad input: the job carries its status too
        release_hold(session, job)

    def _cancelled(self, job_id: str) -> None:
        """The job's task was cancelled: if someone cancelled the job (not the pool stopping,
        which leaves it ``running`` to resume), it and its run end ``cancelled``, each costing
        what the run's attempts were billed (or hold, when a call's outcome is unknown)."""
        with self.db.session() as session:
            job = session.get(JobRow, job_id)
            if job is None or not job.cancel_requested or job.state in store.FINAL_STATES:
                return
            self._end_cancelled(session, job)

    def _end_cancelled(self, session: Session, job: JobRow) -> None:
        run = cancel_job_run(session, job, reason="cancelled while running")
        if run.result is not None:
            # the run had finished when the cancel landed: its images are made, paid for and
            # recorded, so the job ends as the run did, not "cancelled" beside them
            self._settle(session, job, RunResult.model_validate(run.result))
            return
        self._finish(session, job, "cancelled", error=None)

    def _fail(self, job_id: str, error: dict[str, Any], refused: bool = False) -> None:
        """The job failed with ``error``; ``refused``: on bad input or a refusal, which ends
        its run too (the runner ends a run it stored; one refused before it began is recorded
        here, ``refuse_job_run``), so the job carries the run's result."""
        with self.db.session() as session:
            job = session.get(JobRow, job_id)
            if job is not None:
                if refused:
                    refuse_job_run(session, job, reason=str(error["detail"]))
                self._finish(session, job, "failed", error=error)

    def _succeed(self, job_id: str, result: RunResult) -> None:
        with self.db.session() as session:
            job = lock_job(session, job_id)
            if job is not None:
                self._settle(session, job, result)

    def _settle(self, session: Session, job: JobRow, result: RunResult) -> None:
        """The job ends as its run's result says (succeeded, failed with why, or waiting); an
        image deleted since the run finished is marked so in the job's copy, as in the run's."""
        lock_job(session, job.id)
        job.result = marked_result(
            session, tenant=job.tenant, result=result.model_dump(mode="json")
        )
        state = finished_state(result)
        self._finish(session, job, state, error=failed_job_error(result))
