"""Campaigns (a board per asset and format), Brands (the kit, style notes, scoring policy) and
Costs (spend per day, brand and model against budgets and the daily quota): each built from the
function the matching /v1 route calls."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Form, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from brandloop.agent.runner import open_memory
from brandloop.api.deps import ServiceDep, SessionDep, SettingsDep
from brandloop.api.jobs import store
from brandloop.api.routers.campaigns import campaign_public
from brandloop.api.routers.costs import cost_report
from brandloop.api.routers.memory import forget_note
from brandloop.api.schemas import CampaignAssetStatus, CampaignPublic
from brandloop.api.studio.pages.runs import accepted_so_far
from brandloop.api.studio.web import (
    PAGE_SIZE,
    Creator,
    Csrf,
    FormPage,
    PageNumber,
    StudioError,
    StudioRoute,
    Viewer,
    form_on,
    page_count,
    render,
    see_other,
)
from brandloop.api.style_notes import add_style_note, list_style_notes
from brandloop.artifacts import ArtifactStore
from brandloop.domain import MAX_NOTE_CHARS, is_blank
from brandloop.policies.brand_policy import load_brand_scoring_policy
from brandloop.registry import crud, spend
from brandloop.registry.deleted_images import gone_images
from brandloop.registry.models import BrandRow, RunRow
from brandloop.registry.models_agent import BudgetRow

router = APIRouter(route_class=StudioRoute, include_in_schema=False)


@router.get("/campaigns")
def campaigns(
    request: Request,
    user: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    page: PageNumber = 1,
) -> Response:
    """The tenant's campaigns, newest first, a page at a time (as the runs gallery pages)."""
    artifacts = ArtifactStore(settings.artifacts_dir)
    total = store.count_campaigns(session, tenant=user.tenant)
    rows = store.list_campaigns(
        session, tenant=user.tenant, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
    )
    context = {
        "title": "Campaigns",
        "campaigns": [campaign_public(session, c, artifacts) for c in rows],
        "total": total,
        "page": page,
        "pages": page_count(total),
    }
    return render(request, "campaigns.html", context)


@router.get("/campaigns/{campaign_id}")
def campaign(
    request: Request, campaign_id: str, user: Viewer, session: SessionDep, settings: SettingsDep
) -> Response:
    row = store.get_campaign(session, tenant=user.tenant, campaign_id=campaign_id)
    if row is None:
        raise StudioError(404, f"no campaign {campaign_id}")
    board = campaign_public(session, row, ArtifactStore(settings.artifacts_dir))
    name = board.id if is_blank(board.name) else board.name
    context = {"title": f"Campaign {name}", "c": board, **asset_views(session, user.tenant, board)}
    return render(request, "campaign.html", context)


#: the longest reason an asset's card shows (the run's page has it whole)
REASON_CHARS = 200


def short_reason(asset: CampaignAssetStatus) -> str:
    """Why an asset's run ended as it did, or fell short (its result's reason: "budget spent
    ... with 1 of 2 accepted", a rejection's note; else its job's error), cut to
    :data:`REASON_CHARS`; nothing while it waits for review (its card shows the candidates)."""
    job = asset.job
    if job.state == "awaiting_review":
        return ""
    why = (job.result.reason if job.result is not None else "") or (
        job.error.detail if job.error is not None else ""
    )
    return why if len(why) <= REASON_CHARS else why[: REASON_CHARS - 1] + "…"


def asset_views(session: Session, tenant: str, board: CampaignPublic) -> dict[str, Any]:
    """What a campaign's board shows besides the API's view of it: each asset's short reason,
    which assets' runs exist (a queued job's run does not yet: no link to a 404), and the
    candidates of each asset waiting for review (and which of those were deleted)."""
    run_ids = [a.job.run_id for a in board.assets]
    started = set(
        session.scalars(select(RunRow.id).where(RunRow.tenant == tenant, RunRow.id.in_(run_ids)))
    )
    waiting = {
        a.job.run_id: accepted_so_far(session, a.job.run_id)
        for a in board.assets
        if a.job.state == "awaiting_review"
    }
    shas = [sha for found in waiting.values() for sha in found]
    return {
        "reasons": {a.job.id: short_reason(a) for a in board.assets},
        "started": started,
        "waiting": waiting,
        "gone": gone_images(session, tenant=tenant, shas=shas),
    }


