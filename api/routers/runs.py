"""Runs and receipts: the registry's record of every run, its trace and its provenance."""

from __future__ import annotations

from typing import Annotated

from anyio import from_thread
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.orm import Session

from brandloop.api.deps import (
    Creator,
    PoolDep,
    Service,
    ServiceDep,
    SessionDep,
    Viewer,
    caller,
    requires,
)
from brandloop.api.jobs.service import job_cost, job_public, resume_job, run_not_found
from brandloop.api.params import ASCII_INT, QueryDateTime
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import JobPublic, NoBody
from brandloop.domain import Receipt, RunStatus
from brandloop.registry import crud
from brandloop.registry.models import RunRow
from brandloop.views import RunTrace, RunView, run_receipts, run_trace, run_view

router = APIRouter(prefix="/runs", tags=["runs"], responses=PROBLEM_RESPONSES)


def linked(view: RunView) -> RunView:
    """The run as the API shows it: each image's path is its artifact URL (none for an image
    whose bytes were deleted: it is marked ``deleted``)."""
    images = [
        i if i.deleted else i.model_copy(update={"path": f"/v1/artifacts/{i.sha256}"})
        for i in view.images
    ]
    return view.model_copy(update={"images": images})


def _run(session: Session, tenant: str, run_id: str) -> RunRow:
    # a primary-key get (cheapest read there is), then the tenant check: another tenant's run
    # is as absent as a missing one
    row = session.get(RunRow, run_id)
    if row is None or row.tenant != tenant:
        raise run_not_found(session, tenant, run_id)
    return row


@router.get(
    "",
    response_model=list[RunView],
    summary="The tenant's runs, newest first",
    responses=problems(404),
)
def list_runs(
    principal: Viewer,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500), ASCII_INT] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000), ASCII_INT] = 0,
    brand: Annotated[
        str | None, Query(max_length=80, description="brand id or name (any case and separators)")
    ] = None,
    status: RunStatus | None = None,
    template: Annotated[
        str | None, Query(max_length=160, description="template name or name@version")
    ] = None,
    model: Annotated[str | None, Query(max_length=120, description="a model it tried")] = None,
    since: Annotated[QueryDateTime | None, Query(description="created at or after")] = None,
    until: Annotated[QueryDateTime | None, Query(description="created before")] = None,
) -> list[RunView]:
    if brand is not None and not crud.brand_ids(session, tenant=principal.tenant, ref=brand):
        raise ApiProblem(
            404, "not-found", f"unknown brand {brand!r}"
        )  # as wherever a brand is named
    where = crud.RunFilter(
        brand=brand, status=status, template=template, model=model, since=since, until=until
    )
    rows = crud.list_runs(session, tenant=principal.tenant, limit=limit, offset=offset, where=where)
    return [linked(run_view(session, r)) for r in rows]


@router.get("/{run_id}", response_model=RunView, summary="A run: status, cost, accepted images")
@requires("viewer")
async def get_run(run_id: str, request: Request) -> Response:
    # the hottest read, kept lean: no dependency to solve (the caller, already looked up by the
    # middleware, is checked by ``requires``), the read off the loop in the reader's threads,
    # which answer concurrent requests in batches (``api/reader.py``: a thread hop per request
    # through asyncio's executor cost more than the read; anyio's threadpool, which FastAPI
    # uses for a def route, more still), a connection of its own, and the body serialized
    # once there instead of validated again against response_model
    service: Service = request.app.state.service
    body = await service.reader.run(_read_run, service, caller(request).tenant, run_id)
    return Response(body, media_type="application/json")


def _read_run(service: Service, tenant: str, run_id: str) -> str:
    """The tenant's run as the API's JSON body (in a thread: it reads the registry), read
    without a session (``crud.read_run``)."""
    with service.db.engine.connect() as connection:
        row = crud.read_run(connection, tenant=tenant, run_id=run_id)
        if row is None:
            raise run_not_found(connection, tenant, run_id)
        # a finished run reads nothing more; one not finished, one indexed statement for what
        # it has cost so far (views.cost_so_far)
        return linked(run_view(connection, row)).model_dump_json()


@router.get(
    "/{run_id}/trace", response_model=RunTrace, summary="Every attempt and decision of a run"
)
def get_trace(run_id: str, principal: Viewer, session: SessionDep) -> RunTrace:
    trace = tenant_trace(session, tenant=principal.tenant, run_id=run_id)
    return trace.model_copy(update={"run": linked(trace.run)})


def tenant_trace(session: Session, *, tenant: str, run_id: str) -> RunTrace:
    """The tenant's run with every attempt, event and receipt (the API's trace, the studio's
    run page); another tenant's run is a 404."""
    return run_trace(session, run=_run(session, tenant, run_id))


@router.get(
    "/{run_id}/receipts",
    response_model=list[Receipt],
    summary="The receipt of each accepted image",
)
def get_receipts(run_id: str, principal: Viewer, session: SessionDep) -> list[Receipt]:
    return run_receipts(session, run=_run(session, principal.tenant, run_id))


@router.post(
    "/{run_id}/resume",
    status_code=202,
    response_model=JobPublic,
    summary="Continue an interrupted run from its last checkpoint, without paying twice",
    description="The resumed job holds, against the daily quota, its budget less what the run "
    "has already spent (402 `quota-exceeded` when that does not fit). A run that is queued, "
    "running, waiting for review or finished (cancelled too: cancelling is final) is a 409.",
    responses=problems(402, 409),
)
def resume(
    run_id: str,
    principal: Creator,
    session: SessionDep,
    pool: PoolDep,
    service: ServiceDep,
    _: NoBody = None,
) -> JobPublic:
    job = resume_job(
        session,
        tenant=principal.tenant,
        run_id=run_id,
        quota_usd=service.api.daily_quota_usd,
        default_budget_usd=service.settings.default_budget_usd,
    )
    session.commit()
    from_thread.run(pool.enqueue, job.id)
    return job_public(job, cost_usd=job_cost(session, job))
