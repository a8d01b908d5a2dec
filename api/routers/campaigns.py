"""Campaigns: a brand, a shared budget and a set of assets, run as jobs that share the brand's
memory (each run recalls the campaign's own accepted prompts first)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Annotated, Any

from anyio import from_thread
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from brandloop.agent.budgets import set_budget
from brandloop.agent.consistency import consistency
from brandloop.agent.nodes.intake import redacted_text
from brandloop.agent.runner import check_request, new_run_id
from brandloop.api.deps import Creator, PoolDep, ServiceDep, SessionDep, SettingsDep, Viewer
from brandloop.api.jobs import store
from brandloop.api.jobs.service import admit, job_cost, job_public
from brandloop.api.params import ASCII_INT
from brandloop.api.problems import PROBLEM_RESPONSES, ApiProblem, problems
from brandloop.api.schemas import (
    CampaignAssetStatus,
    CampaignConsistency,
    CampaignCreate,
    CampaignPublic,
    CampaignState,
    domain_request,
    redacted_field,
)
from brandloop.artifacts import ArtifactStore
from brandloop.domain import distinct_formats
from brandloop.registry import crud
from brandloop.registry.models_service import CampaignRow
from brandloop.tools.moderation.minors import refuse_at_the_door

router = APIRouter(prefix="/campaigns", tags=["campaigns"], responses=PROBLEM_RESPONSES)


#: Finished campaigns' figures, newest last, by campaign and the images measured (deleting one
#: measures the rest again); bounded so a server that runs for weeks does not keep one per
#: campaign it ever showed.
_consistency_cache: OrderedDict[tuple[str, tuple[str, ...]], CampaignConsistency] = OrderedDict()
_CONSISTENCY_CACHE_SIZE = 512


def brand_name(session: Session, campaign: CampaignRow) -> str:
    """The campaign's brand's name now (a renamed brand's new name); the name it was created
    with when the brand is gone or not known by id."""
    names = store.brand_names(session, tenant=campaign.tenant, ids=[campaign.brand_id])
    return names.get(campaign.brand_id or "", campaign.brand)


def campaign_consistency(
    session: Session, campaign: CampaignRow, shas: list[str], artifacts: ArtifactStore
) -> CampaignConsistency:
    """Palette and colour-cast spread of the accepted images the tenant still has (computed
    once per finished campaign and set of images); null spreads when they cannot be measured
    (fewer than two images, or the brand is gone), never 0.0, which would read as perfectly
    consistent."""
    key = (campaign.id, tuple(shas))
    cached = _consistency_cache.get(key)
    if cached is not None:
        _consistency_cache.move_to_end(key)
        return cached
    brand = store.thread_brand(session, thread=campaign)  # by id: a rename keeps it
    images = [artifacts.get(sha) for sha in shas if artifacts.exists(sha)]
    if brand is None:
        return CampaignConsistency(images=len(images), palette_spread=None, descriptor_spread=None)
    spread = consistency(images, crud.brand_kit(brand))
    result = CampaignConsistency(
        images=spread.images,
        palette_spread=spread.palette_spread,
        descriptor_spread=spread.descriptor_spread,
    )
    _consistency_cache[key] = result
    while len(_consistency_cache) > _CONSISTENCY_CACHE_SIZE:
        _consistency_cache.popitem(last=False)
    return result


def campaign_state(progress: dict[str, int], *, started: bool) -> CampaignState:
    """``queued`` while assets wait and none has started (one cancelled before it ran never
    started); ``done`` once every asset's job has ended, a review's verdict included: an asset
    whose run waits for review has delivered nothing yet, so the campaign ``awaiting_review``
    until its last review ends (its consistency is measured then, over what was delivered)."""
    if progress["queued"] and not started:
        return "queued"
    if progress["queued"] or progress["running"]:
        return "running"
    return "awaiting_review" if progress["awaiting_review"] else "done"


def campaign_public(
    session: Session, campaign: CampaignRow, artifacts: ArtifactStore
) -> CampaignPublic:
    jobs = store.list_jobs(session, tenant=campaign.tenant, campaign_id=campaign.id, limit=10_000)
    progress = dict.fromkeys(store.JOB_STATES, 0)
    assets, accepted = [], []
    for job in jobs:
        progress[job.state] += 1
        assets.append(job)
        for image in (job.result or {}).get("images", []):
            if not image.get("deleted"):  # gone: not the campaign's any more, not measured
                accepted.append(str(image["sha256"]))
    by_job = {a["job_id"]: a for a in campaign.assets}
    statuses = []
    for job in assets:
        plan = by_job.get(
            job.id, {"index": 0, "brief": job.request.get("brief", ""), "format": "", "count": 1}
        )
        statuses.append(
            CampaignAssetStatus(
                index=plan["index"],
                brief=plan["brief"],
                format=plan["format"],
                count=plan["count"],
                job=job_public(job, cost_usd=job_cost(session, job)),
            )
        )
    statuses.sort(key=lambda s: (s.index, s.format))
    state = campaign_state(progress, started=any(job.started_at is not None for job in jobs))
    return CampaignPublic(
        id=campaign.id,
        name=campaign.name,
        brand=brand_name(session, campaign),
        brand_id=campaign.brand_id,
        # the campaign's limit now: `brandloop campaign budget` may have changed it since
        budget_usd=store.campaign_limit(session, campaign),
        # what each asset's run has cost so far (a running one's row holds $0 until it ends)
        spent_usd=round(sum(s.job.cost_usd for s in statuses), 6),
        state=state,
        progress=progress,
        consistency=campaign_consistency(session, campaign, accepted, artifacts)
        if state == "done"
        else None,
        assets=statuses,
        created_at=campaign.created_at,
    )


@router.post(
    "",
    status_code=202,
    response_model=CampaignPublic,
    summary="Start a campaign",
    responses=problems(402, 409, 503),
)
def create_campaign(
    body: CampaignCreate,
    principal: Creator,
    session: SessionDep,
    service: ServiceDep,
    pool: PoolDep,
) -> CampaignPublic:
    brand = crud.get_brand(session, tenant=principal.tenant, ref=body.brand)
    if brand is None:
        raise ApiProblem(404, "not-found", f"unknown brand {body.brand!r}")
    planned = [
        (i, asset, fmt)
        for i, asset in enumerate(body.assets)
        for fmt in distinct_formats(asset.formats)  # 1:1 and 2:2 are one job, paid once
    ]
    share = round(body.budget_usd / len(planned), 6)
    requests = []
    run_ids = []
    briefs: dict[int, str] = {}  # an asset's brief, redacted once for all its formats
    for index, asset, fmt in planned:  # check every asset before anything is stored
        shape = {"aspect_ratio": fmt} if ":" in fmt else {"size": fmt}
        if index not in briefs:
            # redacted as the runner redacts it, before it is stored in the job or the plan
            briefs[index] = redacted_field(asset.brief, "assets", index, "brief")
        request = domain_request(
            brief=briefs[index],
            brand=brand.name,
            brand_id=brand.id,  # every asset runs under this brand, renamed or not
            count=asset.count,
            budget_usd=share,
            tenant=principal.tenant,
            **shape,
        )
        # rendered as its run will render it: with its brief and the run id its job gets
        run_ids.append(new_run_id())
        prompt = check_request(service.db, request, run_id=run_ids[-1])
        requests.append(request)
        # the minors line at the door, for every asset before the campaign is stored
        refuse_at_the_door(
            session,
            tenant=principal.tenant,
            actor=principal.name,
            subject_type="campaign",
            subject_id="(new campaign)",
            texts=(("brief", request.brief), ("prompt", prompt or request.brief)),
        )
    campaign = store.create_campaign(
        session,
        tenant=principal.tenant,
        name=redacted_text(body.name)[:200],  # listed to every viewer: no personal data
        brand=brand,
        budget_usd=body.budget_usd,
        assets=[],
    )
    # the whole budget is held against the daily quota until the last asset ends, and every
    # provider call of every asset reserves against it
    admit(
        session,
        tenant=principal.tenant,
        quota_usd=service.api.daily_quota_usd,
        budget_usd=body.budget_usd,
        campaign_id=campaign.id,
    )
    set_budget(
        session,
        tenant=principal.tenant,
        scope="campaign",
        scope_id=campaign.id,
        limit_usd=body.budget_usd,
        quota_usd=service.api.daily_quota_usd,
    )
    plan: list[dict[str, Any]] = []
    for (index, asset, fmt), request, run_id in zip(planned, requests, run_ids, strict=True):
        job = store.create_job(
            session,
            tenant=principal.tenant,
            kind="campaign_asset",
            request={**request.model_dump(mode="json"), "campaign_id": campaign.id},
            campaign_id=campaign.id,
            requested_by=principal.name,
            run_id=run_id,
        )
        plan.append(
            {
                "index": index,
                "brief": request.brief,
                "format": fmt,
                "count": asset.count,
                "job_id": job.id,
            }
        )
    campaign.assets = plan
    session.commit()
    for item in plan:
        from_thread.run(pool.enqueue, item["job_id"])
    return campaign_public(session, campaign, ArtifactStore(service.settings.artifacts_dir))


@router.get("", response_model=list[CampaignPublic], summary="The tenant's campaigns")
def list_campaigns(
    principal: Viewer,
    session: SessionDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100), ASCII_INT] = 20,
    offset: Annotated[int, Query(ge=0, le=1_000_000), ASCII_INT] = 0,
) -> list[CampaignPublic]:
    found = store.list_campaigns(session, tenant=principal.tenant, limit=limit, offset=offset)
    return [campaign_public(session, c, ArtifactStore(settings.artifacts_dir)) for c in found]


@router.get(
    "/{campaign_id}",
    response_model=CampaignPublic,
    summary="Per-asset progress, results and consistency",
)
def get_campaign(
    campaign_id: str, principal: Viewer, session: SessionDep, settings: SettingsDep
) -> CampaignPublic:
    campaign = store.get_campaign(session, tenant=principal.tenant, campaign_id=campaign_id)
    if campaign is None:
        raise ApiProblem(404, "not-found", f"no campaign {campaign_id}")
    return campaign_public(session, campaign, ArtifactStore(settings.artifacts_dir))
