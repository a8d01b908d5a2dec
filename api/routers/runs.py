"""Runs and receipts: the registry's record of every run, its trace and its provenance."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.api.deps import ServiceDep, SessionDep, Viewer
from brandloop.api.jobs.service import artifact_links
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem
from brandloop.registry import crud
from brandloop.registry.models import ArtifactRow, AttemptRow, RunEventRow, RunRow

router = APIRouter(prefix="/runs", tags=["runs"], responses=PROBLEM_RESPONSES)


class RunPublic(BaseModel):
    run_id: str
    status: str
    brand: str
    brief: str
    reason: str
    template: str
    campaign_id: str | None
    thread_id: str | None
    cost_usd: float
    attempts: int
    accepted: int
    request: dict[str, Any]
    images: list[dict[str, Any]]
    created_at: datetime
    finished_at: datetime | None


class RunTrace(BaseModel):
    run: RunPublic
    attempts: list[dict[str, Any]]
    events: list[dict[str, Any]]


def run_public(row: RunRow) -> RunPublic:
    return RunPublic(
        run_id=row.id,
        status=row.status,
        brand=row.brand_name,
        brief=row.brief,
        reason=row.reason,
        template=row.template_ref,
        campaign_id=row.campaign_id,
        thread_id=row.thread_id,
        cost_usd=row.cost_usd,
        attempts=row.attempt_count,
        accepted=row.accepted_count,
        request=row.request,
        images=artifact_links((row.result or {}).get("images", [])),
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _attempt(row: AttemptRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "iteration": row.iteration,
        "model": row.model,
        "template": row.template_ref,
        "prompt": row.prompt,
        "negative_prompt": row.negative_prompt,
        "seed_requested": row.seed_requested,
        "seed_returned": row.seed_returned,
        "size": f"{row.width}x{row.height}",
        "outcome": row.outcome,
        "artifact_sha256": row.artifact_sha256,
        "idempotency_key": row.idempotency_key,
        "cost_usd": row.cost_usd,
        "latency_ms": round(row.latency_ms, 1),
        "scores": row.scores,
        "moderation": row.moderation,
        "error": row.error,
        "cache_hit": row.cache_hit,
    }


def _event(row: RunEventRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "node": row.node,
        "kind": row.kind,
        "payload": row.payload,
        "at": row.at,
    }


def _run(session: Session, tenant: str, run_id: str) -> RunRow:
    # a primary-key get (cheapest read there is), then the tenant check: another tenant's run
    # is as absent as a missing one
    row = session.get(RunRow, run_id)
    if row is None or row.tenant != tenant:
        raise ApiProblem(404, "not-found", f"no run {run_id}")
    return row


@router.get("", response_model=list[RunPublic], summary="The tenant's runs, newest first")
async def list_runs(
    principal: Viewer, session: SessionDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[RunPublic]:
    return [run_public(r) for r in crud.list_runs(session, tenant=principal.tenant, limit=limit)]


@router.get("/{run_id}", response_model=RunPublic, summary="A run: status, cost, accepted images")
async def get_run(run_id: str, principal: Viewer, service: ServiceDep) -> Response:
    # the hottest read: a session of its own (no generator dependency) and serialized once here
    # instead of validated again against response_model
    with service.sessions() as session:
        body = run_public(_run(session, principal.tenant, run_id)).model_dump_json()
    return Response(body, media_type="application/json")


@router.get(
    "/{run_id}/trace", response_model=RunTrace, summary="Every attempt and decision of a run"
)
async def get_trace(run_id: str, principal: Viewer, session: SessionDep) -> RunTrace:
    row = _run(session, principal.tenant, run_id)
    return RunTrace(
        run=run_public(row),
        attempts=[_attempt(a) for a in crud.list_attempts(session, run_id=row.id)],
        events=[_event(e) for e in crud.list_events(session, run_id=row.id)],
    )


@router.get(
    "/{run_id}/receipts",
    response_model=list[dict[str, Any]],
    summary="The receipt of each accepted image",
)
async def get_receipts(run_id: str, principal: Viewer, session: SessionDep) -> list[dict[str, Any]]:
    row = _run(session, principal.tenant, run_id)
    query = select(ArtifactRow).where(
        ArtifactRow.tenant == principal.tenant,
        ArtifactRow.run_id == row.id,
        ArtifactRow.receipt.is_not(None),
    )
    return [a.receipt for a in session.scalars(query.order_by(ArtifactRow.created_at)) if a.receipt]
