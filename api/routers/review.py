"""Review: what waits for an approver, and verdicts on runs (template versions are reviewed
under ``/v1/templates``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from sqlalchemy import select

from brandloop.api import reviews
from brandloop.api.deps import Approver, PoolDep, SessionDep, Viewer
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import (
    ImageRating,
    ImageRatingIn,
    ReviewAssign,
    ReviewDecision,
    ReviewQueue,
    ReviewVerdict,
    RunAwaitingReview,
    TemplateAwaitingReview,
)
from brandloop.evals.agreement import AgreementReport, judge_agreement
from brandloop.registry import crud
from brandloop.registry.models import RunRow, TemplateRow, TemplateVersionRow

router = APIRouter(prefix="/review", tags=["review"], responses=PROBLEM_RESPONSES)


@router.get("", summary="Template versions in review and runs awaiting review")
def queue(principal: Approver, session: SessionDep) -> ReviewQueue:
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
            TemplateVersionRow.status == "in_review",  # a draft waits for its author
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
    description="A verdict finishes a run `awaiting_review`; on a delivered run (`succeeded` "
    "or `partial`) it is recorded in the audit log. Any other run (one already rejected, "
    "failed, refused or still running) is a 409. Four eyes: the principal who asked for the "
    "run is refused with 409. A run another verdict is being applied to is a 409; once that "
    "verdict's claim has lapsed (its process stopped: `BRANDLOOP_REVIEW_LEASE_SECONDS`), this "
    "verdict finishes the run with the one recorded first: 200 if it made the same decision, "
    "else a 409 naming it. An approval the C2PA signer fails on is a 503 `signing-failed` "
    "naming the run: it waits for review again, nothing it paid for is lost, and the verdict "
    "can be given again once the signer is back.",
    response_model=ReviewVerdict,
    responses={
        **problems(409),
        503: {
            **problems(503)[503],
            "description": "signing-failed: the C2PA signer failed while the approval "
            "delivered the run; the run waits for review again and the verdict can be retried",
        },
    },
)
def review_run(
    run_id: str, body: ReviewDecision, principal: Approver, session: SessionDep, pool: PoolDep
) -> ReviewVerdict:
    verdict = reviews.decide_run(
        session, pool, principal=principal, run_id=run_id, decision=body.decision, note=body.note
    )
    return ReviewVerdict(**verdict)


@router.post(
    "/runs/{run_id}/assign",
    status_code=204,
    summary="Assign a run waiting for review to a reviewer",
    description="The assignee is a principal of the tenant holding an approver or admin key "
    "that is not revoked, or signed in to the studio with such a role: a malformed name, or "
    "one that is no such reviewer, is a 422. A run "
    "not waiting for review is a 409, and so is the principal who asked for the run (four "
    "eyes: they may not approve it).",
    responses=problems(409),
)
def assign_run(
    run_id: str, body: ReviewAssign, principal: Approver, session: SessionDep
) -> Response:
    reviews.assign(
        session, tenant=principal.tenant, run_id=run_id, assignee=body.assignee,
        by=principal.name,
    )  # fmt: skip
    return Response(status_code=204)


@router.put(
    "/images/{sha256}/rating",
    summary="This reviewer's rubric for an image: on-brand 1-5, usable yes/no, a note",
    response_model=ImageRating,
    responses=problems(409),
)
def rate_image(
    sha256: Annotated[str, Path(pattern=r"^[0-9a-f]{64}$")],
    body: ImageRatingIn,
    principal: Approver,
    session: SessionDep,
) -> ImageRating:
    row = reviews.rate(
        session, tenant=principal.tenant, sha256=sha256, actor=principal.name,
        on_brand=body.on_brand, usable=body.usable, note=body.note,
    )  # fmt: skip
    return ImageRating(
        sha256=row.sha256, run_id=row.run_id, principal=row.principal, on_brand=row.on_brand,
        usable=row.usable, note=row.note,
    )  # fmt: skip


@router.get(
    "/agreement",
    response_model=AgreementReport,
    summary="How often the automatic acceptance rule agrees with reviewers",
    description="Per signal and per brand, with the disagreements listed "
    "(the same figure as `brandloop review agreement`).",
    responses=problems(404),
)
def agreement(
    principal: Viewer,
    session: SessionDep,
    brand: Annotated[str | None, Query(max_length=80)] = None,
) -> AgreementReport:
    if brand is not None and not crud.brand_ids(session, tenant=principal.tenant, ref=brand):
        raise ApiProblem(
            404, "not-found", f"unknown brand {brand!r}"
        )  # as wherever a brand is named
    return judge_agreement(session, tenant=principal.tenant, brand=brand)
