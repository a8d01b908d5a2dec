"""Jobs: status and result, live progress as server-sent events, cancellation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from brandloop.api.auth import key_still_valid
from brandloop.api.deps import Creator, PoolDep, Service, ServiceDep, SessionDep, Viewer
from brandloop.api.jobs import store
from brandloop.api.jobs.service import (
    SSE_EVENTS,
    cancel_job_run,
    job_cost,
    job_events,
    job_public,
    release_hold,
)
from brandloop.api.params import ASCII_INT, LAST_EVENT_ID_PATTERN
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import JobPublic, JobState, NoBody
from brandloop.registry.models_service import JobRow

router = APIRouter(prefix="/jobs", tags=["jobs"], responses=PROBLEM_RESPONSES)

#: One server-sent event of a job's stream, its fields as text (``data`` is JSON text)
SSE_EVENT = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "the event's name (the description's list)"},
        "data": {"type": "string", "description": "the event's payload, JSON text"},
        "id": {"type": "string", "description": "the trace event's sequence number"},
        "retry": {"type": "integer", "description": "reconnection time in ms"},
    },
}


@router.get(
    "",
    response_model=list[JobPublic],
    summary="List the tenant's jobs, newest first",
    description="Newest first, as runs, campaigns and threads are listed; `offset` pages on.",
)
def list_jobs(
    principal: Viewer,
    session: SessionDep,
    state: JobState | None = None,
    limit: Annotated[int, Query(ge=1, le=500), ASCII_INT] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000), ASCII_INT] = 0,
) -> list[JobPublic]:
    rows = store.list_jobs(
        session, tenant=principal.tenant, state=state, limit=limit, offset=offset, newest_first=True
    )
    return [job_public(r, cost_usd=job_cost(session, r)) for r in rows]


@router.get(
    "/{job_id}", response_model=JobPublic, summary="A job's status and, when done, its result"
)
def get_job(job_id: str, principal: Viewer, session: SessionDep) -> JobPublic:
    row = store.get_job(session, tenant=principal.tenant, job_id=job_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no job {job_id}")
    return job_public(row, cost_usd=job_cost(session, row))


@router.get(
    "/{job_id}/events",
    summary="Progress as server-sent events",
    description="Event names: "
    + "; ".join(f"`{name}`: {when}" for name, when in SSE_EVENTS.items())
    + ". Each trace event's id is its sequence number; send `Last-Event-ID` to resume "
    "(anything but a sequence number is a 400).",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {"schema": {"anyOf": [{"type": "string"}, SSE_EVENT]}}
            },
            "description": "an event stream (server-sent events): text to a client that reads "
            "the whole stream, as a generated client does; one event, with its `event`, `data`, "
            "`id`, to a reader of each event (OpenAPI 3.2 and schemathesis read an event "
            "stream's `schema` so)",
        },
        **problems(400),
    },
)
def job_events_stream(
    request: Request,
    job_id: str,
    principal: Viewer,
    session: SessionDep,
    service: ServiceDep,
    last_event_id: Annotated[
        str | None,
        Header(
            description="the last event id seen: a trace sequence number (at most 18 digits)",
            # stated here, checked by ``event_sequence`` (a 400 problem, before the stream)
            json_schema_extra={"pattern": LAST_EVENT_ID_PATTERN},
        ),
    ] = None,
) -> StreamingResponse:
    if len(request.headers.getlist("last-event-id")) > 1:  # which one? neither over the other
        raise ApiProblem(400, "bad-input", "send one Last-Event-ID header, not several")
    return events_response(session, service, tenant=principal.tenant, job_id=job_id,
                           last_event_id=last_event_id,
                           still_valid=key_still_valid(principal.key_id))  # fmt: skip


_SEQUENCE = re.compile(LAST_EVENT_ID_PATTERN)


def event_sequence(last_event_id: str | None) -> int:
    """The trace sequence number a ``Last-Event-ID`` names (none: 0). Anything else (an empty
    one too: a browser sends none rather than an empty one) is a 400 problem; at most 18
    digits, so always inside the registry's 64-bit sequence numbers."""
    if last_event_id is None:
        return 0
    if not _SEQUENCE.fullmatch(last_event_id):
        raise ApiProblem(
            400,
            "bad-input",
            "Last-Event-ID must be an event id this stream sent: a whole number of at most "
            "18 digits",
        )
    return int(last_event_id)


def events_response(
    session: Session,
    service: Service,
    *,
    tenant: str,
    job_id: str,
    last_event_id: str | None,
    still_valid: Callable[[Session], bool],
) -> StreamingResponse:
    """The tenant's job's progress as server-sent events (the API's and the studio's), for as
    long as ``still_valid`` says the caller's key (or studio session) holds."""
    after = event_sequence(last_event_id)
    row = store.get_job(session, tenant=tenant, job_id=job_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no job {job_id}")
    # end the request's transaction now: the stream may last minutes, and on PostgreSQL an
    # idle open transaction holds back DDL such as CREATE INDEX CONCURRENTLY and vacuum
    job_ref, run_ref = row.id, row.run_id
    session.commit()
    stream = job_events(
        service.db,
        job_id=job_ref,
        run_id=run_ref,
        after=after,
        poll_seconds=service.api.sse_poll_seconds,
        still_valid=still_valid,
    )
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    summary="Cancel a queued or running job",
    description="A queued job is cancelled at once, and its run is recorded `cancelled` at $0 "
    "with the job's brand and brief. A running one is stopped: the job and its "
    "run end `cancelled`, nothing delivered, each costing what its calls were billed (a call "
    "in flight counts at its whole reservation until it is reconciled). A job waiting for "
    "review (an approver's verdict finishes it) or finished is a 409; a run that finished "
    "before the cancel reached it keeps what it made, and the job ends as the run did.",
    responses=problems(409),
)
def cancel_job(
    job_id: str, principal: Creator, session: SessionDep, pool: PoolDep, _: NoBody = None
) -> JobPublic:
    row = store.get_job(session, tenant=principal.tenant, job_id=job_id)
    if row is None:
        raise ApiProblem(404, "not-found", f"no job {job_id}")
    # compare-and-set on the state: a worker claiming the job meanwhile makes it a running one
    cancelled_queued = row.state == "queued" and store.cancel_queued(session, job_id=row.id)
    if cancelled_queued:
        session.refresh(row)
        cancel_job_run(session, row, reason="cancelled while queued")
        release_hold(session, row)
    elif not store.request_cancel(session, job_id=row.id):
        session.refresh(row)
        raise _not_cancellable(row)
    session.commit()
    session.refresh(row)
    if cancelled_queued:  # a thread's turn decided: the turn after it, parked, may run now
        from_thread.run(pool.send_next_turn, row.id)
    if row.state == "running":
        pool.cancel_running(row.id)
    return job_public(row, cost_usd=job_cost(session, row))


def _not_cancellable(row: JobRow) -> ApiProblem:
    if row.state == "awaiting_review":  # its run has stopped; only a verdict finishes it
        return ApiProblem(
            409,
            "conflict",
            f"job {row.id} is waiting for review, not running: an approver finishes it with "
            f"POST /v1/review/runs/{row.run_id} (reject, and nothing is delivered)",
        )
    return ApiProblem(409, "conflict", f"job {row.id} is already {row.state}")
