"""Generations: a creative request becomes a job; ``?wait=`` answers with the result if it is
done in time."""

from __future__ import annotations

from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from brandloop.api.auth import Principal
from brandloop.api.deps import Creator, PoolDep, Service, ServiceDep, SessionDep
from brandloop.api.jobs import store
from brandloop.api.jobs.service import job_public, submit
from brandloop.api.jobs.worker import WorkerPool
from brandloop.api.params import QueryFloat
from brandloop.api.problems import PROBLEM_RESPONSES
from brandloop.api.routers.threads import post_message
from brandloop.api.schemas import (
    SHAPE_FIELDS,
    GenerationCreate,
    JobPublic,
    MessageCreate,
    domain_request,
)
from brandloop.errors import present
from brandloop.registry.models_service import JobRow

router = APIRouter(prefix="/generations", tags=["generations"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=202,
    response_model=JobPublic,
    summary="Request images for a brief",
    responses={200: {"model": JobPublic, "description": "done within ?wait= seconds"}},
)
async def create_generation(
    body: GenerationCreate,
    principal: Creator,
    session: SessionDep,
    service: ServiceDep,
    pool: PoolDep,
    response: Response,
    wait: Annotated[
        QueryFloat, Query(ge=0, le=300, description="seconds to wait for the result")
    ] = 0,
) -> JobPublic:
    # an async route because ``?wait=`` may wait minutes, which must not hold a threadpool
    # thread; everything that touches the registry runs in the threadpool
    row = await run_in_threadpool(_submit, body, principal, session, service, pool)
    if wait > 0:
        await pool.wait(row.id, min(wait, service.api.max_wait_seconds))
        await run_in_threadpool(session.refresh, row)
    response.headers["Location"] = f"/v1/jobs/{row.id}"
    if row.state in store.FINAL_STATES or row.state == "awaiting_review":
        response.status_code = 200
    return job_public(row)


def _submit(
    body: GenerationCreate,
    principal: Principal,
    session: Session,
    service: Service,
    pool: WorkerPool,
) -> JobRow:
    """The job of a generation (a thread's message when it names a thread), stored and queued
    (in the threadpool)."""
    if body.thread_id is not None:
        message = MessageCreate(
            content=body.brief,
            **body.model_dump(include=set(SHAPE_FIELDS)),
        )
        accepted = post_message(body.thread_id, message, principal, session, service, pool)
        return present(
            store.get_job(session, tenant=principal.tenant, job_id=accepted.job.id),
            f"job {accepted.job.id}",
        )
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
    from_thread.run(pool.enqueue, row.id)
    return row