def _brand(session: Session, tenant: str, name: str) -> BrandRow:
    row = crud.get_brand(session, tenant=tenant, ref=name)
    if row is None:
        raise StudioError(404, f"no brand {name!r}")
    return row


@router.get("/brands")
def brands(request: Request, user: Viewer, session: SessionDep) -> Response:
    kits = [crud.brand_kit(b) for b in crud.list_brands(session, tenant=user.tenant)]
    return render(request, "brands.html", {"title": "Brands", "kits": kits})


@router.get("/brands/{name}")
def brand(
    request: Request, name: str, user: Viewer, session: SessionDep, settings: SettingsDep
) -> Response:
    row = _brand(session, user.tenant, name)
    kit = crud.brand_kit(row)
    policy = load_brand_scoring_policy(kit.slug, search=[settings.data_dir / "policies"])
    notes = list_style_notes(open_memory(settings), tenant=user.tenant, brand=row)
    signals = [
        {"name": n, "weight": getattr(policy, n).weight, "threshold": getattr(policy, n).threshold}
        for n in type(policy).model_fields
        if hasattr(getattr(policy, n), "threshold")
    ]
    context = {"title": kit.name, "kit": kit, "notes": notes, "signals": signals}
    return render(request, "brand.html", context)


#: the New note form of a brand's page
NEW_NOTE = FormPage(
    "/brands/{name}", labels={"text": "New note"}, ids={"text": "note"}, field="text"
)


@router.post("/brands/{name}/notes")
@form_on(NEW_NOTE)
def add_note(
    name: str,
    user: Creator,
    session: SessionDep,
    settings: SettingsDep,
    _: Csrf,
    text: Annotated[str, Form(min_length=1, max_length=MAX_NOTE_CHARS)],
) -> Response:
    row = _brand(session, user.tenant, name)
    if is_blank(text):  # the API's words for it ("note is empty") name no field
        raise StudioError(422, "is blank: write something", field="text")
    add_style_note(
        open_memory(settings),
        session,
        tenant=user.tenant,
        brand=row,
        actor=user.principal,
        text=text,
        policy_dirs=[settings.data_dir / "policies"],
    )
    return see_other(f"/brands/{quote(row.name, safe='')}#notes")


@router.post("/brands/{name}/notes/forget")
def forget(
    name: str,
    user: Creator,
    session: SessionDep,
    settings: SettingsDep,
    _: Csrf,
    note_id: Annotated[str, Form(pattern=r"^note-[0-9a-f]{32}$")],
) -> Response:
    row = _brand(session, user.tenant, name)
    forget_note(open_memory(settings), session, tenant=user.tenant, brand=row, note_id=note_id)
    return see_other(f"/brands/{quote(row.name, safe='')}#notes")


@router.get("/costs")
def costs(
    request: Request,
    user: Viewer,
    session: SessionDep,
    service: ServiceDep,
    period: Annotated[Literal["day", "week", "month"], Query()] = "month",
) -> Response:
    report = cost_report(user.api_principal, session, period=period)
    budgets = list(session.scalars(select(BudgetRow).where(BudgetRow.tenant == user.tenant)))
    peak = max([*report.by_day.values(), 0.0])
    context = {
        "title": "Costs",
        "report": report,
        "period": period,
        "peak": peak,
        "budgets": budgets,
        "quota": service.api.daily_quota_usd,
        # what the quota counts: spent today and held by queued or running jobs
        "spent_today": spend.quota_used(session, tenant=user.tenant),
    }
    return render(request, "costs.html", context)
