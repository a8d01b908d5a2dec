"""Generations: a creative request becomes a job; ``?wait=`` answers with the result if it is
done in time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from brandloop.api.auth import Principal
from brandloop.api.deps import Creator, PoolDep, Service, ServiceDep
from brandloop.api.jobs import store
from brandloop.api.jobs.service import job_cost, job_public, submit
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.params import ASCII_NUMBER
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.routers.threads import post_message
from brandloop.api.schemas import (
    CHOICE_FIELDS,
    SHAPE_FIELDS,
    GenerationCreate,
    JobPublic,
    MessageCreate,
    domain_request,
    redacted_field,
)
from brandloop.errors import present
from brandloop.registry import crud

router = APIRouter(prefix="/generations", tags=["generations"], responses=PROBLEM_RESPONSES)

JOB_LOCATION = {
    "Location": {
        "description": "the job, `/v1/jobs/{job_id}`",
        "required": True,
        "schema": {"type": "string"},
    }
}


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Request images for a brief",
    responses={
        200: {
            "model": JobPublic,
            "description": "done within ?wait= seconds",
            "headers": JOB_LOCATION,
        },
        202: {"description": "queued (or still running after ?wait=)", "headers": JOB_LOCATION},
        **problems(402, 409, 503),
        409: {
            **problems(409)[409],
            "description": "Conflict with the current state: an Idempotency-Key in flight, a "
            "thread that kept moving on, or a `thread_id` whose thread is about another brand "
            "than the body's `brand` (`conflict`, nothing stored)",
        },
    },
)
async def create_generation(
    body: GenerationCreate,
    principal: Creator,
    service: ServiceDep,
    pool: PoolDep,
    response: Response,
    wait: Annotated[
        float, Query(ge=0, le=300, description="seconds to wait for the result"), ASCII_NUMBER
    ] = 0,
) -> JobPublic:
    # an async route because ``?wait=`` may wait minutes, which must not hold a threadpool
    # thread. The registry work is one trip to the threadpool (its session opened, committed
    # and closed there), and the job is queued here, back on the loop: no other crossing.
    job, queued = await run_in_threadpool(_submit, body, principal, service, pool)
    if queued:
        await pool.enqueue(job.id)
    if wait > 0:
        await pool.wait(job.id, min(wait, service.api.max_wait_seconds))
        job = await run_in_threadpool(_job_now, service, principal.tenant, job.id)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    if job.state in store.FINAL_STATES or job.state == "awaiting_review":
        response.status_code = 200
    return job


def _submit(
    body: GenerationCreate,
    principal: Principal,
    service: Service,
    pool: WorkerPool,
) -> tuple[JobPublic, bool]:
    """The job of a generation, stored and committed (in the threadpool), and whether the
    caller still has to queue it (a thread's message queues its own)."""
    with service.db.session() as session:
        if body.thread_id is not None:
            _check_thread_brand(session, principal.tenant, body.thread_id, body.brand)
            # what the body leaves out (a count too: its default is not asked for) is the
            # previous turn's; its template, model and providers hold for this turn
            message = MessageCreate(
                content=body.brief,
                **body.model_dump(include=set(SHAPE_FIELDS | CHOICE_FIELDS), exclude_unset=True),
            )
            accepted = post_message(
                body.thread_id, message, principal, session, service, pool, field="brief"
            )
            return accepted.job, False
        request = domain_request(
            **body.model_dump(exclude={"thread_id"}, exclude_none=True)
            | {"brief": redacted_field(body.brief, "brief")},  # as it is stored and run
            tenant=principal.tenant,
        )
        row = submit(
            session,
            settings=service.settings,
            db=service.db,
            principal=principal,
            request=request,
            kind="generation",
            quota_usd=service.api.daily_quota_usd,
        )
        session.commit()
        return job_public(row, cost_usd=0.0), True  # its run is new: nothing spent yet


def _check_thread_brand(session: Session, tenant: str, thread_id: str, brand: str) -> None:
    """A follow-up runs under its thread's brand: a body whose ``brand`` names another one (or
    no stored brand) is a 409 ``conflict``, before anything is stored. The thread's brand is
    the one it was started for, by id, whatever it is called now: any spelling of its current
    name, or its id, is fine; its old name is not, and neither is a new brand that took it. A
    thread that is not there, or whose brand is not known, is left to :func:`post_message`."""
    thread = store.get_thread(session, tenant=tenant, thread_id=thread_id)
    if thread is None:
        return
    own = store.thread_brand(session, thread=thread)
    if own is None:
        return
    named = crud.get_brand(session, tenant=tenant, ref=brand)
    if named is not None and named.id == own.id:
        return
    raise ApiProblem(
        409,
        "conflict",
        f"thread {thread_id} is about brand {own.name!r}, not {brand!r}; nothing was "
        "stored: send the thread's brand, or start a thread for the other brand",
    )


def _job_now(service: Service, tenant: str, job_id: str) -> JobPublic:
    with service.db.session() as session:
        row = present(store.get_job(session, tenant=tenant, job_id=job_id), f"job {job_id}")
        return job_public(row, cost_usd=job_cost(session, row))
