"""Review: what waits for an approver, and verdicts on runs (template versions are reviewed
under ``/v1/templates``)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from brandloop.agent.runner import review_run as finish_review
from brandloop.api.deps import Approver, PoolDep, SessionDep
from brandloop.api.jobs import store
from brandloop.api.jobs.worker import finished_state
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem
from brandloop.api.schemas import (
    ReviewDecision,
    ReviewQueue,
    ReviewVerdict,
    RunAwaitingReview,
    TemplateAwaitingReview,
)
from brandloop.domain import utcnow
from brandloop.registry import crud
from brandloop.registry.models import RunRow, TemplateRow, TemplateVersionRow

router = APIRouter(prefix="/review", tags=["review"], responses=PROBLEM_RESPONSES)


@router.get("", summary="Template versions in review and runs awaiting review")
async def queue(principal: Approver, session: SessionDep) -> ReviewQueue:
    versions = session.execute(
        select(
            TemplateRow.name,
            TemplateVersionRow.version,
            TemplateVersionRow.author,
            TemplateVersionRow.message,
        )
        .join(TemplateRow, TemplateRow.id == TemplateVersionRow.template_id)
        .where(
            TemplateRow.tenant == principal.tenant,
            TemplateVersionRow.status.in_(("draft", "in_review")),
        )
        .order_by(TemplateRow.name, TemplateVersionRow.version)
    )
    runs = session.scalars(
        select(RunRow)
        .where(RunRow.tenant == principal.tenant, RunRow.status == "awaiting_review")
        .order_by(RunRow.created_at)
    )
    return ReviewQueue(
        templates=[
            TemplateAwaitingReview(template=f"{n}@{v}", author=a, message=m)
            for n, v, a, m in versions
        ],
        runs=[RunAwaitingReview(run_id=r.id, brand=r.brand_name, brief=r.brief) for r in runs],
    )


@router.post(
    "/runs/{run_id}",
    summary="Approve or reject a run: one waiting for review is finished by the verdict",
    response_model=ReviewVerdict,
)
async def review_run(
    run_id: str, body: ReviewDecision, principal: Approver, session: SessionDep, pool: PoolDep
) -> ReviewVerdict:
    run = crud.get_run(session, tenant=principal.tenant, run_id=run_id)
    if run is None:
        raise ApiProblem(404, "not-found", f"no run {run_id}")
    job = store.job_for_run(session, tenant=principal.tenant, run_id=run.id)
    if body.decision == "approve" and job is not None and job.requested_by == principal.name:
        raise ApiProblem(
            409,
            "conflict",
            f"{principal.name} asked for run {run.id} and may not approve it (with any of their "
            "keys); ask another approver",
        )
    verdict = {
        "run_id": run.id,
        "decision": body.decision,
        "note": body.note,
        "by": principal.name,
        "key_id": principal.key_id,
    }
    if run.status != "awaiting_review":  # a verdict on a delivered run: recorded, nothing resumes
        action = "run.approved" if body.decision == "approve" else "run.rejected"
        crud.audit(
            session, tenant=principal.tenant, actor=principal.name, action=action,
            subject_type="run", subject_id=run.id,
            detail={"note": body.note, "key_id": principal.key_id},
        )  # fmt: skip
        return ReviewVerdict(**verdict, status=run.status)
    session.commit()  # nothing held while the run finishes in its own sessions
    providers = pool.providers_factory(pool.settings) if pool.providers_factory else None
    result = await finish_review(
        run.id,
        settings=pool.settings,
        db=pool.db,
        decision=body.decision,
        note=body.note,
        actor=principal.name,
        tenant=principal.tenant,
        providers=providers,
        use_memory=pool.use_memory,
    )
    job = store.job_for_run(session, tenant=principal.tenant, run_id=run.id)
    if job is not None:
        job.result, job.state = result.model_dump(mode="json"), finished_state(result)
        job.cost_usd, job.finished_at = result.cost_usd, utcnow()
    return ReviewVerdict(**verdict, status=result.status)
