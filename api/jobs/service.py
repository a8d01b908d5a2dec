"""Submitting jobs and showing them: quota and request checks, the public shape, the events."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Hashable
from typing import Any, Literal

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from brandloop.agent import run_leases
from brandloop.agent.nodes.intake import redacted_request
from brandloop.agent.runner import (
    brand_binding,
    brand_run_policy,
    catalog_models,
    check_rendering,
    check_request,
    model_ladder,
    new_run_id,
)
from brandloop.api.auth import Principal
from brandloop.api.jobs import store
from brandloop.api.problems import ApiProblem
from brandloop.api.schemas import JobError, JobPublic, Links
from brandloop.domain import GenerationRequest, RunResult, utcnow
from brandloop.registry import crud, spend
from brandloop.registry.db import Database
from brandloop.registry.models import RunEventRow, RunRow
from brandloop.registry.models_service import JobRow
from brandloop.settings import Settings
from brandloop.tools.moderation.minors import refuse_at_the_door


def artifact_links(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Images as the API shows them: ``path`` is the artifact's URL, not a file on the server
    (none for an image whose bytes were deleted: it is marked ``deleted``)."""
    return [
        image if image.get("deleted") else {**image, "path": f"/v1/artifacts/{image['sha256']}"}
        for image in images
    ]


def public_result(result: dict[str, Any]) -> RunResult:
    return RunResult.model_validate(
        {**result, "images": artifact_links(result.get("images", [])), "receipt_path": None}
    )


def job_cost(bind: Session | Connection, row: JobRow) -> float:
    """What the job's run has cost. A finished job (succeeded, failed, cancelled) costs what it
    keeps (``cost_usd``, written when it ends and by reconciling its calls): no read. One not
    finished (queued, running, waiting for review) holds $0 or what its run had spent when it
    stopped for review, so its run is read as the run's own view reads it (``views.
    cost_so_far``, ``spend.run_cost``: one statement, through indexes) - unless no worker has
    ever claimed it (a campaign of 400 assets answered with 400 reads for $0 each)."""
    if row.state in store.FINAL_STATES:
        return float(row.cost_usd)
    if row.state == "queued" and row.started_at is None:
        return 0.0  # never claimed: its run has not started, so nothing can have been spent
    return spend.run_cost(bind, run_id=row.run_id)


def job_public(row: JobRow, *, cost_usd: float) -> JobPublic:
    """The job as the API shows it; ``cost_usd`` is :func:`job_cost` (0 for a job just
    submitted: its run is new, nothing can have been spent)."""
    base = f"/v1/jobs/{row.id}"
    return JobPublic(
        id=row.id,
        kind=row.kind,
        state=row.state,  # type: ignore[arg-type,unused-ignore]
        run_id=row.run_id,
        campaign_id=row.campaign_id,
        thread_id=row.thread_id,
        cost_usd=cost_usd,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        result=public_result(row.result) if row.result else None,
        error=JobError.model_validate(row.error) if row.error else None,
        links=Links(
            self=base,
            events=f"{base}/events",
            cancel=f"{base}/cancel",
            run=f"/v1/runs/{row.run_id}",
        ),
    )


