"""Runs and receipts: the registry's record of every run, its trace and its provenance."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from brandloop.api.deps import ServiceDep, SessionDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem
from brandloop.domain import Receipt
from brandloop.registry import crud
from brandloop.registry.models import RunRow
from brandloop.views import RunTrace, RunView, run_receipts, run_trace, run_view

router = APIRouter(prefix="/runs", tags=["runs"], responses=PROBLEM_RESPONSES)


def linked(view: RunView) -> RunView:
    """The run as the API shows it: each image's path is its artifact URL."""
    images = [i.model_copy(update={"path": f"/v1/artifacts/{i.sha256}"}) for i in view.images]
    return view.model_copy(update={"images": images})


def _run(session: Session, tenant: str, run_id: str) -> RunRow:
    # a primary-key get (cheapest read there is), then the tenant check: another tenant's run
    # is as absent as a missing one
    row = session.get(RunRow, run_id)
    if row is None or row.tenant != tenant:
        raise ApiProblem(404, "not-found", f"no run {run_id}")
    return row


@router.get("", response_model=list[RunView], summary="The tenant's runs, newest first")
async def list_runs(
    principal: Viewer, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunView]:
    rows = crud.list_runs(session, tenant=principal.tenant, limit=limit)
    return [linked(run_view(r)) for r in rows]


@router.get("/{run_id}", response_model=RunView, summary="A run: status, cost, accepted images")
async def get_run(run_id: str, principal: Viewer, service: ServiceDep) -> Response:
    # the hottest read: a session of its own (no generator dependency) and serialized once here
    # instead of validated again against response_model
    with service.sessions() as session:
        body = linked(run_view(_run(session, principal.tenant, run_id))).model_dump_json()
    return Response(body, media_type="application/json")


@router.get(
    "/{run_id}/trace", response_model=RunTrace, summary="Every attempt and decision of a run"
)
async def get_trace(run_id: str, principal: Viewer, session: SessionDep) -> RunTrace:
    trace = run_trace(session, run=_run(session, principal.tenant, run_id))
    return trace.model_copy(update={"run": linked(trace.run)})


@router.get(
    "/{run_id}/receipts",
    response_model=list[Receipt],
    summary="The receipt of each accepted image",
)
async def get_receipts(run_id: str, principal: Viewer, session: SessionDep) -> list[Receipt]:
    return run_receipts(session, run=_run(session, principal.tenant, run_id))
