"""Generations: a creative request becomes a job; ``?wait=`` answers with the result if it is
done in time."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from brandloop.api.deps import Creator, PoolDep, ServiceDep, SessionDep
from brandloop.api.jobs import store
from brandloop.api.jobs.service import job_public, submit
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
    if body.thread_id is not None:
        message = MessageCreate(
            content=body.brief,
            **body.model_dump(include=set(SHAPE_FIELDS)),
        )
        accepted = await post_message(body.thread_id, message, principal, session, service, pool)
        row = present(
            store.get_job(session, tenant=principal.tenant, job_id=accepted.job.id),
            f"job {accepted.job.id}",
        )
    else:
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
        await pool.enqueue(row.id)
    if wait > 0:
        await pool.wait(row.id, min(wait, service.api.max_wait_seconds))
        session.refresh(row)
    response.headers["Location"] = f"/v1/jobs/{row.id}"
    if row.state in store.FINAL_STATES or row.state == "awaiting_review":
        response.status_code = 200
    return job_public(row)