class TtlCache:
    """A small time-bounded memo for the submission hot path (the request checks are re-done by
    the worker when the job runs, so a stale hit costs at most a job that fails at start). It
    holds only verdicts that the request's own brief and run id do not change: the render is
    checked for every request (:func:`submit`)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable) -> tuple[bool, Any]:
        entry = self._entries.get(key)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, key: Hashable, value: Any) -> None:
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[key] = (time.monotonic() + self.ttl, value)


_checked = TtlCache(ttl=5.0)


def admit(
    session: Session,
    *,
    tenant: str,
    quota_usd: float,
    budget_usd: float,
    run_id: str | None = None,
    job_id: str | None = None,
    campaign_id: str | None = None,
) -> None:
    """Hold the work's whole budget against the tenant's daily quota, in the caller's
    transaction (which stores the job), or answer 402 before anything is queued. The quota
    counts what queued and running jobs hold, not only what finished jobs spent."""
    try:
        spend.hold_admission(
            session,
            tenant=tenant,
            amount_usd=budget_usd,
            quota_usd=quota_usd,
            run_id=run_id,
            job_id=job_id,
            campaign_id=campaign_id,
        )
    except spend.QuotaExceededError as exc:
        raise ApiProblem(402, "quota-exceeded", str(exc)) from exc


def release_hold(session: Session, job: JobRow) -> None:
    """A job ended (or waits for a human): its hold becomes what its calls committed. A
    campaign's hold closes with its last unfinished job (decided under the tenant's lock)."""
    spend.lock_tenant(session, job.tenant)
    spend.close_admission(session, run_id=job.run_id)  # a campaign asset's too, once resumed
    if job.campaign_id is None:
        return
    session.flush()
    unfinished = session.scalar(
        select(func.count()).where(
            JobRow.campaign_id == job.campaign_id,
            JobRow.id != job.id,
            JobRow.state.in_(("queued", "running")),
        )
    )
    if not unfinished:
        spend.close_admission(session, campaign_id=job.campaign_id)


def cancel_job_run(session: Session, job: JobRow, *, reason: str) -> RunRow:
    """End a cancelled job's run ``cancelled`` (``crud.cancel_run``: what its attempts cost is
    kept); its calls still ``held`` - in flight when the process running them died, so nobody
    will settle them - become ``unknown`` and count in its cost at their whole reservation
    until reconciled (``spend.abandon_calls``). A run that never began (the job was cancelled
    while queued, or while a worker was claiming it) gets its record here, ``cancelled`` at $0
    with the job's brand, brief, request, campaign and thread, so the job's ``links.run`` is a
    run like any other. A run that finished already is returned as it is."""
    run = crud.cancel_run(session, run_id=job.run_id, reason=reason)
    if run is not None:
        if run.status == "cancelled":
            spend.abandon_calls(session, run_id=run.id)
        return run
    run = _record_unbegun_run(session, job, status="cancelled", reason=reason)
    session.flush()
    return run


def _record_unbegun_run(
    session: Session, job: JobRow, *, status: Literal["cancelled", "refused"], reason: str
) -> RunRow:
    """The record of a job's run that never began, ended ``status`` at $0 with the job's brand,
    brief, request, campaign and thread."""
    request = job.request
    bound = request.get("brand_id")
    brand = crud.bound_brand(
        session,
        tenant=job.tenant,
        ref=str(request.get("brand", "")),
        brand_id=bound if isinstance(bound, str) else None,
    )
    run = crud.create_run(
        session,
        run_id=job.run_id,
        tenant=job.tenant,
        brand_id=brand.id if brand is not None else None,
        brand_name=brand.name if brand is not None else str(request.get("brand", "")),
        brief=str(request.get("brief", "")),
        request=request,
        campaign_id=job.campaign_id,
        thread_id=job.thread_id,
    )
    run.status, run.reason, run.finished_at = status, reason, utcnow()
    run.template_ref = str(request.get("template") or "")
    return run


def refuse_job_run(session: Session, job: JobRow, *, reason: str) -> RunRow | None:
    """Record the run of a job its runner refused before the run began (bad input found as it
    started: a template version rejected for this run, a render past the cap): ``refused`` at
    $0 with the reason, as a job cancelled while queued records its run, so the job's
    ``links.run`` is a finished run and resuming it is a 409. A run already stored (the runner
    ends its own, ``agent/runner.py``) is left as it is; None when there is none to record."""
    if session.get(RunRow, job.run_id) is not None:
        return None
    run = _record_unbegun_run(session, job, status="refused", reason=reason)
    result = RunResult(
        run_id=run.id,
        status="refused",
        brand=run.brand_name,
        brief=run.brief,
        reason=reason,
        stop_cause="refused",
    )
    run.result = result.model_dump(mode="json")
    session.flush()
    return run


def submit(
    session: Session,
    *,
    settings: Settings,
    db: Database,
    principal: Principal,
    request: GenerationRequest,
    kind: str,
    quota_usd: float,
    campaign_id: str | None = None,
    thread_id: str | None = None,
) -> JobRow:
    """Check the request as the runner would, then store a queued job holding its budget
    against the daily quota (the caller commits). The job keeps the brief redacted as the
    runner redacts it: personal data is never stored, not even in the queue.

    The template is resolved and rendered as the job's run will resolve and render it: with
    the run id the job gets (a label's split picks the version by it) and this request's
    brief, avoid-list and shifts (``agent/runner.py`` :func:`check_rendering`, the check the
    CLI makes before it stores a run). A version refused for that run (rejected in review) or
    a render past the cap is bad input here (422), before the job or its quota hold exists;
    a brief, or that render, crossing the minors line is 422 ``refused``, audited
    (``tools/moderation/minors.py`` :func:`refuse_at_the_door`), with nothing stored."""
    # bound to its brand's id now: the worker, the runner and intake find the kit by it, so a
    # rename before the job runs (another brand taking the name) never moves it to another
    # (the row is held until the rendering check below, which finds it in the session)
    request, _brand_row = brand_binding(session, redacted_request(request))
    run_id = new_run_id()
    key = (
        settings.resolved_database_url,
        request.tenant,
        request.brand,
        request.template,
        request.model,
        tuple(request.providers or ()),
        request.allow_preview,
    )
    if not _checked.get(key)[0]:
        check_request(db, request)
        if request.model is not None or request.providers is not None:
            model_ladder(
                settings,
                catalog_models(db, settings),
                request,
                brand_run_policy(settings, db, request),
            )
        _checked.put(key, True)
    # never cached: the verdict depends on the brief and on the run id (a split's pick); read
    # in this request's session, before it locks the tenant or writes anything
    prompt = check_rendering(db, request, run_id=run_id, session=session)
    # the minors line at the door: the brief and what its run will render, before any row
    refuse_at_the_door(
        session,
        tenant=principal.tenant,
        actor=principal.name,
        subject_type="thread" if thread_id is not None else "generation",
        subject_id=thread_id or "(new generation)",
        texts=(("brief", request.brief), ("prompt", prompt)),
    )
    if request.budget_usd is None:  # pin the budget the job was admitted with
        request = request.model_copy(update={"budget_usd": settings.default_budget_usd})
    job = store.create_job(
        session,
        tenant=principal.tenant,
        kind=kind,
        request=request.model_dump(mode="json"),
        campaign_id=campaign_id,
        thread_id=thread_id,
        requested_by=principal.name,
        run_id=run_id,
    )
    admit(
        session,
        tenant=principal.tenant,
        quota_usd=quota_usd,
        budget_usd=float(request.budget_usd or 0.0),
        run_id=job.run_id,
        job_id=job.id,
    )
    return job


#: Every event name a job's stream sends, in the order a run usually sends them, and when.
#: ``state`` and ``end`` are the stream's own; the others are the run's trace (``TraceKind``,
#: named by :func:`sse_name`). docs/http-api.md ("Events") and the route's OpenAPI description
#: list the same names (tests/api/http/test_sse_events.py).
SSE_EVENTS: dict[str, str] = {
    "state": "the job's state, on connect and on every change",
    "planned": "a decision of the plan node (what to try, with which model and budget)",
    "decision": "every other node's decision (intake, preflight, recall, generate, observe, review)",
    "attempt_started": "an attempt is about to call its provider (once per attempt, also across a resume)",
    "provider_call": "one call to an image provider: model, cost or error",
    "attempt_finished": "an attempt's outcome, billing, cost and error (once per attempt, also "
    "for one a cancel ended in flight: `unknown` at its reservation)",
    "moderation": "a moderation verdict: on each generated image, on a provider's refusal, "
    "or a refused brief",
    "unreadable": "an image the scorer could not decode",
    "scored": "an attempt's signals, composite score and what failed",
    "repair_outcome": "whether last round's repair fixed the signal it aimed at",
    "accepted": "accepted images so far against the count wanted",
    "drift": "a template and model whose recent scores drifted (at finalize)",
    "done": "the run finished: status, accepted count, cost",
    "remembered": "prompts stored in the brand's memory; sent after `done`",
    "end": "the last event, once the job is finished and its trace drained: its `state` and "
    "`error` (a failed job's `{type, status, detail}`, as GET shows it; else null)",
}


def sse_name(node: str, kind: str) -> str:
    """The SSE event name of a (node, kind) entry of a run's trace (a ``TraceKind``)."""
    if kind == "decision":
        return "planned" if node == "plan" else "decision"
    return kind


#: what a stream's last event says when the key or studio session it was opened with stopped
#: being valid while it was open (revoked, expired, signed out)
REVOKED_END = {
    "type": "unauthorized",
    "status": 401,
    "detail": "the key or studio session this stream was opened with was revoked or has "
    "expired: the stream ends; open it again with a valid one",
}


async def job_events(
    db: Database,
    *,
    job_id: str,
    run_id: str,
    after: int,
    poll_seconds: float,
    still_valid: Callable[[Session], bool] | None = None,
) -> AsyncIterator[str]:
    """Server-sent events for a job: each trace event of its run as it is written, the job's
    state changes, and a last ``end`` event once the job is finished and its trace drained.
    Event ids are the trace's sequence numbers, so ``Last-Event-ID`` resumes where it left.

    ``still_valid`` is asked at every poll whether the credential the stream was opened with
    still holds: once it does not (a key revoked while the stream is open), the stream sends
    ``end`` with :data:`REVOKED_END` and stops, sending nothing more of the run (outside
    tester: a revoked viewer key kept receiving the trace until the job ended)."""
    last_state = None
    seq = after
    yield "retry: 1000\n\n"
    while True:
        valid, state, error, events = await asyncio.to_thread(
            _poll_events, db, job_id, run_id, seq, still_valid
        )
        if not valid:
            ended = {"job": job_id, "state": state, "error": REVOKED_END}
            yield f"event: end\ndata: {json.dumps(ended)}\n\n"
            return
        if state != last_state:
            last_state = state
            yield f"event: state\ndata: {json.dumps({'job': job_id, 'state': state})}\n\n"
        for number, node, kind, payload, at in events:
            seq = number
            data = json.dumps(
                {"seq": number, "node": node, "kind": kind, "at": at, "payload": payload}
            )
            yield f"id: {number}\nevent: {sse_name(node, kind)}\ndata: {data}\n\n"
        if state is None or (state in store.FINAL_STATES and not events):
            ended = {"job": job_id, "state": state, "error": error}
            yield f"event: end\ndata: {json.dumps(ended)}\n\n"
            return
        if not events:
            await asyncio.sleep(poll_seconds)


def _poll_events(
    db: Database,
    job_id: str,
    run_id: str,
    after: int,
    still_valid: Callable[[Session], bool] | None = None,
) -> tuple[bool, str | None, dict[str, Any] | None, list[tuple[int, str, str, Any, str]]]:
    """Whether the stream's credential still holds; the job's state, its error (a failed
    job's) and up to 200 trace events after ``after`` (in a thread: a stream's poll never
    stalls the serving loop)."""
    with db.session() as session:
        if still_valid is not None and not still_valid(session):
            return False, None, None, []
        state, error = session.execute(
            select(JobRow.state, JobRow.error).where(JobRow.id == job_id)
        ).one_or_none() or (None, None)
        rows = session.scalars(
            select(RunEventRow)
            .where(RunEventRow.run_id == run_id, RunEventRow.seq > after)
            .order_by(RunEventRow.seq)
            .limit(200)
        )
        events = [(r.seq, r.node, r.kind, r.payload, r.at.isoformat()) for r in rows]
        return True, state, error, events


def run_not_found(reader: Session | Connection, tenant: str, run_id: str) -> ApiProblem:
    """The 404 of a run the tenant does not have. A job hands out its run's id (``links.run``)
    as it is queued, before a worker starts the run: the detail then says so and names the
    job to follow, so a client polling the link it was given knows to wait, not give up."""
    job = store.unstarted_job(reader, tenant=tenant, run_id=run_id)
    if job is not None:
        return ApiProblem(
            404,
            "not-found",
            f"run {run_id} has not started yet: its job {job[0]} is {job[1]} "
            f"(GET /v1/jobs/{job[0]} follows it)",
        )
    return ApiProblem(404, "not-found", f"no run {run_id}")


def resume_job(
    session: Session, *, tenant: str, run_id: str, quota_usd: float, default_budget_usd: float
) -> JobRow:
    """Queue an interrupted run to continue from its last checkpoint (attempts already paid
    for are reused). Like any job it holds, against the daily quota, what its budget still
    allows it to spend (its budget less what the run has already committed), or it is a 402
    and nothing is queued. A run still queued or running, or finished (a cancelled one too:
    cancelling is final), is a 409.

    The tenant's lock is taken before the run and its job are read, not only by the admission:
    of concurrent resumes of one run (on any replica, either database) the first queues its job
    and the others read that job and are a 409, rather than each passing the checks, then
    queuing a job and a hold of its own."""
    spend.lock_tenant(session, tenant)
    run = session.get(RunRow, run_id)
    if run is None or run.tenant != tenant:
        raise run_not_found(session, tenant, run_id)
    if run.status == "cancelled":
        raise ApiProblem(
            409, "conflict", f"run {run_id} was cancelled; submit the request again for a new run"
        )
    if run.result is not None or run.status in ("succeeded", "partial", "refused", "failed"):
        raise ApiProblem(409, "conflict", f"run {run_id} has finished ({run.status})")
    if run.status == "awaiting_review":
        raise ApiProblem(409, "conflict", f"run {run_id} is waiting for review, not interrupted")
    job = store.job_for_run(session, tenant=tenant, run_id=run_id)
    if job is not None and job.state in ("queued", "running", "awaiting_review"):
        raise ApiProblem(409, "conflict", f"run {run_id} is already {job.state} as {job.id}")
    if job is not None and job.state == "cancelled":
        raise ApiProblem(
            409, "conflict", f"run {run_id}'s job {job.id} was cancelled; submit it again"
        )
    if (busy := run_leases.holder(session, run_id=run_id)) is not None:  # a CLI's, say
        raise ApiProblem(409, "conflict", str(busy))
    budget = run.request.get("budget_usd")
    budget_usd = float(default_budget_usd if budget is None else budget)
    paid = spend.committed(session, tenant=tenant, run_id=run_id)
    if job is None:  # a run the CLI started: the worker pool takes it over
        job = store.create_job(session, tenant=tenant, kind="resume", request=run.request)
        job.run_id = run.id
    job.state, job.error, job.finished_at, job.cancel_requested = "queued", None, None, False
    admit(
        session,
        tenant=tenant,
        quota_usd=quota_usd,
        budget_usd=max(0.0, round(budget_usd - paid, 6)),
        run_id=run.id,
        job_id=job.id,
    )
    return job
