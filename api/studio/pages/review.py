"""Review queue: runs awaiting review with their images large; approve or reject with a note
(keyboard: a / r); four eyes; assignment; a rubric per image; pairwise mode; reviewed images
added to the tenant's golden eval suite. Judge agreement beside it. All through
``brandloop.api.reviews``, the module the /v1 review routes call."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.api import reviews
from brandloop.api.deps import PoolDep, SessionDep, SettingsDep
from brandloop.api.studio.pages.runs import (
    WAITING_FOR_REVIEW,
    accepted_so_far,
    palette_of,
    run_context,
)
from brandloop.api.studio.web import (
    Approver,
    Csrf,
    FormPage,
    StudioError,
    StudioRoute,
    Viewer,
    form_on,
    render,
    see_other,
)
from brandloop.domain import is_blank
from brandloop.evals.agreement import judge_agreement
from brandloop.registry import crud
from brandloop.registry.deleted_images import gone_images
from brandloop.registry.held_images import deleted_since_made
from brandloop.registry.models_agent import ReviewDecisionRow
from brandloop.templates.governance import same_person

router = APIRouter(route_class=StudioRoute, include_in_schema=False)
Sha = Annotated[str, Form(pattern=r"^[0-9a-f]{64}$")]
Note = Annotated[str, Form(max_length=2000)]


@router.get("/review")
def queue(
    request: Request,
    user: Approver,
    session: SessionDep,
    mine: Annotated[bool, Query()] = False,
) -> Response:
    items = reviews.waiting(
        session, tenant=user.tenant, assignee=user.api_principal.name if mine else None
    )
    images = {i.run.id: accepted_so_far(session, i.run.id) for i in items}
    shown = [sha for shas in images.values() for sha in shas[:4]]
    return render(
        request,
        "review.html",
        {"title": "Review", "items": items, "mine": mine, "images": images,
         "waiting_words": WAITING_FOR_REVIEW,
         "gone": gone_images(session, tenant=user.tenant, shas=shown)},
    )  # fmt: skip


@router.get("/review/pairwise")
def pairwise(
    request: Request,
    user: Approver,
    session: SessionDep,
    axis: Annotated[Literal["template", "model"], Query()] = "template",
) -> Response:
    actor = user.api_principal.name
    pair = reviews.next_pair(session, tenant=user.tenant, actor=actor, axis=axis)
    context = {
        "title": "Pairwise review",
        "pair": pair,
        "axis": axis,
        "tally": reviews.pairwise_tally(session, tenant=user.tenant, axis=axis),
    }
    return render(request, "pairwise.html", context)


@router.post("/review/pairwise")
def judge(
    user: Approver,
    session: SessionDep,
    _: Csrf,
    axis: Annotated[Literal["template", "model"], Form()],
    left: Sha,
    right: Sha,
    winner: Annotated[Literal["left", "right", "tie"], Form()],
) -> Response:
    reviews.judge_pair(
        session, tenant=user.tenant, actor=user.api_principal.name, axis=axis,
        left_sha=left, right_sha=right, winner=winner,
    )  # fmt: skip
    return see_other(f"/review/pairwise?axis={axis}")


@router.get("/review/{run_id}")
def item(
    request: Request, run_id: str, user: Approver, session: SessionDep, settings: SettingsDep
) -> Response:
    context = run_context(session, settings, tenant=user.tenant, run_id=run_id)
    shas = [i["sha256"] for i in context["images"]]
    held = [
        a
        for a in context["attempts"]
        if a["outcome"] in ("accepted", "rejected") and a["artifact_sha256"]
    ]
    mine = user.api_principal.name
    held_shas = [a["artifact_sha256"] for a in held]
    ratings = reviews.ratings(session, tenant=user.tenant, shas=shas + held_shas)
    requester = reviews.requester_of(session, tenant=user.tenant, run_id=run_id)
    context |= {
        "title": f"Review {run_id}",
        "requester": requester,
        "me": mine,
        "own_run": requester is not None and same_person(requester, mine),
        "assignee": next(
            (
                i.assignee
                for i in reviews.waiting(session, tenant=user.tenant)
                if i.run.id == run_id
            ),
            None,
        ),
        "ratings": ratings,
        "mine_ratings": {
            sha: r for sha, rows in ratings.items() for r in rows if r.principal == mine
        },
        "held": held if context["run"].status == "awaiting_review" else [],
        # a held image deleted while the run waits stays deleted here even if another run has
        # made the same bytes since: the run can then only be rejected
        "gone": context.get("gone", {})
        | (
            deleted_since_made(session, tenant=user.tenant, run_id=run_id)
            if context["run"].status == "awaiting_review"
            else {}
        ),
        "actions": reviews.image_actions(
            session, tenant=user.tenant, run_id=run_id, shas=shas + held_shas
        ),
    }
    return render(request, "review_item.html", context)


VERDICT = FormPage("/review/{run_id}", labels={"note": "Note"}, field="note")
ASSIGN = FormPage("/review/{run_id}", labels={"assignee": "Assign to"}, field="assignee")


@router.post("/review/{run_id}/decision")
@form_on(VERDICT)
def decide(
    request: Request,
    run_id: str,
    user: Approver,
    session: SessionDep,
    pool: PoolDep,
    _: Csrf,
    decision: Annotated[Literal["approve", "reject"], Form()],
    note: Note = "",
) -> Response:
    """A verdict on a run waiting for review finishes it (then the run's page). One on a run
    already delivered, say from a second tab left open after the approval, is only recorded
    (as at the API): its answer is a page saying so and who decided the run, not the run's
    page, which looked like this verdict had applied (outside tester, session 35)."""
    if decision == "reject" and is_blank(note):  # one stray `r` must not reject a run
        raise StudioError(
            422,
            f"to reject run {run_id}, say why: the requester reads it; the run still waits "
            "for review",
            field="note",
        )
    run = crud.get_run(session, tenant=user.tenant, run_id=run_id)
    delivered = run is not None and run.status in reviews.DELIVERED
    earlier = _latest_verdict(session, tenant=user.tenant, run_id=run_id) if delivered else None
    reviews.decide_run(
        session, pool, principal=user.api_principal, run_id=run_id, decision=decision,
        note=note,
    )  # fmt: skip
    if run is not None and delivered:
        return render(
            request,
            "review_recorded.html",
            {"title": f"Verdict recorded on {run_id}", "run_id": run_id,
             "status": run.status, "decision": decision, "note": note, "earlier": earlier},
        )  # fmt: skip
    return see_other(f"/runs/{run_id}")


def _latest_verdict(session: Session, *, tenant: str, run_id: str) -> ReviewDecisionRow | None:
    """The verdict that finished ``run_id`` (the latest a reviewer gave while it waited);
    None for a run delivered without a review."""
    return session.scalar(
        select(ReviewDecisionRow)
        .where(ReviewDecisionRow.tenant == tenant, ReviewDecisionRow.run_id == run_id)
        .order_by(ReviewDecisionRow.id.desc())
        .limit(1)
    )


@router.post("/review/{run_id}/assign")
@form_on(ASSIGN)
def assign(
    run_id: str,
    user: Approver,
    session: SessionDep,
    _: Csrf,
    assignee: Annotated[str, Form(max_length=120)],
) -> Response:
    reviews.assign(  # a typed name: spaces around it are not part of it
        session, tenant=user.tenant, run_id=run_id, assignee=assignee.strip(),
        by=user.api_principal.name,
    )  # fmt: skip
    return see_other(f"/review/{run_id}")


@router.post("/review/{run_id}/rubric")
def rubric(
    run_id: str,
    user: Approver,
    session: SessionDep,
    _: Csrf,
    sha256: Sha,
    on_brand: Annotated[int, Form(ge=1, le=5)],
    usable: Annotated[Literal["yes", "no"], Form()],
    note: Note = "",
) -> Response:
    reviews.rate(
        session, tenant=user.tenant, sha256=sha256, actor=user.api_principal.name,
        on_brand=on_brand, usable=usable == "yes", note=note,
    )  # fmt: skip
    return see_other(f"/review/{run_id}#img-{sha256[:12]}")


@router.post("/review/{run_id}/golden")
def golden(
    run_id: str,
    user: Approver,
    session: SessionDep,
    settings: SettingsDep,
    _: Csrf,
    sha256: Sha,
) -> Response:
    if crud.get_run(session, tenant=user.tenant, run_id=run_id) is None:
        raise StudioError(404, f"no run {run_id}")
    reviews.add_golden(
        session, settings, tenant=user.tenant, run_id=run_id, sha256=sha256,
        actor=user.api_principal.name,
    )  # fmt: skip
    return see_other(f"/review/{run_id}?golden={sha256[:12]}#img-{sha256[:12]}")


@router.get("/agreement")
def agreement(
    request: Request,
    user: Viewer,
    session: SessionDep,
    brand: Annotated[str, Query(max_length=80)] = "",
) -> Response:
    if brand and not crud.brand_ids(session, tenant=user.tenant, ref=brand):
        raise StudioError(404, f"Brand: unknown brand {brand!r}")  # as GET /v1/review/agreement
    report = judge_agreement(session, tenant=user.tenant, brand=brand or None)
    brands = [b.name for b in crud.list_brands(session, tenant=user.tenant)]
    context = {
        "title": "Judge agreement",
        "report": report,
        "brands": brands,
        "chosen": brand,
        "palette": palette_of(session, user.tenant, brand) if brand else [],
        "gone": gone_images(
            session, tenant=user.tenant, shas=[d.sha256 for d in report.disagreements]
        ),
    }
    return render(request, "agreement.html", context)
