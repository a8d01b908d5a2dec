"""Campaigns: several assets (brief, formats, count) for one brand, sharing memory and a budget.

Assets run one after another so each later one recalls what the earlier ones established;
the report gives per-asset results and how consistent the whole set looks.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brandloop.agent.budgets import limit_of, tighten_budget
from brandloop.agent.consistency import consistency
from brandloop.agent.context import EventSink
from brandloop.agent.runner import run_generation
from brandloop.artifacts import ArtifactStore
from brandloop.domain import (
    MAX_REQUEST_BUDGET_USD,
    MAX_SEED,
    AcceptedImage,
    GenerationRequest,
    RunResult,
    StopCause,
    campaign_id_problem,
    parse_size,
    repeated_format,
)
from brandloop.errors import BadInputError, NotFoundError
from brandloop.policies.brandkit import load_brand_kit
from brandloop.policy_files import describe_validation_error, load_yaml_file
from brandloop.registry import crud
from brandloop.registry.db import Database
from brandloop.registry.types import MAX_MONEY_USD
from brandloop.settings import Settings

log = logging.getLogger(__name__)

_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class AssetDefaults(_Spec):
    formats: list[str] = Field(default_factory=lambda: ["1024x1024"], min_length=1)
    count: int = Field(default=1, ge=1, le=16)
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_REQUEST_BUDGET_USD)


class AssetSpec(_Spec):
    id: str = Field(pattern=_ID.pattern)
    brief: str = Field(min_length=1, max_length=4000)
    formats: list[str] | None = None
    count: int | None = Field(default=None, ge=1, le=16)
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_REQUEST_BUDGET_USD)


class CampaignSpec(_Spec):
    name: str = Field(pattern=_ID.pattern)
    brand: str
    budget_usd: float | None = Field(default=None, gt=0, le=MAX_MONEY_USD)
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    template: str | None = None
    defaults: AssetDefaults = Field(default_factory=AssetDefaults)
    assets: list[AssetSpec] = Field(min_length=1, max_length=50)


class AssetResult(BaseModel):
    asset: str
    size: str
    run_id: str
    status: str
    accepted: int
    wanted: int
    cost_usd: float
    #: the accepted images as ``generate --json`` gives them (path, model, seed, prompt,
    #: scores, cost, ``preview``, ...)
    images: list[AcceptedImage]
    reason: str = ""
    #: why the asset's run stopped short, when it did (``budget``, ``iterations``, ...): the
    #: CLI's exit code of a campaign that accepted nothing follows it
    stop_cause: StopCause | None = None

    @property
    def previews(self) -> int:
        """How many of the accepted images the procedural preview renderer made."""
        return sum(1 for image in self.images if image.preview)


class CampaignReport(BaseModel):
    campaign_id: str
    brand: str
    budget_usd: float | None
    cost_usd: float
    accepted: int
    wanted: int
    #: spreads (lower is more consistent); None, "not measured", with fewer than two images
    palette_spread: float | None
    descriptor_spread: float | None
    memory: bool
    assets: list[AssetResult]


def load_campaign(path: Path) -> CampaignSpec:
    if not path.is_file():
        raise NotFoundError(f"no campaign file {path}")
    data = load_yaml_file(path, what="campaign")
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise BadInputError(f"campaign {path}: {describe_validation_error(exc)}") from None
    seen: dict[str, int] = {}
    for number, asset in enumerate(spec.assets, start=1):
        if asset.id in seen:  # two rows of one id in the report: which is which?
            raise BadInputError(
                f"{path}: asset id {asset.id!r} is used twice (assets {seen[asset.id]} and "
                f"{number}); each asset needs its own id"
            )
        seen[asset.id] = number
        formats = asset.formats or spec.defaults.formats
        twice = repeated_format(formats)
        if twice is not None:
            raise BadInputError(
                f"{path}: asset {asset.id}: a format is listed twice ({twice}); list each once"
            )
        for fmt in formats:
            try:
                parse_size(fmt)
            except ValueError as exc:
                raise BadInputError(f"{path}: asset {asset.id}: {exc}") from None
    return spec


def resolve_brand(spec: CampaignSpec, base: Path, *, db: Database, tenant: str) -> str:
    """The campaign's brand name; a kit path (relative to the campaign file) is added first."""
    candidate = (base / spec.brand).resolve()
    with db.session() as session:
        if spec.brand.endswith((".yaml", ".yml")):
            kit = load_brand_kit(candidate)
            return crud.upsert_brand(session, tenant=tenant, kit=kit).name
        if crud.get_brand(session, tenant=tenant, ref=spec.brand) is None:
            raise NotFoundError(f"unknown brand {spec.brand!r}")
        return spec.brand


