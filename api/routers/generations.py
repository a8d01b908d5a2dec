"""Generations: a creative request becomes a job; ``?wait=`` answers with the result if it is
done in time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from brandloop.api.auth import Principal
from brandloop.api.deps import Creator, PoolDep, Service, ServiceDep
from brandloop.api.jobs import store
from brandloop.api.jobs.service import job_public, submit
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.params import ASCII_NUMBER
from brandloop.api.problems import PROBLEM_RESPONSES, problems
from brandloop.api.routers.threads import post_message
from brandloop.api.schemas import (
    SHAPE_FIELDS,
    GenerationCreate,
    JobPublic,
    MessageCreate,
    domain_request,
)
from brandloop.errors import present

router = APIRouter(prefix="/generations", tags=["generations"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Request images for a brief",
    responses={
        200: {"model": JobPublic, "description": "done within ?wait= seconds"},
        **problems(402, 409, 503),
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
            # what the body leaves out (a count too: its default is not asked for) is the
            # previous turn's
            message = MessageCreate(
                content=body.brief,
                **body.model_dump(include=set(SHAPE_FIELDS), exclude_unset=True),
            )
            accepted = post_message(body.thread_id, message, principal, session, service, pool)
            return accepted.job, False
        request = domain_request(
            **body.model_dump(exclude={"thread_id"}, exclude_none=True), tenant=principal.tenant
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
        return job_public(row), True


def _job_now(service: Service, tenant: str, job_id: str) -> JobPublic:
    with service.db.session() as session:
        row = present(store.get_job(session, tenant=tenant, job_id=job_id), f"job {job_id}")
        return job_public(row)