async def run_campaign(
    spec: CampaignSpec,
    *,
    brand: str,
    settings: Settings,
    db: Database,
    tenant: str = "default",
    campaign_id: str | None = None,
    use_memory: bool = True,
    on_event: EventSink | None = None,
    on_asset: Callable[[AssetResult], Any] | None = None,
    run_kwargs: dict[str, Any] | None = None,
) -> CampaignReport:
    """Run every asset of ``spec`` in order under ``campaign_id``'s budget.

    The file's ``budget_usd`` tightens the campaign's limit and never loosens one already set
    (``brandloop campaign budget``, an earlier run): the tighter applies and the report's
    ``budget_usd`` says which."""
    campaign_id = campaign_id or f"{spec.name}-{datetime.now(UTC):%Y%m%d%H%M%S}"
    if problem := campaign_id_problem(campaign_id):
        raise BadInputError(problem)
    with db.session() as session:
        if spec.budget_usd is not None:
            budget_usd: float | None = tighten_budget(
                session,
                tenant=tenant,
                scope="campaign",
                scope_id=campaign_id,
                limit_usd=spec.budget_usd,
            )
        else:
            budget_usd = limit_of(session, tenant=tenant, scope="campaign", scope_id=campaign_id)
    results: list[AssetResult] = []
    accepted_images: list[bytes] = []
    store = ArtifactStore(settings.artifacts_dir)
    kit = None
    for index, asset in enumerate(spec.assets):
        for size in asset.formats or spec.defaults.formats:
            request = GenerationRequest(
                brief=asset.brief,
                brand=brand,
                count=asset.count or spec.defaults.count,
                size=size,
                budget_usd=asset.budget_usd or spec.defaults.budget_usd,
                seed=None if spec.seed is None else (spec.seed + index) % (MAX_SEED + 1),
                template=spec.template,
                campaign_id=campaign_id,
                tenant=tenant,
            )
            log.info("campaign asset", extra={"campaign_id": campaign_id, "asset": asset.id})
            result: RunResult = await run_generation(
                request,
                settings=settings,
                db=db,
                on_event=on_event,
                use_memory=use_memory,
                **(run_kwargs or {}),
            )
            row = AssetResult(
                asset=asset.id,
                size=size,
                run_id=result.run_id,
                status=result.status,
                accepted=len(result.images),
                wanted=request.count,
                cost_usd=result.cost_usd,
                images=list(result.images),
                reason=result.reason,
                stop_cause=result.stop_cause,
            )
            results.append(row)
            for image in result.images:
                accepted_images.append(store.get(image.sha256))
            if on_asset is not None:
                on_asset(row)
    with db.session() as session:
        brand_row = crud.get_brand(session, tenant=tenant, ref=brand)
        if brand_row is None:
            raise NotFoundError(f"brand {brand!r} was removed during the campaign")
        kit = crud.brand_kit(brand_row)
    spread = consistency(accepted_images, kit)
    return CampaignReport(
        campaign_id=campaign_id,
        brand=kit.name,
        budget_usd=budget_usd,
        cost_usd=round(sum(r.cost_usd for r in results), 6),
        accepted=sum(r.accepted for r in results),
        wanted=sum(r.wanted for r in results),
        palette_spread=spread.palette_spread,
        descriptor_spread=spread.descriptor_spread,
        memory=use_memory,
        assets=results,
    )
